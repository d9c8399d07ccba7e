//! The `mrisr` command as a user runs it: the built-in models, `upscale` without a weight file,
//! and `upscale --all` over a folder with a good and a broken series.

use std::path::Path;
use std::process::Command;

use mrisr::Volume;
use mrisr::io::dicom::{WriteOptions, write_series_to_dir};

fn mrisr(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mrisr"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A small thick-slice series (2 mm slices, 0.5 mm in plane) written as DICOM into `dir`.
fn series(dir: &Path, description: &str, seed: u32) {
    let dims = [24, 20, 6];
    let data = (0..dims.iter().product::<usize>())
        .map(|n| {
            let (i, j, k) = (n % 24, (n / 24) % 20, n / 480);
            100.0
                + 50.0 * ((i as f32 * 0.4 + seed as f32).sin() + (j as f32 * 0.3).cos())
                + k as f32
        })
        .collect();
    let mut v = Volume::from_data(dims, [0.5, 0.5, 2.0], data);
    v.meta.description = description.into();
    let opts = WriteOptions {
        description_suffix: String::new(),
        ..WriteOptions::default()
    };
    write_series_to_dir(&v, &opts, dir).unwrap();
}

#[test]
fn models_lists_the_built_in_ones() {
    let (ok, out, err) = mrisr(&["models"]);
    assert!(ok, "{err}");
    assert!(out.contains("fast-mse-slicesx2 (default)"), "{out}");
    assert!(
        out.contains("undoes") && out.contains("dB PSNR over cubic"),
        "{out}"
    );
}

#[test]
fn upscale_without_weights_uses_the_default_model() {
    let tmp = tempfile::tempdir().unwrap();
    series(&tmp.path().join("in"), "T1 thick", 1);
    let out = tmp.path().join("out.nii.gz");
    let (ok, _, err) = mrisr(&[
        "upscale",
        tmp.path().join("in").to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("model: fast-mse-slicesx2"), "{err}");
    let v = mrisr::io::nifti::read_nifti_volume(&out).unwrap();
    // x2 along the 2 mm axis.
    assert_eq!(v.dims, [24, 20, 12]);
    let (ok, _, err) = mrisr(&["upscale", "x", "y.nii.gz", "--model", "nope"]);
    assert!(!ok && err.contains("no published model 'nope'"), "{err}");
}

#[test]
fn upscale_all_goes_past_a_broken_series_and_reports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("study");
    series(&input.join("a"), "good one", 1);
    series(&input.join("b"), "broken one", 2);
    // Cut the pixel data of one file of the second series short: its header still reads.
    let victim = std::fs::read_dir(input.join("b"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(&victim).unwrap();
    std::fs::write(&victim, &bytes[..bytes.len() - 300]).unwrap();
    let out = tmp.path().join("results");
    let (ok, table, err) = mrisr(&[
        "upscale",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
        "--all",
    ]);
    assert!(!ok, "a failed series must fail the run: {table}{err}");
    assert!(err.contains("1 of 2 failed"), "{err}");
    let good = table
        .lines()
        .find(|l| l.contains("good one"))
        .expect(&table);
    let bad = table
        .lines()
        .find(|l| l.contains("broken one"))
        .expect(&table);
    assert!(good.contains("[24, 20, 12]"), "{good}");
    assert!(bad.contains("FAILED"), "{bad}");
    let mut written: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    written.sort();
    // The result and its BIDS sidecar, which says what was done.
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(written[0].ends_with("_good_one.json"), "{written:?}");
    assert!(written[1].ends_with("_good_one.nii.gz"), "{written:?}");
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(&written[0])).unwrap()).unwrap();
    assert_eq!(sidecar["ConversionSoftware"], "mrisr");
    assert!(sidecar["mrisr"]["model"].is_string(), "{sidecar}");
}

/// `--adapt`: learns from a small series (48 x 48 in plane, 2 mm slices), writes the result
/// at x2.5 (not a whole factor), its sidecar with what was learned, and the weights, which
/// `--weights` applies again to the same grid.
#[test]
fn upscale_adapt_learns_from_the_scan_and_keeps_the_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let dims = [48, 48, 8];
    let data = (0..dims.iter().product::<usize>())
        .map(|n| {
            let (i, j) = (n % 48, (n / 48) % 48);
            let r = ((i as f32 - 24.0).powi(2) + (j as f32 - 20.0).powi(2)).sqrt();
            if r < 15.0 { 300.0 } else { 20.0 }
        })
        .collect();
    let mut v = Volume::from_data(dims, [0.5, 0.5, 2.0], data);
    v.meta.description = "disc".into();
    let input = tmp.path().join("in.nii.gz");
    mrisr::io::nifti::write_nifti(&v, &input).unwrap();
    let (out, weights) = (
        tmp.path().join("out.nii.gz"),
        tmp.path().join("w.safetensors"),
    );
    let arg = |p: &Path| p.to_str().unwrap().to_string();
    let (ok, _, err) = mrisr(&[
        "upscale",
        &arg(&input),
        &arg(&out),
        "--adapt",
        "--factor",
        "2.5",
        "--steps",
        "5",
        "--save-weights",
        &arg(&weights),
    ]);
    assert!(ok, "{err}");
    assert!(err.contains("learned in"), "{err}");
    let r = mrisr::io::nifti::read_nifti_volume(&out).unwrap();
    assert_eq!(r.dims, [48, 48, 20]);
    assert!((r.spacing[2] - 0.8).abs() < 1e-4, "{:?}", r.spacing);
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("out.json")).unwrap())
            .unwrap();
    assert_eq!(sidecar["mrisr"]["adaptation"]["steps"], 5, "{sidecar}");
    assert_eq!(sidecar["mrisr"]["adaptation"]["task"]["factor"], 2.5);
    // The kept weights apply again.
    let again = tmp.path().join("again.nii.gz");
    let (ok, _, err) = mrisr(&[
        "upscale",
        &arg(&input),
        &arg(&again),
        "--weights",
        &arg(&weights),
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        mrisr::io::nifti::read_nifti_volume(&again).unwrap().dims,
        [48, 48, 20]
    );
    // An isotropic volume: a clear refusal.
    let iso = tmp.path().join("iso.nii.gz");
    mrisr::io::nifti::write_nifti(&Volume::zeros([32, 32, 32], [1.0; 3]), &iso).unwrap();
    let (ok, _, err) = mrisr(&["upscale", &arg(&iso), &arg(&out), "--adapt"]);
    assert!(!ok && err.contains("isotropic"), "{err}");
}

/// The GPU path of the command (burn on wgpu) gives the CPU engine's voxels. CI runs it on a
/// software Vulkan device (lavapipe, `.ci/run` installs it, `MRISR_REQUIRE_WGPU=1`); elsewhere
/// it is skipped when wgpu finds no adapter.
#[test]
fn upscale_on_wgpu_equals_the_cpu_engine() {
    let tmp = tempfile::tempdir().unwrap();
    series(&tmp.path().join("in"), "T1 thick", 3);
    let input = tmp.path().join("in");
    let arg = |p: &Path| p.to_str().unwrap().to_string();
    let (cpu, gpu) = (tmp.path().join("cpu.nii.gz"), tmp.path().join("gpu.nii.gz"));
    let (ok, _, err) = mrisr(&["upscale", &arg(&input), &arg(&cpu)]);
    assert!(ok, "{err}");
    let (ok, _, err) = mrisr(&["upscale", &arg(&input), &arg(&gpu), "--device", "wgpu"]);
    if !ok && std::env::var("MRISR_REQUIRE_WGPU").is_err() {
        eprintln!(
            "skipped: no wgpu adapter here ({})",
            err.lines().last().unwrap_or("")
        );
        return;
    }
    assert!(ok, "{err}");
    let a = mrisr::io::nifti::read_nifti_volume(&cpu).unwrap();
    let b = mrisr::io::nifti::read_nifti_volume(&gpu).unwrap();
    assert_eq!(a.dims, b.dims);
    let (lo, hi) = a.min_max();
    let worst = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, f32::max);
    assert!(
        worst <= 1e-4 * (hi - lo),
        "largest difference {worst} of a range {}",
        hi - lo
    );
}
