//! Baseline upsampling: accuracy on smooth and band-limited signals, edges, and the real knee.

use std::f64::consts::PI;
use std::path::Path;

use mrisr::Volume;
use mrisr::degrade::{Degradation, SliceProfile};
use mrisr::metrics::{data_range, psnr};
use mrisr::resample::{Method, upsample};

use crate::support::fill;

fn max_err(a: &Volume, b: &Volume, margin: [usize; 3]) -> f64 {
    let mut worst = 0.0f64;
    for k in margin[2]..a.dims[2] - margin[2] {
        for j in margin[1]..a.dims[1] - margin[1] {
            for i in margin[0]..a.dims[0] - margin[0] {
                worst = worst.max((a.get(i, j, k) as f64 - b.get(i, j, k) as f64).abs());
            }
        }
    }
    worst
}

/// The smooth function sampled on the grid of `geom` in world mm (so fine and coarse grids see
/// the same continuous signal).
fn sample_world(geom: &Volume, f: impl Fn([f64; 3]) -> f64) -> Volume {
    let mut v = geom.clone();
    v.data = vec![0.0; v.dims.iter().product()];
    let g = v.clone();
    fill(&mut v, |i, j, k| f(g.world([i, j, k])));
    v
}

#[test]
fn cubic_approximates_a_smooth_function_and_beats_linear_and_nearest() {
    let mut coarse = Volume::zeros([20, 16, 12], [2.0, 2.0, 3.0]);
    coarse.affine[0][3] = 5.0;
    let smooth = |p: [f64; 3]| {
        50.0 + 10.0 * (2.0 * PI * p[0] / 40.0).cos() * (2.0 * PI * p[1] / 32.0 + 0.3).cos()
            + 5.0 * (2.0 * PI * p[2] / 36.0).sin()
    };
    let low = sample_world(&coarse, smooth);
    let factor = [2, 1, 3];
    let truth = sample_world(&coarse.refined_geometry(factor), smooth);
    let margin = [4, 0, 6]; // clamped edges are not interpolation
    let err = |m| max_err(&upsample(&low, factor, m), &truth, margin);
    let (cubic, linear, nearest) = (
        err(Method::Cubic),
        err(Method::Linear),
        err(Method::Nearest),
    );
    assert!(cubic < 0.15, "cubic max error {cubic}");
    assert!(cubic < linear / 3.0, "cubic {cubic} vs linear {linear}");
    assert!(linear < nearest, "linear {linear} vs nearest {nearest}");
    let up = upsample(&low, factor, Method::Cubic);
    assert_eq!(up.dims, [40, 16, 36]);
    assert_eq!(up.affine, coarse.refined_geometry(factor).affine);
}

#[test]
fn every_method_keeps_constants_including_edges() {
    let mut v = Volume::zeros([5, 4, 3], [1.0; 3]);
    v.data.iter_mut().for_each(|x| *x = 42.5);
    for m in [
        Method::Nearest,
        Method::Linear,
        Method::Cubic,
        Method::ZeroFill,
    ] {
        let up = upsample(&v, [3, 2, 4], m);
        assert_eq!(up.dims, [15, 8, 12]);
        for x in &up.data {
            assert!((x - 42.5).abs() < 1e-4, "{m:?}: {x}");
        }
    }
}

#[test]
fn zero_fill_undoes_k_space_truncation_of_a_band_limited_signal() {
    let dims = [32, 18, 24];
    let mut v = Volume::zeros(dims, [0.5, 0.5, 1.0]);
    fill(&mut v, |i, j, k| {
        1.0 + 0.3 * (2.0 * PI * 5.0 * i / 32.0 + 0.2).cos() * (2.0 * PI * 2.0 * j / 18.0).cos()
            + 0.2 * (2.0 * PI * 3.0 * k / 24.0 - 0.7).sin()
            + 0.1 * (2.0 * PI * 2.0 * i / 32.0).sin() * (2.0 * PI * 3.0 * k / 24.0).cos()
    });
    for factor in [[2, 1, 2], [2, 3, 3], [1, 3, 2]] {
        let d = Degradation::KSpaceTruncation { factor };
        let low = d.apply(&v);
        let up = upsample(&low, factor, Method::ZeroFill);
        assert_eq!(up.dims, dims);
        assert_eq!(up.affine, v.affine);
        let e = max_err(&up, &v, [0, 0, 0]);
        assert!(e < 1e-4, "{factor:?}: max error {e}");
        // And truncating the zero-filled volume gives the low-resolution one back.
        let again = d.apply(&up);
        let e2 = max_err(&again, &low, [0, 0, 0]);
        assert!(e2 < 1e-4, "{factor:?}: round trip error {e2}");
    }
}

#[test]
fn zero_fill_round_trips_an_even_coarse_grid_with_a_nyquist_component() {
    // Any coarse line, including the alternating pattern at the coarse Nyquist frequency,
    // survives upsample then truncate.
    let mut low = Volume::zeros([8, 1, 1], [2.0, 1.0, 1.0]);
    low.data = vec![3.0, -1.0, 4.0, 1.0, -5.0, 9.0, 2.0, 6.0];
    let up = upsample(&low, [2, 1, 1], Method::ZeroFill);
    let back = Degradation::KSpaceTruncation { factor: [2, 1, 1] }.apply(&up);
    for (a, b) in back.data.iter().zip(&low.data) {
        assert!((a - b).abs() < 1e-4, "{:?} vs {:?}", back.data, low.data);
    }
}

fn knee_crop() -> Volume {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ref/knee_dess_echo1.nii.gz");
    let v = mrisr::io::nifti::read_nifti_volume(path).unwrap();
    // 32 sagittal slices x 64 x 64 in-plane from the middle of the knee.
    let (s, d) = ([24, 224, 224], [32, 64, 64]);
    let mut out = v.clone();
    out.dims = d;
    out.data = Vec::with_capacity(d.iter().product());
    for k in s[2]..s[2] + d[2] {
        for j in s[1]..s[1] + d[1] {
            let row = v.index(s[0], j, k);
            out.data.extend_from_slice(&v.data[row..row + d[0]]);
        }
    }
    for r in 0..3 {
        out.affine[r][3] = v.world([s[0] as f64, s[1] as f64, s[2] as f64])[r];
    }
    out
}

#[test]
fn degrade_then_upsample_the_real_knee() {
    let hr = knee_crop();
    let range = data_range(&hr, None);
    assert!(range > 1000.0, "crop should contain anatomy, range {range}");

    // Thick slices in-plane along k (0.3125 mm -> 1.25 mm): cubic beats nearest.
    let factor = [1, 1, 4];
    let low = Degradation::ThickSlices {
        factor,
        profile: SliceProfile::Box,
    }
    .apply(&hr);
    let cubic = psnr(&upsample(&low, factor, Method::Cubic), &hr, range, None);
    let nearest = psnr(&upsample(&low, factor, Method::Nearest), &hr, range, None);
    assert!(cubic > 25.0, "cubic PSNR {cubic}");
    assert!(
        cubic > nearest + 0.5,
        "cubic {cubic} dB vs nearest {nearest} dB"
    );

    // k-space truncation by 2 in-plane: zero-filling is its matched inverse and beats cubic
    // away from the crop's borders (the FFT treats the cut-out block as periodic, so both
    // truncation and zero-filling ring where opposite borders differ).
    let factor = [1, 2, 2];
    let low = Degradation::KSpaceTruncation { factor }.apply(&hr);
    let zf = psnr(&upsample(&low, factor, Method::ZeroFill), &hr, range, None);
    let cu = psnr(&upsample(&low, factor, Method::Cubic), &hr, range, None);
    let dims = hr.dims;
    let interior: Vec<bool> = (0..hr.len())
        .map(|x| {
            let (j, k) = ((x / dims[0]) % dims[1], x / (dims[0] * dims[1]));
            (8..dims[1] - 8).contains(&j) && (8..dims[2] - 8).contains(&k)
        })
        .collect();
    let zfi = psnr(
        &upsample(&low, factor, Method::ZeroFill),
        &hr,
        range,
        Some(&interior),
    );
    let cui = psnr(
        &upsample(&low, factor, Method::Cubic),
        &hr,
        range,
        Some(&interior),
    );
    assert!(zf > 28.0 && cu > 28.0, "zero-fill PSNR {zf}, cubic {cu}");
    assert!(
        zfi > cui + 0.3,
        "interior: zero-fill {zfi} dB vs cubic {cui} dB"
    );
    eprintln!(
        "knee crop: thick-slice x4 cubic {cubic:.2} / nearest {nearest:.2} dB; \
         k-space x2 zero-fill {zf:.2} / cubic {cu:.2} dB (interior {zfi:.2} / {cui:.2})"
    );
}

/// Timings on the full 80 x 512 x 512 knee (run with `--ignored --nocapture`).
#[test]
#[ignore]
fn full_size_timings() {
    use std::time::Instant;
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/ref/knee_dess_echo1.nii.gz");
    let t = Instant::now();
    let hr = mrisr::io::nifti::read_nifti_volume(&path).unwrap();
    eprintln!("read nifti.gz: {:?}", t.elapsed());
    let range = data_range(&hr, None);
    for (d, m) in [
        (
            Degradation::KSpaceTruncation { factor: [1, 2, 2] },
            Method::ZeroFill,
        ),
        (
            Degradation::ThickSlices {
                factor: [2, 1, 1],
                profile: SliceProfile::Gaussian,
            },
            Method::Cubic,
        ),
    ] {
        let t = Instant::now();
        let low = d.apply(&hr);
        let t1 = t.elapsed();
        let t = Instant::now();
        let up = upsample(&low, d.factor(), m);
        let t2 = t.elapsed();
        let t = Instant::now();
        let p = psnr(&up, &hr, range, None);
        let t3 = t.elapsed();
        let t = Instant::now();
        let s = mrisr::metrics::ssim(&up, &hr, range, None);
        let t4 = t.elapsed();
        let t = Instant::now();
        let h = mrisr::metrics::hfen(&up, &hr, None);
        let t5 = t.elapsed();
        eprintln!(
            "{d:?}: degrade {t1:?}, upsample {m:?} {t2:?}, psnr {p:.2} ({t3:?}), ssim {s:.4} ({t4:?}), hfen {h:.4} ({t5:?})"
        );
    }
    let t = Instant::now();
    let bytes = mrisr::io::nifti::write_nifti_bytes(&hr, true).unwrap();
    eprintln!(
        "write nifti.gz ({} MB): {:?}",
        bytes.len() >> 20,
        t.elapsed()
    );
}
