//! write_series -> scan -> load_series gives back the same volume: dims, affine within 1e-4 mm,
//! voxels within the int16 quantisation step.

use mrisr::io::dicom::{
    DicomInput, WriteOptions, load_series, scan_dir, scan_inputs, write_series, write_series_to_dir,
};
use mrisr::{Affine, Volume};

use crate::support::{affine_diff, data_dir};

fn reread(files: Vec<(String, Vec<u8>)>) -> (mrisr::io::dicom::Series, Volume) {
    let inputs = files
        .into_iter()
        .map(|(n, b)| DicomInput::memory(n, b))
        .collect();
    let report = scan_inputs(inputs);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);
    assert_eq!(report.series.len(), 1);
    let s = report.series[0].clone();
    let mut v = load_series(&s).unwrap();
    assert_eq!(v.len(), 1);
    (s, v.remove(0))
}

fn check_same(a: &Volume, b: &Volume, tol_value: f32) {
    assert_eq!(a.dims, b.dims);
    let d = affine_diff(&a.affine, &b.affine);
    assert!(
        d < 1e-4,
        "affine differs by {d}:\n{:?}\n{:?}",
        a.affine,
        b.affine
    );
    let worst = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= tol_value,
        "voxels differ by up to {worst} (allowed {tol_value})"
    );
}

fn synthetic(dims: [usize; 3], affine: Affine) -> Volume {
    let n = dims.iter().product();
    let data = (0..n)
        .map(|i| (i as f32 * 0.37).sin() * 1234.5 + (i % 7) as f32 * 0.01)
        .collect();
    let mut v = Volume::from_data(dims, [1.0; 3], data);
    v.affine = affine;
    v.spacing = Volume::spacing_from_affine(&affine);
    v
}

/// Quantisation step of a float volume written as int16 over its value range.
fn step(v: &Volume) -> f32 {
    let (lo, hi) = v.min_max();
    (hi - lo) / 65534.0 * 0.5001 + 1e-6
}

#[test]
fn knee_round_trip_is_exact_and_keeps_patient_and_study() {
    let dir = data_dir().join("dicom/pykneer_subject01_DESS_echo1");
    let report = scan_dir(&dir).unwrap();
    let mut vols = load_series(&report.series[0]).unwrap();
    let knee = vols.remove(0);
    let files = write_series(&knee, &WriteOptions::default()).unwrap();
    assert_eq!(files.len(), knee.dims[2]);
    let (s, back) = reread(files);
    check_same(&knee, &back, 0.0);
    assert_ne!(s.uid, report.series[0].uid);
    assert!(s.description.ends_with("(mrisr)"), "{}", s.description);
    let a = back.meta.dicom.as_ref().unwrap();
    let b = knee.meta.dicom.as_ref().unwrap();
    for (g, e) in [
        (0x0020, 0x000D),
        (0x0020, 0x0052),
        (0x0008, 0x0020),
        (0x0010, 0x1010),
    ] {
        assert_eq!(a.get(g, e), b.get(g, e), "({g:04X},{e:04X})");
    }
}

#[test]
fn oblique_left_handed_float_volume_round_trips() {
    // A 2D-style (left-handed) oblique grid, as dcm2niix-style reading of 2D series gives.
    let (c, s) = (0.3f64.cos(), 0.3f64.sin());
    let affine = [
        [-0.8 * c, 0.0, 2.5 * s, 40.0],
        [0.0, 0.9, 0.0, -12.5],
        [0.8 * s, 0.0, 2.5 * c, 7.25],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let v = synthetic([17, 11, 5], affine);
    let (_, back) = reread(write_series(&v, &WriteOptions::default()).unwrap());
    check_same(&v, &back, step(&v));
}

#[test]
fn oblique_right_handed_volume_keeps_world_positions() {
    // Not in nearest-RAS+ order: reads back reoriented, each voxel at the same place.
    let (c, s) = (0.3f64.cos(), 0.3f64.sin());
    let affine = [
        [-0.8 * c, 0.0, 2.5 * s, 40.0],
        [0.0, -0.9, 0.0, -12.5],
        [0.8 * s, 0.0, 2.5 * c, 7.25],
        [0.0, 0.0, 0.0, 1.0],
    ];
    let v = synthetic([7, 6, 5], affine);
    let (_, back) = reread(write_series(&v, &WriteOptions::default()).unwrap());
    assert_eq!(back.len(), v.len());
    for (i, &x) in back.data.iter().enumerate() {
        let ijk = [(i % 7) as f64, ((i / 7) % 6) as f64, (i / 42) as f64];
        let w = back.world([ijk[0], ijk[1], ijk[2]]);
        // find the source voxel at that world position
        let found = (0..v.len()).find(|&j| {
            let p = v.world([(j % 7) as f64, ((j / 7) % 6) as f64, (j / 42) as f64]);
            (0..3).all(|r| (p[r] - w[r]).abs() < 1e-4)
        });
        let j = found.expect("voxel position not in the source grid");
        assert!((v.data[j] - x).abs() <= step(&v));
    }
}

#[test]
fn axis_aligned_ras_volume_without_source_round_trips() {
    let mut affine = mrisr::volume::diagonal_affine([0.5, 0.75, 2.0]);
    affine[0][3] = -30.0;
    affine[2][3] = 11.0;
    let v = synthetic([9, 8, 6], affine);
    let opts = WriteOptions {
        description_suffix: " SR x2".into(),
        series_number: Some(7),
        uid_seed: Some(42),
    };
    let files = write_series(&v, &opts).unwrap();
    let (s, back) = reread(files);
    assert_eq!(s.number, Some(7));
    assert_eq!(s.description, "SR x2");
    check_same(&v, &back, step(&v));
}

#[test]
fn single_slice_and_folder_writer() {
    let v = synthetic([5, 4, 1], mrisr::volume::diagonal_affine([1.0, 1.0, 3.0]));
    let tmp = tempfile::tempdir().unwrap();
    let paths = write_series_to_dir(&v, &WriteOptions::default(), &tmp.path().join("out")).unwrap();
    assert_eq!(paths.len(), 1);
    let report = scan_dir(&tmp.path().join("out")).unwrap();
    let mut back = load_series(&report.series[0]).unwrap().remove(0);
    // One right-handed slice reads back as 2D, its (meaningless) k direction reversed.
    for r in 0..3 {
        assert!((back.affine[r][2] + v.affine[r][2]).abs() < 1e-9);
        back.affine[r][2] = v.affine[r][2];
    }
    check_same(&v, &back, step(&v));
}

#[test]
fn two_writes_get_different_uids() {
    let v = synthetic([4, 4, 2], mrisr::volume::diagonal_affine([1.0; 3]));
    let a = reread(write_series(&v, &WriteOptions::default()).unwrap())
        .0
        .uid;
    let b = reread(write_series(&v, &WriteOptions::default()).unwrap())
        .0
        .uid;
    assert_ne!(a, b);
    assert!(a.starts_with("2.25.") && a.len() <= 64);
}
