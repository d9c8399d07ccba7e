//! NIfTI-1 reading against the dcm2niix/nibabel reference, the training files, round trips and
//! bad inputs.

use std::path::PathBuf;

use mrisr::io::nifti::{
    read_nifti, read_nifti_bytes, read_nifti_volume, write_nifti, write_nifti_bytes,
};
use mrisr::{Error, Volume};

use crate::support::{self, data_dir};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mrisr-nifti-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn assert_affine_close(a: &mrisr::Affine, b: &mrisr::Affine, tol: f64) {
    for r in 0..4 {
        for c in 0..4 {
            assert!(
                (a[r][c] - b[r][c]).abs() <= tol,
                "affine differs at [{r}][{c}]: {a:?} vs {b:?}"
            );
        }
    }
}

#[test]
fn reads_reference_knee_like_nibabel() {
    let dir = data_dir().join("ref");
    let support::Dcm2niixRef {
        json,
        shape,
        affine,
        zooms,
    } = support::dcm2niix_json(&dir.join("knee_dess_echo1.dcm2niix.json"));
    let vols = read_nifti(dir.join("knee_dess_echo1.nii.gz")).unwrap();
    assert_eq!(vols.len(), 1);
    let v = &vols[0];
    assert_eq!(v.dims.to_vec(), shape);
    // The JSON holds nibabel's float64 view of the float32 sform: equal to f32 precision.
    assert_affine_close(&v.affine, &affine, 1e-6);
    for (s, z) in v.spacing.iter().zip(&zooms) {
        assert!((s - z).abs() < 1e-6);
    }
    let sum: i64 = v.data.iter().map(|&x| x as i64).sum();
    assert_eq!(sum, json["voxel_sum"].as_i64().unwrap());
    let (lo, hi) = v.min_max();
    assert_eq!(lo as i64, json["voxel_min"].as_i64().unwrap());
    assert_eq!(hi as i64, json["voxel_max"].as_i64().unwrap());
    assert!(
        v.data.iter().all(|x| x.fract() == 0.0),
        "int16 voxels stay integers"
    );
    assert!(v.meta.source.ends_with("knee_dess_echo1.nii.gz"));
}

#[test]
fn reads_all_training_volumes() {
    let dir = data_dir().join("train");
    // (file, dims, spacing) from the README table.
    let table: [(&str, [usize; 3], [f64; 3]); 5] = [
        (
            "subject01_knee_dess-echo2.nii.gz",
            [80, 512, 512],
            [1.5, 0.3125, 0.3125],
        ),
        (
            "subject02_knee_mese-t2-echo1.nii.gz",
            [256, 256, 24],
            [0.625, 0.625, 4.0],
        ),
        (
            "subject03_brain_t1-colin27.nii.gz",
            [181, 217, 181],
            [1.0, 1.0, 1.0],
        ),
        (
            "subject04_brain_t1-chris.nii.gz",
            [188, 256, 190],
            [0.88, 0.88, 0.88],
        ),
        (
            "subject05_brain_t1-mprage-2mm.nii.gz",
            [96, 128, 128],
            [2.0, 2.0, 2.0],
        ),
    ];
    for (file, dims, spacing) in table {
        let v = read_nifti_volume(dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(v.dims, dims, "{file}");
        for (s, expected) in v.spacing.iter().zip(spacing) {
            // The README rounds 0.8800001-ish spacings to two decimals.
            assert!(
                (s - expected).abs() < 5e-3,
                "{file}: spacing {:?}",
                v.spacing
            );
        }
        let (lo, hi) = v.min_max();
        assert!(hi > lo, "{file}: constant volume");
        assert!(v.data.iter().all(|x| x.is_finite()), "{file}");
    }
}

fn oblique_volume(flip: bool) -> Volume {
    let dims = [7, 5, 4];
    let n = dims.iter().product::<usize>();
    let data: Vec<f32> = (0..n)
        .map(|x| (x as f32 * 0.37).sin() * 1000.0 + 0.125)
        .collect();
    let mut v = Volume::from_data(dims, [1.0; 3], data);
    let (s, c) = (0.2f64.sin(), 0.2f64.cos());
    let (s2, c2) = (0.1f64.sin(), 0.1f64.cos());
    // Rotation about z then about x, voxel sizes 0.7, 0.9, 3.0; the third axis flipped if asked.
    let rz = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
    let rx = [[1.0, 0.0, 0.0], [0.0, c2, -s2], [0.0, s2, c2]];
    let z = [0.7, 0.9, if flip { -3.0 } else { 3.0 }];
    for (r, rx_row) in rx.iter().enumerate() {
        for col in 0..3 {
            let rot: f64 = (0..3).map(|k| rx_row[k] * rz[k][col]).sum();
            v.affine[r][col] = rot * z[col];
        }
    }
    v.affine[0][3] = -91.328697;
    v.affine[1][3] = 12.5;
    v.affine[2][3] = 40.1;
    v.spacing = Volume::spacing_from_affine(&v.affine);
    v.meta.description = "round trip ".repeat(10); // 110 bytes: truncated to 79
    v
}

fn det(a: &mrisr::Affine) -> f64 {
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1])
        - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
}

#[test]
fn round_trip_files_nii_and_gz() {
    for flip in [false, true] {
        let v = oblique_volume(flip);
        assert_eq!(det(&v.affine) < 0.0, flip);
        for name in ["rt.nii", "rt.nii.gz"] {
            let path = scratch(&format!("{}-{name}", flip as u8));
            write_nifti(&v, &path).unwrap();
            let raw = std::fs::read(&path).unwrap();
            assert_eq!(
                raw[0] == 0x1f && raw[1] == 0x8b,
                name.ends_with(".gz"),
                "{name}: gzip by extension"
            );
            let back = read_nifti_volume(&path).unwrap();
            assert_eq!(back.dims, v.dims);
            assert_affine_close(&back.affine, &v.affine, 1e-5);
            assert_eq!(back.data, v.data, "float32 voxels are exact");
            assert_eq!(back.meta.description.len(), 79);
            assert!(
                "round trip "
                    .repeat(10)
                    .starts_with(&back.meta.description.trim_end().to_string())
            );
            std::fs::remove_file(&path).ok();
        }
    }
}

/// The qform we write describes the same affine: clear the sform code and read again.
#[test]
fn written_qform_matches_affine() {
    for flip in [false, true] {
        let v = oblique_volume(flip);
        let mut bytes = write_nifti_bytes(&v, false).unwrap();
        assert_eq!(
            i16::from_le_bytes([bytes[252], bytes[253]]),
            1,
            "qform_code"
        );
        let qfac = f32::from_le_bytes(bytes[76..80].try_into().unwrap());
        assert_eq!(qfac, if flip { -1.0 } else { 1.0 });
        bytes[254..256].copy_from_slice(&0i16.to_le_bytes()); // sform_code = 0
        let back = &read_nifti_bytes("q.nii", &bytes).unwrap()[0];
        assert_affine_close(&back.affine, &v.affine, 1e-5);
        // With neither form, nibabel's fallback: x flipped, centred.
        bytes[252..254].copy_from_slice(&0i16.to_le_bytes());
        let base = &read_nifti_bytes("b.nii", &bytes).unwrap()[0];
        assert!((base.affine[0][0] + 0.7).abs() < 1e-6);
        assert!((base.world([3.0, 2.0, 1.5])).iter().all(|x| x.abs() < 1e-6));
    }
}

#[test]
fn reads_4d_as_several_volumes_with_scaling_and_big_endian() {
    // Build a big-endian int16 4D file by hand: 3x2x2 voxels, 2 time points, slope 2, inter -1.
    let mut h = vec![0u8; 352];
    let be16 = |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_be_bytes());
    let be32f =
        |h: &mut Vec<u8>, at: usize, v: f32| h[at..at + 4].copy_from_slice(&v.to_be_bytes());
    h[0..4].copy_from_slice(&348i32.to_be_bytes());
    for (n, d) in [4i16, 3, 2, 2, 2, 1, 1, 1].iter().enumerate() {
        be16(&mut h, 40 + 2 * n, *d);
    }
    be16(&mut h, 70, 4);
    be16(&mut h, 72, 16);
    for (n, p) in [1.0f32, 2.0, 3.0, 4.0, 1.0, 1.0, 1.0, 1.0]
        .iter()
        .enumerate()
    {
        be32f(&mut h, 76 + 4 * n, *p);
    }
    be32f(&mut h, 108, 352.0);
    be32f(&mut h, 112, 2.0);
    be32f(&mut h, 116, -1.0);
    be16(&mut h, 252, 1); // qform_code 1, identity rotation
    h[344..348].copy_from_slice(b"n+1\0");
    for x in 0..24i16 {
        h.extend_from_slice(&(x - 5).to_be_bytes());
    }
    let vols = read_nifti_bytes("be.nii", &h).unwrap();
    assert_eq!(vols.len(), 2);
    assert_eq!(vols[0].dims, [3, 2, 2]);
    assert_eq!(vols[0].spacing, [2.0, 3.0, 4.0]);
    assert_eq!(vols[0].data[0], -11.0);
    assert_eq!(vols[1].data[11], 2.0 * 18.0 - 1.0);
    let err = mrisr::io::nifti::read_nifti_volume_bytes("be.nii", &h).unwrap_err();
    assert!(err.to_string().contains("2 3D volumes"), "{err}");
}

fn expect_nifti_error(name: &str, bytes: &[u8], needle: &str) {
    match read_nifti_bytes(name, bytes) {
        Err(Error::Nifti { path, reason }) => {
            assert_eq!(path, PathBuf::from(name));
            assert!(
                reason.contains(needle),
                "{name}: '{reason}' lacks '{needle}'"
            );
            let shown = Error::Nifti { path, reason }.to_string();
            assert!(shown.contains(name));
        }
        Err(e) => panic!("{name}: wrong error kind {e:?}"),
        Ok(_) => panic!("{name}: accepted"),
    }
}

#[test]
fn bad_inputs_give_errors_naming_the_file() {
    let good = write_nifti_bytes(&oblique_volume(false), false).unwrap();
    expect_nifti_error(
        "text.nii",
        b"hello, this is a text file and not an image at all\n"
            .repeat(10)
            .as_slice(),
        "magic",
    );
    expect_nifti_error("short.nii", &good[..100], "too short");
    expect_nifti_error("trunc.nii", &good[..good.len() - 1], "truncated");
    let gz = write_nifti_bytes(&oblique_volume(false), true).unwrap();
    expect_nifti_error("trunc.nii.gz", &gz[..gz.len() / 2], "gzip");

    let mut zero = good.clone();
    zero[44..46].copy_from_slice(&0i16.to_le_bytes()); // dim[2] = 0
    expect_nifti_error("zero.nii", &zero, "at least 1");

    let mut complex = good.clone();
    complex[70..72].copy_from_slice(&32i16.to_le_bytes());
    expect_nifti_error("complex.nii", &complex, "unsupported datatype complex64");

    let mut huge = good.clone();
    for n in 1..=4 {
        huge[40 + 2 * n..42 + 2 * n].copy_from_slice(&32767i16.to_le_bytes());
    }
    huge[40..42].copy_from_slice(&4i16.to_le_bytes());
    expect_nifti_error("huge.nii", &huge, "2^31");

    let mut nifti2 = good.clone();
    nifti2[0..4].copy_from_slice(&540i32.to_le_bytes());
    expect_nifti_error("two.nii", &nifti2, "NIfTI-2");

    // Missing file: an I/O error naming it.
    let missing = scratch("does-not-exist.nii");
    let e = read_nifti(&missing).unwrap_err();
    assert!(matches!(e, Error::Io { .. }) && e.to_string().contains("does-not-exist.nii"));
}

/// Our qform decoding agrees with the sform dcm2niix wrote (both describe the same grid), on
/// the oblique, PSR-oriented knee.
#[test]
fn qform_of_oblique_training_file_matches_its_sform() {
    use std::io::Read;
    let gz = std::fs::read(data_dir().join("train/subject02_knee_mese-t2-echo1.nii.gz")).unwrap();
    let mut bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(&gz[..])
        .read_to_end(&mut bytes)
        .unwrap();
    let with_sform = read_nifti_bytes("s.nii", &bytes).unwrap().remove(0);
    assert!(
        i16::from_le_bytes([bytes[252], bytes[253]]) > 0,
        "file has a qform"
    );
    bytes[254..256].copy_from_slice(&0i16.to_le_bytes());
    let with_qform = read_nifti_bytes("q.nii", &bytes).unwrap().remove(0);
    assert_affine_close(&with_qform.affine, &with_sform.affine, 1e-3);
    assert!(
        with_sform.affine[0][1].abs() > 1e-3
            || with_sform.affine[1][0].abs() > 1e-3
            || with_sform.affine[0][2].abs() > 1e-3,
        "not oblique/permuted?"
    );
}
