//! The knee DESS series against dcm2niix's reference conversion (../shared/data/ref).

use std::sync::Arc;

use mrisr::io::dicom::{DicomInput, load_series, scan_dir, scan_inputs};

use crate::support::{self, RefNifti, affine_diff, compare, data_dir};

#[test]
fn knee_matches_dcm2niix() {
    let data = data_dir();
    let dir = data.join("dicom/pykneer_subject01_DESS_echo1");
    let report = scan_dir(&dir).unwrap();
    let skipped: Vec<_> = report.skipped.iter().map(|s| &s.name).collect();
    assert_eq!(report.series.len(), 1, "skipped: {skipped:?}");
    let s = &report.series[0];
    assert_eq!(s.files.len(), 80);
    assert_eq!(s.volumes, 1);
    assert_eq!(s.dims, [80, 512, 512]);
    assert!(s.problem.is_none(), "{:?}", s.problem);
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);

    let support::Dcm2niixRef {
        json,
        shape,
        affine: aff,
        zooms,
    } = support::dcm2niix_json(&data.join("ref/knee_dess_echo1.dcm2niix.json"));
    let vols = load_series(s).unwrap();
    assert_eq!(vols.len(), 1);
    let v = &vols[0];
    assert_eq!(v.dims.to_vec(), shape);
    assert!(
        affine_diff(&v.affine, &aff) < 1e-3,
        "{:?} vs {aff:?}",
        v.affine
    );
    let sum: i64 = v.data.iter().map(|&x| x as i64).sum();
    assert_eq!(sum, json["voxel_sum"].as_i64().unwrap());
    for a in 0..3 {
        assert!(
            (v.spacing[a] - zooms[a]).abs() < 1e-4,
            "{:?} vs {zooms:?}",
            v.spacing
        );
    }
    assert_eq!(v.meta.description, "Sag DESS 3132 30 HiRes thk1p5 ARCx2");
    // SliceThickness travels with the volume (learning from the scan models slices with it),
    // from DICOM as from dcm2niix's sidecar.
    assert_eq!(v.meta.slice_thickness_mm, Some(1.5));
    let mese = mrisr::io::nifti::read_nifti(data.join("train/subject02_knee_mese-t2-echo1.nii.gz"));
    assert_eq!(mese.unwrap()[0].meta.slice_thickness_mm, Some(3.0));

    let r = RefNifti::read(&data.join("ref/knee_dess_echo1.nii.gz"));
    compare(&vols, &r, 1e-3, 0.0).unwrap();
}

/// The same series handed over as (name, bytes) pairs, in shuffled order, as the page does.
#[test]
fn knee_from_memory_in_any_order() {
    let dir = data_dir().join("dicom/pykneer_subject01_DESS_echo1");
    let mut inputs: Vec<DicomInput> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .map(|p| {
            let bytes: Arc<[u8]> = std::fs::read(&p).unwrap().into();
            DicomInput::memory(p.file_name().unwrap().to_string_lossy(), bytes)
        })
        .collect();
    inputs.reverse();
    inputs.rotate_left(17);
    let report = scan_inputs(inputs);
    assert_eq!(report.series.len(), 1);
    let from_mem = load_series(&report.series[0]).unwrap();
    let from_disk = load_series(&scan_dir(&dir).unwrap().series[0]).unwrap();
    assert_eq!(from_mem[0].dims, from_disk[0].dims);
    assert_eq!(from_mem[0].affine, from_disk[0].affine);
    assert!(from_mem[0].data == from_disk[0].data);
}
