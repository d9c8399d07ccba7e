//! Bad inputs never panic: they are skipped with a reason, or fail with an error naming the
//! file. Inputs are built from a real knee slice in a temporary folder.

use std::path::PathBuf;
use std::sync::Arc;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::OpenFileOptions;
use mrisr::io::dicom::{DicomInput, load_series, scan_dir, scan_inputs};

use crate::support::data_dir;

fn knee_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> =
        std::fs::read_dir(data_dir().join("dicom/pykneer_subject01_DESS_echo1"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
            .collect();
    v.sort();
    v
}

/// A knee slice re-encoded after `edit`.
fn edited(path: &PathBuf, edit: impl FnOnce(&mut dicom_object::DefaultDicomObject)) -> Vec<u8> {
    let mut obj = OpenFileOptions::new().open_file(path).unwrap();
    edit(&mut obj);
    let mut out = Vec::new();
    obj.write_all(&mut out).unwrap();
    out
}

#[test]
fn junk_inputs_are_skipped_with_reasons() {
    let real = std::fs::read(&knee_files()[0]).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("readme.txt", b"# Knee study\nsome notes\n".to_vec()),
        ("meta.json", br#"{"a": 1}"#.to_vec()),
        ("vol.nii", {
            let mut b = vec![0u8; 352];
            b[..4].copy_from_slice(&348i32.to_le_bytes());
            b
        }),
        ("zip.gz", vec![0x1f, 0x8b, 8, 0, 0, 0]),
        ("header_only", real[..600].to_vec()),
        ("dicm_only", {
            let mut b = vec![0u8; 128];
            b.extend_from_slice(b"DICM");
            b
        }),
        (
            "random",
            (0..5000u32)
                .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
                .collect(),
        ),
    ];
    let inputs = cases
        .iter()
        .map(|(n, b)| DicomInput::memory(*n, b.clone()))
        .collect();
    let report = scan_inputs(inputs);
    assert!(report.series.is_empty(), "{:?}", report.series);
    assert_eq!(report.skipped.len(), cases.len());
    for s in &report.skipped {
        assert!(!s.reason.is_empty());
        println!("{}: {}", s.name, s.reason);
    }
    let reason = |n: &str| &report.skipped.iter().find(|s| s.name == n).unwrap().reason;
    assert!(reason("readme.txt").contains("text"));
    assert!(reason("meta.json").contains("JSON"));
    assert!(reason("vol.nii").contains("NIfTI"));
}

#[test]
fn truncated_file_fails_with_its_name() {
    let files = knee_files();
    let mut inputs: Vec<DicomInput> = files[..10]
        .iter()
        .map(|p| DicomInput::Path(p.clone()))
        .collect();
    // Cut one slice in the middle of its pixel data: the header still scans.
    let bytes = std::fs::read(&files[10]).unwrap();
    let cut: Arc<[u8]> = bytes[..bytes.len() / 2].to_vec().into();
    inputs.push(DicomInput::memory("cut_slice.dcm", cut));
    let report = scan_inputs(inputs);
    assert_eq!(report.series.len(), 1);
    let err = load_series(&report.series[0]).unwrap_err().to_string();
    assert!(err.contains("cut_slice.dcm"), "{err}");
    // Every possible cut of a small prefix is handled without a panic.
    for n in (0..bytes.len().min(4000)).step_by(97) {
        let r = scan_inputs(vec![DicomInput::memory("p", bytes[..n].to_vec())]);
        for s in &r.series {
            let _ = load_series(s);
        }
    }
}

#[test]
fn dicom_without_pixel_data_is_a_clear_error() {
    let f = &knee_files()[0];
    let no_px = edited(f, |o| {
        o.remove_element(tags::PIXEL_DATA);
    });
    let report = scan_inputs(vec![DicomInput::memory("no_pixels.dcm", no_px)]);
    let msg = match report.series.first() {
        Some(s) => load_series(s).unwrap_err().to_string(),
        None => report.skipped[0].reason.clone(),
    };
    assert!(
        msg.contains("no_pixels.dcm") || msg.contains("Pixel Data"),
        "{msg}"
    );
}

#[test]
fn two_series_in_one_folder_are_both_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let files = knee_files();
    for (i, f) in files[..6].iter().enumerate() {
        let bytes = if i % 2 == 0 {
            std::fs::read(f).unwrap()
        } else {
            edited(f, |o| {
                o.put(DataElement::new(
                    tags::SERIES_INSTANCE_UID,
                    VR::UI,
                    PrimitiveValue::from("1.2.3.4.5.6.7"),
                ));
                o.put(DataElement::new(
                    tags::SERIES_NUMBER,
                    VR::IS,
                    PrimitiveValue::from("99"),
                ));
            })
        };
        std::fs::write(tmp.path().join(format!("f{i}")), bytes).unwrap();
    }
    std::fs::write(tmp.path().join("README"), "not dicom").unwrap();
    let report = scan_dir(tmp.path()).unwrap();
    assert_eq!(report.series.len(), 2);
    assert!(
        report
            .series
            .iter()
            .all(|s| s.files.len() == 3 && s.volumes == 1)
    );
    assert_eq!(report.skipped.len(), 1);
    for s in &report.series {
        let v = load_series(s).unwrap();
        assert_eq!(v[0].dims[0], 3);
    }
}

#[test]
fn missing_positions_fall_back_or_fail_clearly() {
    let files = knee_files();
    let strip = |f: &PathBuf| {
        edited(f, |o| {
            o.remove_element(tags::IMAGE_POSITION_PATIENT);
        })
    };
    // All positions gone: one volume in instance order, with a warning.
    let inputs: Vec<DicomInput> = files[..4]
        .iter()
        .enumerate()
        .map(|(i, f)| DicomInput::memory(format!("s{i}"), strip(f)))
        .collect();
    let report = scan_inputs(inputs);
    assert_eq!(report.series.len(), 1);
    let s = &report.series[0];
    assert!(
        s.warnings
            .iter()
            .any(|w| w.contains("ImagePositionPatient")),
        "{:?}",
        s.warnings
    );
    assert_eq!(
        load_series(s).unwrap()[0].dims.iter().product::<usize>(),
        4 * 512 * 512
    );
    // Some positions gone: a clear error, no guess.
    let mut inputs: Vec<DicomInput> = files[..3]
        .iter()
        .map(|f| DicomInput::Path(f.clone()))
        .collect();
    inputs.push(DicomInput::memory("stripped", strip(&files[3])));
    let report = scan_inputs(inputs);
    let s = &report.series[0];
    assert!(
        s.problem
            .as_deref()
            .unwrap_or("")
            .contains("ImagePositionPatient")
    );
    assert!(load_series(s).is_err());
}

#[test]
fn huge_dimensions_are_refused_before_allocating() {
    let f = &knee_files()[0];
    let huge = edited(f, |o| {
        o.put(DataElement::new(
            tags::NUMBER_OF_FRAMES,
            VR::IS,
            PrimitiveValue::from("1000000"),
        ));
        o.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(65535u16),
        ));
        o.put(DataElement::new(
            tags::COLUMNS,
            VR::US,
            PrimitiveValue::from(65535u16),
        ));
    });
    let report = scan_inputs(vec![DicomInput::memory("huge.dcm", huge.clone())]);
    if let Some(s) = report.series.first() {
        assert!(s.problem.is_some());
        assert!(load_series(s).is_err());
    }
    let err = mrisr::io::dicom::decode_input(&DicomInput::memory("huge.dcm", huge)).unwrap_err();
    assert!(err.to_string().contains("huge.dcm"), "{err}");
    let zero = edited(f, |o| {
        o.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(0u16),
        ));
    });
    let report = scan_inputs(vec![DicomInput::memory("zero.dcm", zero)]);
    assert!(report.series.is_empty());
    assert!(
        report.skipped[0].reason.contains("size"),
        "{:?}",
        report.skipped
    );
}

#[test]
fn uneven_slice_gaps_warn() {
    let files = knee_files();
    let mut inputs: Vec<DicomInput> = files[..5]
        .iter()
        .map(|f| DicomInput::Path(f.clone()))
        .collect();
    inputs.remove(2); // a missing slice leaves a double gap
    let report = scan_inputs(inputs);
    let s = &report.series[0];
    assert!(
        s.warnings.iter().any(|w| w.contains("uneven")),
        "{:?}",
        s.warnings
    );
    assert!(load_series(s).is_ok());
}

/// Folders are walked with walkdir: linked folders are followed, a link back to a parent is
/// reported once instead of being walked forever, files in nested folders are found.
#[cfg(unix)]
#[test]
fn a_folder_link_loop_is_reported_not_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let nested = tmp.path().join("study/series");
    std::fs::create_dir_all(&nested).unwrap();
    for f in &knee_files()[..3] {
        std::fs::copy(f, nested.join(f.file_name().unwrap())).unwrap();
    }
    std::os::unix::fs::symlink(tmp.path().join("study"), nested.join("back")).unwrap();
    std::os::unix::fs::symlink(&nested, tmp.path().join("linked")).unwrap();
    let report = scan_dir(tmp.path()).unwrap();
    // The three slices through study/series, linked/ and linked/back/series (a link is only
    // a loop where it leads back to one of the folders it is reached through).
    assert_eq!(report.series.len(), 1, "{:?}", report.skipped);
    assert_eq!(report.series[0].files.len(), 9);
    let loops: Vec<_> = report
        .skipped
        .iter()
        .filter(|s| s.reason.contains("loops back"))
        .collect();
    assert!(!loops.is_empty(), "{:?}", report.skipped);
}
