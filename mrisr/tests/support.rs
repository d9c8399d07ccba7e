//! Shared helpers for the tests: the shared data, reference files, synthetic volumes.

use std::path::{Path, PathBuf};

use mrisr::Volume;
use nifti::{NiftiObject, ReaderOptions};

/// `../shared/data` next to the workspace; panics with the expected location when missing.
pub fn data_dir() -> PathBuf {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    assert!(
        d.is_dir(),
        "test data not found: expected the shared data folder at {} (see ../shared/data/README)",
        d.display()
    );
    d
}

/// dcm2niix's reference JSON for a conversion (../shared/data/ref/*.dcm2niix.json).
pub struct Dcm2niixRef {
    pub json: serde_json::Value,
    pub shape: Vec<usize>,
    pub affine: [[f64; 4]; 4],
    pub zooms: Vec<f64>,
}

pub fn dcm2niix_json(path: &Path) -> Dcm2niixRef {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let numbers = |key: &str| -> Vec<f64> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let shape = numbers("shape").into_iter().map(|x| x as usize).collect();
    let zooms = numbers("zooms");
    let mut affine = [[0.0; 4]; 4];
    for (r, row) in json["affine"].as_array().unwrap().iter().enumerate() {
        for (c, x) in row.as_array().unwrap().iter().enumerate() {
            affine[r][c] = x.as_f64().unwrap();
        }
    }
    Dcm2niixRef {
        json,
        shape,
        affine,
        zooms,
    }
}

/// Fills `v` with `f(i, j, k)` at every voxel (synthetic test volumes).
pub fn fill(v: &mut Volume, f: impl Fn(f64, f64, f64) -> f64) {
    let [nx, ny, nz] = v.dims;
    for k in 0..nz {
        for j in 0..ny {
            for i in 0..nx {
                v.set(i, j, k, f(i as f64, j as f64, k as f64) as f32);
            }
        }
    }
}

/// A reference NIfTI read with the nifti crate: dims (up to 4D), sform, and values with
/// scl_slope/scl_inter applied.
pub struct RefNifti {
    pub dims: Vec<usize>,
    pub affine: [[f64; 4]; 4],
    pub values: Vec<f64>,
}

impl RefNifti {
    pub fn read(path: &Path) -> RefNifti {
        let obj = ReaderOptions::new()
            .read_file(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let h = obj.header().clone();
        let nd = h.dim[0] as usize;
        let dims: Vec<usize> = (1..=nd).map(|i| h.dim[i] as usize).collect();
        let mut affine = [[0.0; 4]; 4];
        for (r, row) in [h.srow_x, h.srow_y, h.srow_z].iter().enumerate() {
            for c in 0..4 {
                affine[r][c] = row[c] as f64;
            }
        }
        affine[3][3] = 1.0;
        let raw = obj.into_volume().into_raw_data();
        let (slope, inter) = if h.scl_slope == 0.0 || !h.scl_slope.is_finite() {
            (1.0, 0.0)
        } else {
            (h.scl_slope as f64, h.scl_inter as f64)
        };
        let values: Vec<f64> = match h.datatype {
            2 => raw.iter().map(|&b| b as f64).collect(),
            256 => raw.iter().map(|&b| b as i8 as f64).collect(),
            4 => raw
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f64)
                .collect(),
            512 => raw
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as f64)
                .collect(),
            8 => raw
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
            16 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
                .collect(),
            t => panic!(
                "{}: NIfTI datatype {t} not handled in the test",
                path.display()
            ),
        };
        let values = values.into_iter().map(|v| v * slope + inter).collect();
        RefNifti {
            dims,
            affine,
            values,
        }
    }

    pub fn volumes(&self) -> usize {
        self.dims.iter().skip(3).product::<usize>().max(1)
    }
}

/// Largest absolute difference between two affines.
pub fn affine_diff(a: &[[f64; 4]; 4], b: &[[f64; 4]; 4]) -> f64 {
    let mut m: f64 = 0.0;
    for r in 0..3 {
        for c in 0..4 {
            m = m.max((a[r][c] - b[r][c]).abs());
        }
    }
    m
}

/// Compares volumes with a reference NIfTI: dims, affine within `tol_mm`, voxels within
/// `tol_value` (relative to the value). Returns a description of the first mismatch.
pub fn compare(vols: &[Volume], r: &RefNifti, tol_mm: f64, tol_value: f64) -> Result<(), String> {
    let d3 = [r.dims[0], r.dims[1], *r.dims.get(2).unwrap_or(&1)];
    if vols.len() != r.volumes() {
        return Err(format!(
            "{} volumes, reference has {}",
            vols.len(),
            r.volumes()
        ));
    }
    for (t, v) in vols.iter().enumerate() {
        if v.dims != d3 {
            return Err(format!("dims {:?}, reference {:?}", v.dims, d3));
        }
        let ad = affine_diff(&v.affine, &r.affine);
        if ad > tol_mm {
            return Err(format!(
                "affine differs by {ad} mm:\n ours {:?}\n ref  {:?}",
                v.affine, r.affine
            ));
        }
        let n = v.data.len();
        let refv = &r.values[t * n..(t + 1) * n];
        for (i, (&a, &b)) in v.data.iter().zip(refv).enumerate() {
            if (a as f64 - b).abs() > tol_value * b.abs().max(1.0) {
                let (x, y, z) = (i % d3[0], (i / d3[0]) % d3[1], i / (d3[0] * d3[1]));
                let mism = v
                    .data
                    .iter()
                    .zip(refv)
                    .filter(|(a, b)| (**a as f64 - **b).abs() > tol_value * b.abs().max(1.0))
                    .count();
                return Err(format!(
                    "volume {t} voxel ({x},{y},{z}) = {a}, reference {b}; {mism} of {n} voxels differ"
                ));
            }
        }
    }
    Ok(())
}
