//! Learning from a scan, end to end with burn on the CPU: pairs from the scan's in-plane axes,
//! a short learning run, the result on the scan's thick axis against cubic B-spline.

use mrisr::Volume;
use mrisr::adapt::{self, Task, learn::Settings};
use mrisr::degrade::{SliceProfile, thick_slices};
use mrisr::pipeline::Network;
use mrisr::resample::{Method, resample};

/// A phantom of sharp-edged ellipsoids (0.5 mm voxels): edges at every angle, as in anatomy.
fn phantom(n: [usize; 3], seed: u64) -> Volume {
    let mut rng = adapt::pairs::Rng::new(seed);
    let blobs: Vec<([f64; 3], [f64; 3], f32)> = (0..40)
        .map(|_| {
            let c = [0, 1, 2].map(|a| rng.unit() * n[a] as f64);
            let r = [0, 1, 2].map(|_| 3.0 + rng.unit() * 12.0);
            (c, r, 0.2 + rng.unit() as f32)
        })
        .collect();
    let mut v = Volume::zeros(n, [0.5; 3]);
    for k in 0..n[2] {
        for j in 0..n[1] {
            for i in 0..n[0] {
                let p = [i as f64, j as f64, k as f64];
                let mut s = 0.1f32;
                for (c, r, a) in &blobs {
                    let d: f64 = (0..3).map(|x| ((p[x] - c[x]) / r[x]).powi(2)).sum();
                    if d < 1.0 {
                        s += a;
                    }
                }
                v.set(i, j, k, s);
            }
        }
    }
    v
}

/// A centred crop of a real brain (Colin27, 1 mm), from `../shared/data`.
fn brain_crop(edge: usize) -> Volume {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/train/subject03_brain_t1-colin27.nii.gz"
    );
    let v = mrisr::io::nifti::read_nifti(path).expect("../shared/data is beside the clone");
    mrisr::volume::center_crop(&v[0], [edge; 3])
}

fn tissue_psnr(a: &Volume, truth: &Volume) -> f64 {
    let (lo, hi) = truth.min_max();
    let mask: Vec<bool> = truth
        .data
        .iter()
        .map(|&x| x > lo + 0.1 * (hi - lo))
        .collect();
    mrisr::metrics::psnr(a, truth, (hi - lo) as f64, Some(&mask))
}

#[test]
fn a_short_learning_run_on_a_real_crop_beats_the_spline() {
    // x2 thick slices (2 mm) simulated along k from a real 1 mm brain; the scan alone teaches.
    let truth = brain_crop(96);
    let scan = thick_slices(&truth, [1, 1, 2], SliceProfile::Box);
    let task = Task::for_scan(&scan, Some(2.0), None, SliceProfile::Box).unwrap();
    let settings = Settings {
        steps: 800,
        batch: 8,
        patch: [32, 32],
        ..Settings::default()
    };
    let device = burn::tensor::Device::flex();
    let (net, adaptation) =
        adapt::learn::learn(&scan, &task, &settings, None, &device, &mut |_| true).unwrap();
    assert!(
        adaptation.pair_loss_after < 0.95 * adaptation.pair_loss_before,
        "{adaptation:?}"
    );
    let weights = adapt::learn::weight_file(&net, settings.net, adaptation).unwrap();
    let (learned, card) = Network::load("learned", &weights, None, 1 << 28, 0).unwrap();
    let out = mrisr::infer::block_on(learned.upscale(&card, &scan, None, &mut |_| true)).unwrap();
    assert_eq!(out.dims, truth.dims);
    let spline = resample(&scan, truth.dims, Method::BSpline);
    let keys = resample(&scan, truth.dims, Method::Cubic);
    let (a, b, c) = (
        tissue_psnr(&out, &truth),
        tissue_psnr(&spline, &truth),
        tissue_psnr(&keys, &truth),
    );
    eprintln!("learned {a:.2} dB, B-spline {b:.2} dB, Keys {c:.2} dB");
    assert!(
        a > b.max(c) + 0.3,
        "learned {a:.2} dB vs B-spline {b:.2}, Keys {c:.2}"
    );
}

#[test]
fn learning_stops_when_asked_and_refuses_bad_scans() {
    let scan = thick_slices(&phantom([40, 40, 40], 1), [1, 1, 4], SliceProfile::Box);
    let task = Task::for_scan(&scan, None, None, SliceProfile::Box).unwrap();
    let settings = Settings {
        steps: 50,
        patch: [16, 16],
        batch: 2,
        ..Settings::default()
    };
    let device = burn::tensor::Device::flex();
    let mut seen = 0;
    let r = adapt::learn::learn(&scan, &task, &settings, None, &device, &mut |s| {
        seen = s.step;
        s.step < 3
    });
    assert!(matches!(r, Err(mrisr::Error::Cancelled)));
    assert_eq!(seen, 3);
    // Wrong starting weights: a 3D file is not a planar network.
    let generic = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../www/weights/fast-mse-slicesx2.safetensors"
    ))
    .unwrap();
    let e = adapt::learn::learn(
        &scan,
        &task,
        &settings,
        Some(("fast.safetensors", &generic)),
        &device,
        &mut |_| true,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("fast.safetensors"), "{e}");
    // An isotropic volume: a clear refusal before any work.
    let e = Task::for_scan(&phantom([32, 32, 32], 2), None, None, SliceProfile::Box)
        .unwrap_err()
        .to_string();
    assert!(e.contains("isotropic"), "{e}");
}
