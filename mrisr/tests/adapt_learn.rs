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

fn psnr(a: &Volume, b: &Volume) -> f64 {
    let (lo, hi) = b.min_max();
    mrisr::metrics::psnr(a, b, (hi - lo) as f64, None)
}

#[test]
fn a_short_learning_run_beats_the_spline() {
    let truth = phantom([64, 64, 64], 3);
    let scan = thick_slices(&truth, [1, 1, 4], SliceProfile::Box);
    let task = Task::for_scan(&scan, Some(4.0), None, SliceProfile::Box).unwrap();
    let settings = Settings {
        steps: 1000,
        batch: 8,
        patch: [32, 32],
        ..Settings::default()
    };
    let device = burn::tensor::Device::flex();
    let (net, adaptation) = adapt::learn::learn(&scan, &task, &settings, None, &device, &mut |s| {
        if s.step % 100 == 0 {
            eprintln!("step {}: L1 {:.4}, pairs {:.5}", s.step, s.loss, s.probe);
        }
        true
    })
    .unwrap();
    eprintln!("{adaptation:?}");
    assert!(adaptation.pair_loss_after < 0.8 * adaptation.pair_loss_before);
    let weights = adapt::learn::weight_file(&net, adaptation).unwrap();
    let (learned, card) = Network::load("learned", &weights, None, 1 << 28, 0).unwrap();
    let out = mrisr::infer::block_on(learned.upscale(&card, &scan, None, &mut |_| true)).unwrap();
    let spline = resample(&scan, truth.dims, Method::BSpline);
    let (a, b) = (psnr(&out, &truth), psnr(&spline, &truth));
    eprintln!("learned {a:.2} dB, B-spline {b:.2} dB");
    assert!(a > b + 1.0, "learned {a:.2} dB vs B-spline {b:.2} dB");
}
