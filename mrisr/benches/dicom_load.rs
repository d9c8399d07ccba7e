//! DICOM series load time vs. dcm2niix (plain harness, no criterion).
//!
//!     cargo bench -p mrisr --no-default-features --bench dicom_load [-- RUNS [DIR...]]
//!
//! A relative DIR is taken from the workspace root unless it exists from the crate's folder.
//! For each folder, in one process and interleaved run by run: mrisr `scan_dir` + `load_series`
//! of every usable series (volumes in memory, nothing written), then
//! `dcm2niix -z n -b n -o <empty temp dir> <folder>` (every series converted to uncompressed
//! NIfTI, no JSON sidecar, written to disk). One untimed warm-up of each comes first, so the
//! files are in the page cache for every timed run (nothing is dropped from the cache).
//! Prints the median, min and max over RUNS (default 10), the median of `scan_dir` alone, and
//! the ratio of the medians (mrisr time / dcm2niix time: above 1, mrisr is slower).
//! Default folders: the pyKNEEr knee (80 files) and dcm_qa_siemens_orientation/In, from the
//! shared data folder (../../shared/data relative to this crate).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mrisr::io::dicom::{load_series, scan_dir};

/// Scans `dir` and loads every series without a problem; returns (series, voxels) loaded and
/// the time the scan alone took.
fn mrisr_load(dir: &Path) -> (usize, usize, Duration) {
    let t = Instant::now();
    let report = scan_dir(dir).expect("scan_dir");
    let scan = t.elapsed();
    let mut series = 0;
    let mut voxels = 0;
    for s in report.series.iter().filter(|s| s.problem.is_none()) {
        if let Ok(vols) = load_series(s) {
            series += 1;
            voxels += vols.iter().map(|v| v.data.len()).sum::<usize>();
            std::hint::black_box(&vols);
        }
    }
    (series, voxels, scan)
}

/// Runs dcm2niix on `dir` into a fresh temp folder; returns the number of .nii files written.
fn dcm2niix(dir: &Path, scratch: &Path) -> usize {
    let out = scratch.join("out");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).expect("temp dir");
    let st = Command::new("dcm2niix")
        .args(["-z", "n", "-b", "n", "-o"])
        .arg(&out)
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .expect("cannot run dcm2niix (apt-get install dcm2niix)");
    assert!(st.success(), "dcm2niix failed: {st}");
    std::fs::read_dir(&out)
        .expect("read temp dir")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "nii"))
        })
        .count()
}

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(times: &[Duration]) -> Stats {
    let mut s: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    Stats {
        median,
        min: s[0],
        max: s[n - 1],
    }
}

fn folder_info(dir: &Path) -> (usize, u64) {
    fn walk(d: &Path, n: &mut usize, bytes: &mut u64) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, n, bytes);
            } else if let Ok(m) = p.metadata() {
                *n += 1;
                *bytes += m.len();
            }
        }
    }
    let (mut n, mut bytes) = (0, 0);
    walk(dir, &mut n, &mut bytes);
    (n, bytes)
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is RUNS then folders.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(10);
    let mut dirs: Vec<PathBuf> = args
        .iter()
        .skip(
            if args.first().is_some_and(|a| a.parse::<usize>().is_ok()) {
                1
            } else {
                0
            },
        )
        .map(|a| {
            // Relative to the workspace root (as README and BENCHMARKS write them) when not
            // found from where cargo runs the bench (the crate's folder).
            let p = PathBuf::from(a);
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            if p.is_relative() && !p.exists() {
                root.join(p)
            } else {
                p
            }
        })
        .collect();
    if dirs.is_empty() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
        dirs.push(data.join("dicom/pykneer_subject01_DESS_echo1"));
        dirs.push(data.join("conformance/dcm_qa_siemens_orientation/In"));
    }
    let scratch = std::env::temp_dir().join(format!("mrisr-bench-dcm2niix-{}", std::process::id()));
    println!("runs per tool: {runs} (after one untimed warm-up each; files in the page cache)");
    println!(
        "| folder | files | MB | mrisr series / Mvoxels | mrisr scan+load median ms (min-max) | of which scan_dir | dcm2niix .nii | dcm2niix median ms (min-max) | mrisr / dcm2niix |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for dir in &dirs {
        assert!(dir.is_dir(), "not a folder: {}", dir.display());
        let (files, bytes) = folder_info(dir);
        // Warm-up (also fills the page cache).
        let (series, voxels, _) = mrisr_load(dir);
        let nii = dcm2niix(dir, &scratch);
        let mut t_ours = Vec::with_capacity(runs);
        let mut t_theirs = Vec::with_capacity(runs);
        let mut t_scan = Vec::with_capacity(runs);
        for _ in 0..runs {
            let t = Instant::now();
            let (_, _, scan) = std::hint::black_box(mrisr_load(dir));
            t_ours.push(t.elapsed());
            t_scan.push(scan);
            let t = Instant::now();
            std::hint::black_box(dcm2niix(dir, &scratch));
            t_theirs.push(t.elapsed());
        }
        let (a, b, sc) = (stats(&t_ours), stats(&t_theirs), stats(&t_scan));
        let name = dir
            .components()
            .rev()
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<PathBuf>();
        println!(
            "| {} | {files} | {:.1} | {series} / {:.2} | {:.1} ({:.1}-{:.1}) | {:.1} | {nii} | {:.1} ({:.1}-{:.1}) | {:.2} |",
            name.display(),
            bytes as f64 / 1e6,
            voxels as f64 / 1e6,
            a.median,
            a.min,
            a.max,
            sc.median,
            b.median,
            b.min,
            b.max,
            a.median / b.median
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
}
