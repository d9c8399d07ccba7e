//! PSNR, SSIM and HFEN: exact values where they are known, a brute-force SSIM check, and the
//! orderings each metric is supposed to give.

use mrisr::Volume;
use mrisr::degrade::gaussian_blur;
use mrisr::metrics::{data_range, hfen, mse, psnr, ssim};

/// Deterministic test image: blobs and edges, values 0..~1000.
fn phantom(dims: [usize; 3]) -> Volume {
    let mut v = Volume::zeros(dims, [1.0; 3]);
    let c: [f64; 3] = std::array::from_fn(|a| dims[a] as f64 / 2.0);
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                let p = [i as f64, j as f64, k as f64];
                let r2: f64 = (0..3).map(|a| ((p[a] - c[a]) / c[a]).powi(2)).sum();
                let mut x = if r2 < 0.7 { 600.0 } else { 50.0 };
                if (p[0] - c[0]).abs() < 3.0 && r2 < 0.7 {
                    x += 300.0;
                }
                x += 40.0 * (p[1] * 0.7).sin() * (p[2] * 0.5).cos();
                v.set(i, j, k, x.round() as f32); // integers: offsets stay exact
            }
        }
    }
    v
}

/// Gaussian noise from a fixed xorshift generator (Box-Muller).
fn noise(n: usize, sigma: f64, seed: u64) -> Vec<f32> {
    let mut s = seed.max(1);
    let mut uniform = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (uniform(), uniform());
            (sigma * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
        })
        .collect()
}

fn add(v: &Volume, d: &[f32]) -> Volume {
    let mut out = v.clone();
    out.data.iter_mut().zip(d).for_each(|(a, b)| *a += b);
    out
}

#[test]
fn identical_volumes_are_perfect() {
    let v = phantom([20, 18, 16]);
    let r = data_range(&v, None);
    assert_eq!(psnr(&v, &v, r, None), f64::INFINITY);
    assert!((ssim(&v, &v, r, None) - 1.0).abs() < 1e-12);
    assert_eq!(hfen(&v, &v, None), 0.0);
}

#[test]
fn known_mse_gives_the_exact_psnr_and_masks_select_voxels() {
    let v = phantom([10, 9, 8]);
    let shifted = add(&v, &vec![2.0; v.len()]);
    assert_eq!(mse(&shifted, &v, None), 4.0);
    let p = psnr(&shifted, &v, 100.0, None);
    assert!((p - 10.0 * (10000.0f64 / 4.0).log10()).abs() < 1e-12, "{p}");
    // Errors only outside the mask are not counted.
    let mut partial = v.clone();
    let mask: Vec<bool> = (0..v.len()).map(|i| i % 2 == 0).collect();
    for i in (1..v.len()).step_by(2) {
        partial.data[i] += 10.0;
    }
    assert_eq!(psnr(&partial, &v, 100.0, Some(&mask)), f64::INFINITY);
    assert_eq!(
        mse(&partial, &v, None),
        100.0 * (v.len() / 2) as f64 / v.len() as f64
    );
    // data_range follows the mask.
    let m2: Vec<bool> = v.data.iter().map(|&x| x > 400.0).collect();
    assert!(data_range(&v, Some(&m2)) < data_range(&v, None));
}

/// The separable, slice-by-slice SSIM equals a direct evaluation with the 3D window.
#[test]
fn ssim_matches_brute_force() {
    let dims = [9, 7, 6];
    let a = phantom(dims);
    let b = add(&gaussian_blur(&a, 0, 2.0), &noise(a.len(), 20.0, 7));
    let l = data_range(&a, None);
    let g: Vec<f64> = {
        let k: Vec<f64> = (-5i32..=5).map(|t| (-(t * t) as f64 / 4.5).exp()).collect();
        let s: f64 = k.iter().sum();
        k.into_iter().map(|x| x / s).collect()
    };
    let clamp = |x: isize, n: usize| x.clamp(0, n as isize - 1) as usize;
    let (c1, c2) = ((0.01 * l).powi(2), (0.03 * l).powi(2));
    let mut total = 0.0;
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            for i in 0..dims[0] {
                let mut m = [0.0f64; 5];
                for (tk, wk) in g.iter().enumerate() {
                    for (tj, wj) in g.iter().enumerate() {
                        for (ti, wi) in g.iter().enumerate() {
                            let ii = clamp(i as isize + ti as isize - 5, dims[0]);
                            let jj = clamp(j as isize + tj as isize - 5, dims[1]);
                            let kk = clamp(k as isize + tk as isize - 5, dims[2]);
                            let w = wi * wj * wk;
                            let (x, y) = (a.get(ii, jj, kk) as f64, b.get(ii, jj, kk) as f64);
                            m[0] += w * x;
                            m[1] += w * y;
                            m[2] += w * x * x;
                            m[3] += w * y * y;
                            m[4] += w * x * y;
                        }
                    }
                }
                let (vx, vy, cxy) = (m[2] - m[0] * m[0], m[3] - m[1] * m[1], m[4] - m[0] * m[1]);
                total += ((2.0 * m[0] * m[1] + c1) * (2.0 * cxy + c2))
                    / ((m[0] * m[0] + m[1] * m[1] + c1) * (vx + vy + c2));
            }
        }
    }
    let brute = total / a.len() as f64;
    let fast = ssim(&a, &b, l, None);
    assert!(
        (fast - brute).abs() < 1e-9,
        "separable {fast} vs brute force {brute}"
    );
    assert!(fast < 0.99 && fast > 0.3, "{fast}");
    // Symmetric in its arguments.
    assert!((ssim(&b, &a, l, None) - fast).abs() < 1e-12);
}

#[test]
fn ssim_decreases_with_noise() {
    let v = phantom([24, 20, 16]);
    let r = data_range(&v, None);
    let mut last = 1.0;
    for sigma in [5.0, 20.0, 60.0, 150.0, 400.0] {
        let s = ssim(&add(&v, &noise(v.len(), sigma, 3)), &v, r, None);
        assert!(s < last, "sigma {sigma}: {s} not below {last}");
        last = s;
    }
    assert!(last < 0.5, "heavy noise should ruin SSIM, got {last}");
}

/// HFEN ignores smooth, low-frequency error that PSNR counts in full, and grows with blur.
#[test]
fn hfen_weighs_high_frequencies() {
    let v = phantom([24, 24, 20]);
    let n = noise(v.len(), 30.0, 11);
    let noisy = add(&v, &n);
    let target_mse = mse(&noisy, &v, None);
    // A smooth bias field with the same MSE as the noise.
    let mut bias: Vec<f32> = (0..v.len())
        .map(|x| {
            let (i, k) = (x % 24, x / (24 * 24));
            ((i as f32 / 24.0) * 2.0 - 1.0) + 0.5 * (k as f32 / 20.0)
        })
        .collect();
    let ms: f64 = bias.iter().map(|&b| (b as f64).powi(2)).sum::<f64>() / v.len() as f64;
    let scale = (target_mse / ms).sqrt() as f32;
    bias.iter_mut().for_each(|b| *b *= scale);
    let biased = add(&v, &bias);
    assert!((mse(&biased, &v, None) / target_mse - 1.0).abs() < 1e-3);
    let (h_noise, h_bias) = (hfen(&noisy, &v, None), hfen(&biased, &v, None));
    // The clamped edges turn a ramp into a small LoG response at the borders.
    assert!(
        h_bias < 0.3 * h_noise,
        "bias HFEN {h_bias} vs noise HFEN {h_noise}"
    );
    // Inside, the LoG of a linear ramp is zero.
    let interior: Vec<bool> = (0..v.len())
        .map(|x| {
            let (i, j, k) = (x % 24, (x / 24) % 24, x / (24 * 24));
            (8..16).contains(&i) && (8..16).contains(&j) && (8..12).contains(&k)
        })
        .collect();
    let (hn, hb) = (
        hfen(&noisy, &v, Some(&interior)),
        hfen(&biased, &v, Some(&interior)),
    );
    assert!(
        hb < 0.01 * hn,
        "interior: bias HFEN {hb} vs noise HFEN {hn}"
    );
    // A constant offset has no LoG response at all.
    let offset = add(&v, &vec![25.0; v.len()]);
    assert!(hfen(&offset, &v, None) < 1e-4);

    let mut last = 0.0;
    for fwhm in [1.0, 2.0, 4.0] {
        let mut b = v.clone();
        for axis in 0..3 {
            b = gaussian_blur(&b, axis, fwhm);
        }
        let h = hfen(&b, &v, None);
        assert!(h > last, "HFEN should grow with blur: {h} after {last}");
        last = h;
    }
}
