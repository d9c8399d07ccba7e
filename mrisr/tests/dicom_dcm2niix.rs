//! Runs the real dcm2niix (when installed; CI installs it) on files mrisr reads or writes and
//! compares: intensities of a Philips series with only a real-world value mapping, and the
//! geometry of the derived series the CLI writes.

use std::path::{Path, PathBuf};
use std::process::Command;

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use mrisr::io::dicom::{load_series, scan_dir};
use mrisr::io::nifti::read_nifti;

/// Runs dcm2niix on `dir` into `out`, or None (with the reason printed) when it is missing.
fn dcm2niix(dir: &Path, out: &Path) -> Option<Vec<PathBuf>> {
    std::fs::create_dir_all(out).unwrap();
    let run = Command::new("dcm2niix")
        .args(["-z", "n", "-f", "%s", "-o"])
        .arg(out)
        .arg(dir)
        .output();
    let run = match run {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "skipped: dcm2niix not runnable ({e}); CI installs it (apt-get install dcm2niix)"
            );
            return None;
        }
    };
    assert!(
        run.status.success(),
        "dcm2niix failed on {}:\n{}{}",
        dir.display(),
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let mut niis: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nii"))
        .collect();
    niis.sort();
    Some(niis)
}

fn text(o: &mut InMemDicomObject, tag: Tag, vr: VR, v: &str) {
    o.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
}

fn us(o: &mut InMemDicomObject, tag: Tag, v: u16) {
    o.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
}

/// How a synthetic series is scaled.
struct Scaling {
    manufacturer: &'static str,
    /// RescaleSlope / RescaleIntercept text, or None for neither.
    rescale: Option<(&'static str, &'static str)>,
    /// RealWorldValueMapping (slope, intercept), or None.
    rwv: Option<(f64, f64)>,
}

/// Slice `z` of a 2D MR series (number `series`): 4x4 unsigned 12-bit stored values, axial.
fn slice(series: u32, z: usize, sc: &Scaling) -> Vec<u8> {
    let uid = |what: u32| format!("1.2.826.0.1.3680043.2.1125.{what}.{series}");
    let mut o = InMemDicomObject::new_empty();
    text(
        &mut o,
        tags::SOP_CLASS_UID,
        VR::UI,
        "1.2.840.10008.5.1.4.1.1.4",
    );
    text(
        &mut o,
        tags::SOP_INSTANCE_UID,
        VR::UI,
        &format!("{}.{z}", uid(9)),
    );
    text(
        &mut o,
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        "1.2.826.0.1.3680043.2.1125.7",
    );
    text(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, &uid(8));
    text(&mut o, tags::MODALITY, VR::CS, "MR");
    text(&mut o, tags::MANUFACTURER, VR::LO, sc.manufacturer);
    text(&mut o, tags::SERIES_NUMBER, VR::IS, &series.to_string());
    text(&mut o, tags::INSTANCE_NUMBER, VR::IS, &(z + 1).to_string());
    text(&mut o, tags::MR_ACQUISITION_TYPE, VR::CS, "2D");
    text(&mut o, tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY\\M\\SE");
    text(&mut o, tags::SLICE_THICKNESS, VR::DS, "3");
    text(&mut o, tags::PIXEL_SPACING, VR::DS, "0.5\\0.5");
    text(
        &mut o,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        "1\\0\\0\\0\\1\\0",
    );
    let ipp = format!("-1\\-1\\{}", z * 3);
    text(&mut o, tags::IMAGE_POSITION_PATIENT, VR::DS, &ipp);
    us(&mut o, tags::ROWS, 4);
    us(&mut o, tags::COLUMNS, 4);
    us(&mut o, tags::SAMPLES_PER_PIXEL, 1);
    text(
        &mut o,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    us(&mut o, tags::BITS_ALLOCATED, 16);
    us(&mut o, tags::BITS_STORED, 12);
    us(&mut o, tags::HIGH_BIT, 11);
    us(&mut o, tags::PIXEL_REPRESENTATION, 0);
    if let Some((slope, intercept)) = sc.rescale {
        text(&mut o, tags::RESCALE_INTERCEPT, VR::DS, intercept);
        text(&mut o, tags::RESCALE_SLOPE, VR::DS, slope);
    }
    if let Some((slope, intercept)) = sc.rwv {
        let mut item = InMemDicomObject::new_empty();
        let fd = |v: f64| PrimitiveValue::from(v);
        item.put(DataElement::new(
            tags::REAL_WORLD_VALUE_INTERCEPT,
            VR::FD,
            fd(intercept),
        ));
        item.put(DataElement::new(
            tags::REAL_WORLD_VALUE_SLOPE,
            VR::FD,
            fd(slope),
        ));
        o.put(DataElement::new(
            tags::REAL_WORLD_VALUE_MAPPING_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![item]),
        ));
    }
    let px: Vec<u8> = (0..16u16)
        .flat_map(|i| (i * 100 + z as u16 * 7).to_le_bytes())
        .collect();
    o.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OW,
        PrimitiveValue::from(px),
    ));
    let file = o
        .with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1"))
        .unwrap();
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).unwrap();
    bytes
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| (x - y).abs() <= 1e-4 * x.abs().max(y.abs()).max(1.0))
}

/// Issue 12 item 2, checked against the real dcm2niix: a Philips series with a real-world
/// value slope (0040,9225) but no RescaleSlope and no (2005,100E) is scaled by that slope in
/// dcm2niix's NIfTI (its scl_slope; the stored integers are kept in the file), and so by mrisr;
/// a rescale other than 1/0 takes precedence; other vendors' mappings are ignored. Each series
/// read by mrisr has the values (and grid) of dcm2niix's NIfTI after its scl_slope/scl_inter.
#[test]
fn intensity_scaling_matches_dcm2niix() {
    let cases = [
        (
            1,
            Scaling {
                manufacturer: "Philips Medical Systems",
                rescale: None,
                rwv: Some((1.0 / 6.219, 0.0)),
            },
        ),
        (
            2,
            Scaling {
                manufacturer: "Philips Medical Systems",
                rescale: None,
                rwv: Some((2.0, 5.0)),
            },
        ),
        (
            3,
            Scaling {
                manufacturer: "Philips Medical Systems",
                rescale: Some(("1", "0")),
                rwv: Some((2.0, 5.0)),
            },
        ),
        (
            4,
            Scaling {
                manufacturer: "Philips Medical Systems",
                rescale: Some(("3", "7")),
                rwv: Some((2.0, 5.0)),
            },
        ),
        (
            5,
            Scaling {
                manufacturer: "SIEMENS",
                rescale: None,
                rwv: Some((1.0 / 6.219, 3.0)),
            },
        ),
        (
            6,
            Scaling {
                manufacturer: "GE MEDICAL SYSTEMS",
                rescale: Some(("2.5", "-10")),
                rwv: None,
            },
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("dicom");
    std::fs::create_dir_all(&dir).unwrap();
    for (n, sc) in &cases {
        for z in 0..3 {
            std::fs::write(dir.join(format!("S{n}_IM{z}")), slice(*n, z, sc)).unwrap();
        }
    }
    let Some(niis) = dcm2niix(&dir, &tmp.path().join("out")) else {
        return;
    };
    assert_eq!(niis.len(), cases.len(), "dcm2niix wrote {niis:?}");
    let report = scan_dir(&dir).unwrap();
    assert_eq!(report.series.len(), cases.len());
    for (n, sc) in &cases {
        let theirs = read_nifti(tmp.path().join(format!("out/{n}.nii")))
            .unwrap()
            .remove(0);
        let series = report
            .series
            .iter()
            .find(|s| s.number == Some(i64::from(*n)))
            .unwrap();
        let ours = load_series(series).unwrap().remove(0);
        assert_eq!(ours.dims, theirs.dims, "series {n}");
        assert!(
            close(&ours.data, &theirs.data),
            "series {n} ({}, rescale {:?}, rwv {:?}): mrisr {:?}, dcm2niix {:?}",
            sc.manufacturer,
            sc.rescale,
            sc.rwv,
            &ours.data[..16],
            &theirs.data[..16]
        );
        if *n == 1 {
            // The case of the issue: every value divided by 6.219 (stored 100 -> 16.08).
            let want = 100.0 / 6.219;
            assert!(
                ours.data.iter().any(|v| (v - want).abs() < 1e-3),
                "no voxel at {want}: {:?}",
                &ours.data[..16]
            );
        }
    }
}

/// Runs the `mrisr` command; panics with its output when it fails.
#[cfg(feature = "cli")]
fn mrisr(args: &[&Path]) {
    let out = Command::new(env!("CARGO_BIN_EXE_mrisr"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "mrisr {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// dcm2niix's NIfTI of the DICOM series in `dicom` has the dims and affine of `nifti`.
#[cfg(feature = "cli")]
fn same_geometry_as_dcm2niix(nifti: &Path, dicom: &Path, out: &Path) {
    let Some(niis) = dcm2niix(dicom, out) else {
        return;
    };
    assert_eq!(niis.len(), 1, "dcm2niix wrote {niis:?}");
    let ours = read_nifti(nifti).unwrap().remove(0);
    let theirs = read_nifti(&niis[0]).unwrap().remove(0);
    assert_eq!(ours.dims, theirs.dims, "{}", dicom.display());
    for r in 0..3 {
        for c in 0..4 {
            let (a, b) = (ours.affine[r][c], theirs.affine[r][c]);
            assert!(
                (a - b).abs() < 2e-3,
                "{}: affine[{r}][{c}] mrisr {a}, dcm2niix {b}\nmrisr {:?}\ndcm2niix {:?}",
                dicom.display(),
                ours.affine,
                theirs.affine
            );
        }
    }
}

/// Issue 12 item 6: the derived series the CLI writes reads back in dcm2niix with the grid of
/// the NIfTI the CLI writes for the same volume: the knee (a 3D acquisition) converted, and an
/// oblique 2D thick-slice series super-resolved (fractional slice spacing).
#[cfg(feature = "cli")]
#[test]
fn derived_series_reads_back_in_dcm2niix_with_the_same_geometry() {
    use mrisr::Volume;
    use mrisr::io::dicom::{WriteOptions, write_series_to_dir};

    let tmp = tempfile::tempdir().unwrap();
    let t = |name: &str| tmp.path().join(name);
    let knee = crate::support::data_dir().join("dicom/pykneer_subject01_DESS_echo1");
    mrisr(&["convert".as_ref(), &knee, &t("knee.nii")]);
    mrisr(&["convert".as_ref(), &knee, &t("knee_dicom")]);
    same_geometry_as_dcm2niix(&t("knee.nii"), &t("knee_dicom"), &t("knee_out"));

    // Oblique, left-handed (as a 2D acquisition reads), 0.7 x 0.8 mm pixels, 3 mm slices
    // along the plane's normal (a sheared stack dcm2niix would straighten).
    let dims = [24, 20, 6];
    let data = (0..dims.iter().product::<usize>())
        .map(|n| 100.0 + (n % 24) as f32 * 3.0 + (n / 480) as f32 * 7.0)
        .collect();
    let mut v = Volume::from_data(dims, [1.0; 3], data);
    v.affine = [
        [-0.7, 0.0, 0.0, 40.0],
        [0.0, 0.78, -0.6746, -20.0],
        [0.0, 0.18, 2.9233, 15.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    v.spacing = Volume::spacing_from_affine(&v.affine);
    write_series_to_dir(&v, &WriteOptions::default(), &t("thick")).unwrap();
    mrisr(&["upscale".as_ref(), &t("thick"), &t("sr.nii")]);
    mrisr(&["upscale".as_ref(), &t("thick"), &t("sr_dicom")]);
    same_geometry_as_dcm2niix(&t("sr.nii"), &t("sr_dicom"), &t("sr_out"));
}
