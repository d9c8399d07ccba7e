//! Image-quality metrics between a test volume (e.g. the super-resolved output) and a
//! reference (the high-resolution truth) on the same grid: PSNR, 3D SSIM and HFEN.
//!
//! Every metric takes an optional foreground `mask` (one `bool` per voxel, i fastest like the
//! volume): only voxels where it is `true` are counted. Filters (SSIM's Gaussian window,
//! HFEN's LoG) still see the whole volume, so the mask only selects where the result is
//! averaged. Edges are handled by clamping (repeating the edge voxel).
//!
//! All functions panic if the two volumes (or the mask) differ in size: comparing different
//! grids is a programming error.

use crate::Volume;
use crate::resample::{convolve_axis, convolve_clamped_f64};

fn check(test: &Volume, reference: &Volume, mask: Option<&[bool]>) {
    assert_eq!(
        test.dims, reference.dims,
        "metrics need volumes on the same grid"
    );
    assert_eq!(
        test.data.len(),
        reference.data.len(),
        "metrics need volumes of the same size"
    );
    if let Some(m) = mask {
        assert_eq!(
            m.len(),
            reference.data.len(),
            "mask size must match the volume"
        );
    }
}

#[inline]
fn counted(mask: Option<&[bool]>, i: usize) -> bool {
    mask.is_none_or(|m| m[i])
}

/// The value range (max - min) of `reference` over the mask: the `data_range` PSNR and SSIM
/// should normally be given. Using the reference's range (not a fixed 1.0 or the dtype's
/// range) makes the numbers comparable across volumes with different intensity scales, and
/// it does not depend on the output being tested. Non-finite voxels are ignored; 0 for an empty
/// selection.
pub fn data_range(reference: &Volume, mask: Option<&[bool]>) -> f64 {
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for (i, &v) in reference.data.iter().enumerate() {
        if v.is_finite() && counted(mask, i) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    if hi >= lo { (hi - lo) as f64 } else { 0.0 }
}

/// Mean squared error over the mask (NaN when the mask selects nothing).
pub fn mse(test: &Volume, reference: &Volume, mask: Option<&[bool]>) -> f64 {
    check(test, reference, mask);
    let mut sum = 0.0f64;
    let mut n = 0usize;
    for (i, (&a, &b)) in test.data.iter().zip(&reference.data).enumerate() {
        if counted(mask, i) {
            let d = a as f64 - b as f64;
            sum += d * d;
            n += 1;
        }
    }
    sum / n as f64
}

/// Peak signal-to-noise ratio in dB: `10 log10(data_range^2 / MSE)`.
///
/// `data_range` is explicit so callers choose it consciously; the usual choice is
/// [`data_range`] of the reference over the same mask. Identical volumes give `+inf`.
pub fn psnr(test: &Volume, reference: &Volume, data_range: f64, mask: Option<&[bool]>) -> f64 {
    let e = mse(test, reference, mask);
    if e == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (data_range * data_range / e).log10()
}

/// Gaussian standard deviation of the SSIM window, in voxels (Wang et al. 2004).
pub const SSIM_SIGMA: f64 = 1.5;
/// SSIM window radius: 11 taps per axis, as in Wang et al.'s 11x11 window.
pub const SSIM_RADIUS: usize = 5;

fn ssim_kernel() -> Vec<f64> {
    let r = SSIM_RADIUS as isize;
    let mut k: Vec<f64> = (-r..=r)
        .map(|t| (-((t * t) as f64) / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|x| *x /= s);
    k
}

/// Mean structural similarity (Wang, Bovik, Sheikh & Simoncelli 2004) in 3D: local means,
/// variances and covariance under an 11^3 Gaussian window (sigma 1.5 voxels, applied
/// separably), `C1 = (0.01 L)^2`, `C2 = (0.03 L)^2` with `L = data_range`, averaged over the
/// mask. Identical volumes give 1.
///
/// Works one output slice (along k) at a time, so extra memory is a few slices of f64.
pub fn ssim(test: &Volume, reference: &Volume, data_range: f64, mask: Option<&[bool]>) -> f64 {
    check(test, reference, mask);
    let [nx, ny, nz] = reference.dims;
    let plane = nx * ny;
    if plane == 0 || nz == 0 {
        return f64::NAN;
    }
    let c1 = (0.01 * data_range).powi(2);
    let c2 = (0.03 * data_range).powi(2);
    let g = ssim_kernel();
    let r = SSIM_RADIUS as isize;
    // mu_x, mu_y, E[x^2], E[y^2], E[xy] for the current slice, plus a scratch plane.
    let mut acc: [Vec<f64>; 5] = std::array::from_fn(|_| vec![0.0; plane]);
    let mut tmp = vec![0.0f64; plane];
    let mut sum = 0.0f64;
    let mut count = 0usize;
    for k in 0..nz {
        acc.iter_mut()
            .for_each(|a| a.iter_mut().for_each(|v| *v = 0.0));
        // Filter along k while forming the products.
        for (t, &w) in g.iter().enumerate() {
            let kk = (k as isize + t as isize - r).clamp(0, nz as isize - 1) as usize;
            let xs = &test.data[kk * plane..(kk + 1) * plane];
            let ys = &reference.data[kk * plane..(kk + 1) * plane];
            let [mx, my, xx, yy, xy] = &mut acc;
            for p in 0..plane {
                let x = xs[p] as f64;
                let y = ys[p] as f64;
                let wx = w * x;
                let wy = w * y;
                mx[p] += wx;
                my[p] += wy;
                xx[p] += wx * x;
                yy[p] += wy * y;
                xy[p] += wx * y;
            }
        }
        for a in acc.iter_mut() {
            filter_plane(a, &mut tmp, nx, ny, &g);
        }
        let [mx, my, xx, yy, xy] = &acc;
        for p in 0..plane {
            if !counted(mask, k * plane + p) {
                continue;
            }
            let (ux, uy) = (mx[p], my[p]);
            let vx = xx[p] - ux * ux;
            let vy = yy[p] - uy * uy;
            let cxy = xy[p] - ux * uy;
            let s = ((2.0 * ux * uy + c1) * (2.0 * cxy + c2))
                / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
            sum += s;
            count += 1;
        }
    }
    sum / count as f64
}

/// Separable in-plane filtering (along i, then j) of one `nx x ny` plane, clamping at edges.
fn filter_plane(a: &mut [f64], tmp: &mut [f64], nx: usize, ny: usize, g: &[f64]) {
    let r = (g.len() / 2) as isize;
    // Along i: a -> tmp.
    for (row, out) in a.chunks_exact(nx).zip(tmp.chunks_exact_mut(nx)) {
        convolve_clamped_f64(row, out, g);
    }
    // Along j: tmp -> a, whole rows at a time.
    a.iter_mut().for_each(|v| *v = 0.0);
    for j in 0..ny {
        let out = &mut a[j * nx..(j + 1) * nx];
        for (t, &w) in g.iter().enumerate() {
            let jj = (j as isize + t as isize - r).clamp(0, ny as isize - 1) as usize;
            let src = &tmp[jj * nx..(jj + 1) * nx];
            for (o, &v) in out.iter_mut().zip(src) {
                *o += w * v;
            }
        }
    }
}

/// Standard deviation of HFEN's Laplacian-of-Gaussian, in voxels (Ravishankar & Bresler 2011).
pub const HFEN_SIGMA: f64 = 1.5;
/// Radius of the LoG kernel: 15 taps per axis, the 15x15 window of Ravishankar & Bresler.
pub const HFEN_RADIUS: usize = 7;

/// 1D Gaussian and its zero-sum second derivative for the LoG.
fn log_kernels() -> (Vec<f64>, Vec<f64>) {
    let r = HFEN_RADIUS as isize;
    let s2 = HFEN_SIGMA * HFEN_SIGMA;
    let mut g: Vec<f64> = (-r..=r)
        .map(|t| (-((t * t) as f64) / (2.0 * s2)).exp())
        .collect();
    let sg: f64 = g.iter().sum();
    g.iter_mut().for_each(|x| *x /= sg);
    let mut d2: Vec<f64> = (-r..=r)
        .zip(&g)
        .map(|(t, &gv)| gv * ((t * t) as f64 - s2) / (s2 * s2))
        .collect();
    // Zero sum (like MATLAB's fspecial('log')) so a constant has no response.
    let mean = d2.iter().sum::<f64>() / d2.len() as f64;
    d2.iter_mut().for_each(|x| *x -= mean);
    (g, d2)
}

/// 3D Laplacian of Gaussian (sigma [`HFEN_SIGMA`] voxels, separable: the sum of the second
/// derivative along each axis smoothed along the other two), edges clamped.
pub fn laplacian_of_gaussian(data: &[f32], dims: [usize; 3]) -> Vec<f32> {
    let (g, d2) = log_kernels();
    let pass = |src: &[f32], axis: usize, k: &[f64]| convolve_axis(src, dims, axis, k);
    let gi = pass(data, 0, &g);
    let gij = pass(&gi, 1, &g);
    let mut out = pass(&gij, 2, &d2); // d2_k g_j g_i
    let gik = pass(&gi, 2, &g);
    drop(gi);
    let term_j = pass(&gik, 1, &d2);
    drop(gik);
    out.iter_mut().zip(&term_j).for_each(|(o, t)| *o += t);
    drop(term_j);
    let gj = pass(data, 1, &g);
    let gjk = pass(&gj, 2, &g);
    drop(gj);
    let term_i = pass(&gjk, 0, &d2);
    out.iter_mut().zip(&term_i).for_each(|(o, t)| *o += t);
    out
}

/// High-frequency error norm (Ravishankar & Bresler 2011):
/// `||LoG(test - reference)|| / ||LoG(reference)||` with a 3D LoG of sigma 1.5 voxels, the
/// norms taken over the mask. 0 for identical volumes. The LoG is a band-pass edge detector,
/// so HFEN measures how well edges and fine structure are reproduced: blurred edges raise it,
/// and so does noise (also high-frequency). Returns `inf` or NaN if the reference has no LoG
/// energy (a constant volume).
pub fn hfen(test: &Volume, reference: &Volume, mask: Option<&[bool]>) -> f64 {
    check(test, reference, mask);
    let diff: Vec<f32> = test
        .data
        .iter()
        .zip(&reference.data)
        .map(|(a, b)| a - b)
        .collect();
    let ld = laplacian_of_gaussian(&diff, reference.dims);
    drop(diff);
    let lr = laplacian_of_gaussian(&reference.data, reference.dims);
    let mut num = 0.0f64;
    let mut den = 0.0f64;
    for (i, (&d, &r)) in ld.iter().zip(&lr).enumerate() {
        if counted(mask, i) {
            num += d as f64 * d as f64;
            den += r as f64 * r as f64;
        }
    }
    if num == 0.0 {
        return 0.0;
    }
    (num / den).sqrt()
}
