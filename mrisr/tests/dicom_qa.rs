//! dcm2niix's own QA sets (neurolabusc dcm_qa*): our series split, voxel order, voxels and
//! affine must match the reference NIfTIs in each set's `Ref/` folder.

use std::path::Path;

use mrisr::io::dicom::{Series, load_series, scan_dir};

use crate::support::{RefNifti, compare, data_dir};

/// Series number at the end of a dcm2niix "%p_%s" / "%v_%p_%s" name, and the echo suffix.
fn series_of(stem: &str) -> (i64, Option<i64>) {
    let mut parts: Vec<&str> = stem.split('_').collect();
    let mut echo = None;
    // "..._801_e1" or "..._801_e2_fieldmaphz"
    if let Some(p) = parts
        .iter()
        .rposition(|p| p.len() >= 2 && p.starts_with('e') && p[1..].parse::<i64>().is_ok())
    {
        echo = parts[p][1..].parse().ok();
        parts.truncate(p);
    }
    let n = parts.last().and_then(|p| p.parse().ok()).unwrap_or(-1);
    (n, echo)
}

/// Compares every Ref NIfTI of a set with the series we find; returns (matched, failures).
/// `tol` is the allowed relative voxel difference (0: exact).
fn check_set(set: &Path, tol: f64) -> (usize, Vec<String>) {
    let report = scan_dir(&set.join("In")).unwrap();
    for s in &report.series {
        println!(
            "series {:?} echo {:?} \"{}\" dims {:?} x{} files {} warn {:?} problem {:?}",
            s.number,
            s.echo,
            s.description,
            s.dims,
            s.volumes,
            s.files.len(),
            s.warnings,
            s.problem
        );
    }
    for sk in &report.skipped {
        println!("skipped {}: {}", sk.name, sk.reason);
    }
    let mut refs: Vec<_> = std::fs::read_dir(set.join("Ref"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "nii"))
        .collect();
    refs.sort();
    let mut ok = 0;
    let mut failures = Vec::new();
    for path in refs {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        let (num, echo) = series_of(&stem);
        let cands: Vec<&Series> = report
            .series
            .iter()
            .filter(|s| s.number == Some(num))
            .filter(|s| echo.is_none() || s.echo.is_none() || s.echo == echo)
            .collect();
        let r = RefNifti::read(&path);
        // Series numbers repeat across studies: tell them apart by size.
        let cands: Vec<&Series> = if cands.len() > 1 {
            cands
                .into_iter()
                .filter(|s| s.dims[..] == r.dims[..3] && s.volumes == r.volumes())
                .collect()
        } else {
            cands
        };
        if cands.len() != 1 {
            failures.push(format!("{stem}: {} candidate series", cands.len()));
            continue;
        }
        let res = load_series(cands[0])
            .map_err(|e| e.to_string())
            .and_then(|vols| compare(&vols, &r, 1e-3, tol));
        match res {
            Ok(()) => ok += 1,
            Err(e) => failures.push(format!("{stem}: {e}")),
        }
    }
    (ok, failures)
}

#[test]
fn siemens_orientation_mosaics_match_dcm2niix() {
    let (ok, failures) = check_set(
        &data_dir().join("conformance/dcm_qa_siemens_orientation"),
        0.0,
    );
    assert!(
        failures.is_empty(),
        "{ok} matched; failures:\n{}",
        failures.join("\n")
    );
    assert_eq!(ok, 21);
}

#[test]
fn nih_ge_4d_and_siemens_phase_encoding_match_dcm2niix() {
    let (ok, failures) = check_set(&data_dir().join("conformance/dcm_qa_nih"), 0.0);
    assert!(
        failures.is_empty(),
        "{ok} matched; failures:\n{}",
        failures.join("\n")
    );
    assert_eq!(ok, 5);
}

#[test]
fn enhanced_multiframe_matches_dcm2niix() {
    // Philips values are floats (dcm2niix's precise scaling) stored as int16 * scl_slope.
    let (ok, failures) = check_set(&data_dir().join("conformance/dcm_qa_enh"), 1e-5);
    assert!(
        failures.is_empty(),
        "{ok} matched; failures:\n{}",
        failures.join("\n")
    );
    assert_eq!(ok, 3);
}
