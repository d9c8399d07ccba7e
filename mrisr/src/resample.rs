//! Baseline upsampling of a low-resolution volume onto a grid `factor` times finer: the
//! non-learned counterpart of each simulated acquisition in [`crate::degrade`].
//!
//! The output grid is always [`Volume::refined_geometry`]: it covers the same field of view, so
//! fine voxel `j` along an axis with factor `f` sits at coarse index `s = (j + 0.5) / f - 0.5`.
//! Every method is separable (one axis at a time; axes with factor 1 are left alone) and
//! handles the edges by clamping (repeating the edge voxel), except zero-filling, which is
//! periodic like the Fourier transform it inverts.

use std::f64::consts::PI;

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;
use serde::{Deserialize, Serialize};

use crate::Volume;

/// How to interpolate between coarse voxels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Nearest coarse voxel (each coarse voxel repeated `factor` times).
    Nearest,
    /// Linear interpolation ("trilinear" when all axes are upsampled).
    Linear,
    /// Catmull-Rom / Keys cubic convolution with `a = -0.5` ("tricubic"): exact for quadratics,
    /// no prefilter. The baseline for thick-slice degradations.
    Cubic,
    /// k-space zero-filling (periodic sinc interpolation): the exact inverse of
    /// [`crate::degrade::Degradation::KSpaceTruncation`] for band-limited content.
    ZeroFill,
    /// Cubic B-spline interpolation (Unser's prefilter, mirror boundaries): exact for cubics,
    /// smoother than Keys and usually the stronger baseline for thick slices.
    BSpline,
}

impl Method {
    /// Name as printed in tables and model cards.
    pub fn name(self) -> &'static str {
        match self {
            Method::Nearest => "nearest",
            Method::Linear => "linear",
            Method::Cubic => "Keys cubic",
            Method::ZeroFill => "zero-fill",
            Method::BSpline => "cubic B-spline",
        }
    }
}

/// `vol` resampled onto `vol.refined_geometry(factor)` with `method`.
///
/// Panics if a factor is 0 (a programming error).
pub fn upsample(vol: &Volume, factor: [usize; 3], method: Method) -> Volume {
    assert!(
        factor.iter().all(|&f| f >= 1),
        "upsampling factors must be at least 1"
    );
    if method == Method::ZeroFill {
        let mut out = vol.refined_geometry(factor);
        let mut data = vol.data.clone();
        let mut dims = vol.dims;
        for axis in 0..3 {
            if factor[axis] > 1 && dims[axis] > 0 {
                data = zero_fill_axis(&data, dims, axis, factor[axis]);
                dims[axis] *= factor[axis];
            }
        }
        out.data = data;
        return out;
    }
    resample(
        vol,
        std::array::from_fn(|a| vol.dims[a] * factor[a]),
        method,
    )
}

/// `vol` interpolated onto `vol.regridded_geometry(dims)`: the same field of view with any
/// number of voxels per axis (non-integer factors too). Axes whose count does not change are
/// left alone. Zero-filling needs integer factors: use [`upsample`].
pub fn resample(vol: &Volume, dims: [usize; 3], method: Method) -> Volume {
    assert!(
        method != Method::ZeroFill,
        "zero-filling needs integer factors"
    );
    let mut out = vol.regridded_geometry(dims);
    let mut data = vol.data.clone();
    let mut cur = vol.dims;
    for axis in 0..3 {
        let (n, m) = (cur[axis], dims[axis]);
        if n == m || n == 0 || m == 0 {
            cur[axis] = m;
            if n != m {
                data = vec![0.0; cur.iter().product()];
            }
            continue;
        }
        let taps = Taps::resampling(n, m, method);
        data = if method == Method::BSpline {
            let mut coef = vec![0f32; n];
            map_axis(&data, cur, axis, m, |src, dst| {
                bspline_coefficients(src, &mut coef);
                taps.apply(&coef, dst)
            })
        } else {
            map_axis(&data, cur, axis, m, |src, dst| taps.apply(src, dst))
        };
        cur[axis] = m;
    }
    debug_assert_eq!(cur, out.dims);
    out.data = data;
    out
}

/// The cubic B-spline basis function.
pub fn bspline3(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        (4.0 - 6.0 * x * x + 3.0 * x * x * x) / 6.0
    } else if x < 2.0 {
        let t = 2.0 - x;
        t * t * t / 6.0
    } else {
        0.0
    }
}

/// Cubic B-spline coefficients of a line of samples (Unser 1999, mirror boundaries): the
/// spline through `c` with basis [`bspline3`] passes exactly through every sample.
pub fn bspline_coefficients(samples: &[f32], c: &mut [f32]) {
    let n = samples.len();
    c.copy_from_slice(samples);
    if n < 2 {
        return;
    }
    let z = 3f64.sqrt() - 2.0;
    // Causal initialisation: the mirrored sum, truncated where z^k is negligible.
    let horizon = n.min(30);
    let mut zk = z;
    let mut sum = c[0] as f64;
    for &v in &c[1..horizon] {
        sum += zk * v as f64;
        zk *= z;
    }
    let mut prev = sum;
    c[0] = prev as f32;
    for v in &mut c[1..] {
        prev = *v as f64 + z * prev;
        *v = prev as f32;
    }
    // Anti-causal pass.
    let mut next = z / (z * z - 1.0) * (c[n - 1] as f64 + z * c[n - 2] as f64);
    c[n - 1] = (6.0 * next) as f32;
    for k in (0..n - 1).rev() {
        next = z * (next - c[k] as f64);
        c[k] = (6.0 * next) as f32;
    }
}

/// Keys' cubic convolution kernel with `a = -0.5` (Catmull-Rom).
pub fn keys_cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x <= 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

/// A 1D linear map from a line of `len_in` samples to a line of `len_out`: output `j` is
/// `sum_t w[j][t] * src[idx[j][t]]` with a fixed number of taps per output (indices already
/// clamped into the line). Used for every separable filter and resampler in the crate.
#[derive(Clone, Debug)]
pub(crate) struct Taps {
    pub width: usize,
    pub idx: Vec<u32>,
    pub w: Vec<f32>,
}

impl Taps {
    /// Builds taps from a function giving, for output `j`, the first (possibly out-of-range)
    /// input index and `width` weights; indices are clamped to `0..len_in`.
    pub fn build(
        len_in: usize,
        len_out: usize,
        width: usize,
        mut f: impl FnMut(usize, &mut [f64]) -> isize,
    ) -> Self {
        let mut idx = Vec::with_capacity(len_out * width);
        let mut w = Vec::with_capacity(len_out * width);
        let mut buf = vec![0.0f64; width];
        let last = len_in as isize - 1;
        for j in 0..len_out {
            buf.iter_mut().for_each(|x| *x = 0.0);
            let first = f(j, &mut buf);
            for (t, &wt) in buf.iter().enumerate() {
                idx.push((first + t as isize).clamp(0, last) as u32);
                w.push(wt as f32);
            }
        }
        Taps { width, idx, w }
    }

    /// Interpolation from `n` samples onto `m` covering the same extent (see
    /// [`Volume::regridded_geometry`]) for the point-sampling methods. B-spline taps apply to
    /// coefficients ([`bspline_coefficients`]), with mirrored indices at the ends.
    pub fn resampling(n: usize, m: usize, method: Method) -> Self {
        let step = n as f64 / m as f64;
        let pos = |j: usize| (j as f64 + 0.5) * step - 0.5;
        match method {
            Method::BSpline => {
                let mut t = Self::build(n, m, 4, |j, w| {
                    let s = pos(j);
                    let fl = s.floor();
                    let t = s - fl;
                    w[0] = bspline3(1.0 + t);
                    w[1] = bspline3(t);
                    w[2] = bspline3(1.0 - t);
                    w[3] = bspline3(2.0 - t);
                    fl as isize - 1
                });
                // Mirror instead of clamp (the prefilter assumed mirrored samples).
                for j in 0..m {
                    let first = pos(j).floor() as isize - 1;
                    for k in 0..4 {
                        t.idx[j * 4 + k] = mirror(first + k as isize, n) as u32;
                    }
                }
                t
            }
            Method::Nearest | Method::Linear | Method::Cubic => {
                Self::build(n, m, 4, |j, w| {
                    let s = pos(j);
                    let fl = s.floor();
                    let t = s - fl;
                    match method {
                        Method::Nearest => {
                            // Ties round up.
                            let k = if t >= 0.5 { 2 } else { 1 };
                            w[k] = 1.0;
                        }
                        Method::Linear => {
                            w[1] = 1.0 - t;
                            w[2] = t;
                        }
                        _ => {
                            w[0] = keys_cubic(1.0 + t);
                            w[1] = keys_cubic(t);
                            w[2] = keys_cubic(1.0 - t);
                            w[3] = keys_cubic(2.0 - t);
                        }
                    }
                    fl as isize - 1
                })
            }
            Method::ZeroFill => panic!("zero-filling is not a tap filter"),
        }
    }

    #[inline]
    pub fn apply(&self, src: &[f32], dst: &mut [f32]) {
        let wd = self.width;
        for (j, d) in dst.iter_mut().enumerate() {
            let idx = &self.idx[j * wd..(j + 1) * wd];
            let w = &self.w[j * wd..(j + 1) * wd];
            let mut acc = 0.0f32;
            for t in 0..wd {
                acc += w[t] * src[idx[t] as usize];
            }
            *d = acc;
        }
    }
}

/// Index `i` reflected into `0..n` about the end samples (`-1 -> 1`, `n -> n - 2`).
fn mirror(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let r = i.rem_euclid(period);
    (if r < n { r } else { period - r }) as usize
}

macro_rules! convolve_clamped {
    ($name:ident, $t:ty) => {
        /// `dst[j] = sum_t k[t] * src[clamp(j + t - r)]` for an odd-length kernel of radius `r`;
        /// the interior runs as `len(k)` vectorisable multiply-adds over whole lines.
        pub(crate) fn $name(src: &[$t], dst: &mut [$t], k: &[$t]) {
            let n = src.len();
            let r = k.len() / 2;
            debug_assert_eq!(dst.len(), n);
            let edge = |dst: &mut [$t], j: usize| {
                let mut s = 0.0;
                for (t, &w) in k.iter().enumerate() {
                    let i = (j + t).saturating_sub(r).min(n - 1);
                    s += w * src[i];
                }
                dst[j] = s;
            };
            if n <= 2 * r {
                for j in 0..n {
                    edge(dst, j);
                }
                return;
            }
            let inner = &mut dst[r..n - r];
            inner.iter_mut().for_each(|d| *d = 0.0);
            for (t, &w) in k.iter().enumerate() {
                for (d, &x) in inner.iter_mut().zip(&src[t..t + n - 2 * r]) {
                    *d += w * x;
                }
            }
            for j in (0..r).chain(n - r..n) {
                edge(dst, j);
            }
        }
    };
}
convolve_clamped!(convolve_clamped_f32, f32);
convolve_clamped!(convolve_clamped_f64, f64);

/// Same-grid convolution of a volume along `axis` with an odd-length `kernel`, edges clamped.
///
/// Along j and k it works on whole rows / planes at a time (multiply-adds over contiguous
/// memory), which is much faster than gathering lines.
pub(crate) fn convolve_axis(
    data: &[f32],
    dims: [usize; 3],
    axis: usize,
    kernel: &[f64],
) -> Vec<f32> {
    let k: Vec<f32> = kernel.iter().map(|&x| x as f32).collect();
    let [nx, ny, nz] = dims;
    let mut out = vec![0f32; data.len()];
    if data.is_empty() {
        return out;
    }
    let r = (k.len() / 2) as isize;
    // (row length, rows per block, number of blocks): lines of `row` contiguous values,
    // `count` of them per block along the axis, blocks independent.
    let (row, count, blocks) = match axis {
        0 => {
            for (s, d) in data.chunks_exact(nx).zip(out.chunks_exact_mut(nx)) {
                convolve_clamped_f32(s, d, &k);
            }
            return out;
        }
        1 => (nx, ny, nz),
        _ => (nx * ny, nz, 1),
    };
    let block = row * count;
    for b in 0..blocks {
        let src = &data[b * block..(b + 1) * block];
        let dst = &mut out[b * block..(b + 1) * block];
        for j in 0..count {
            let o = &mut dst[j * row..(j + 1) * row];
            for (t, &w) in k.iter().enumerate() {
                let jj = (j as isize + t as isize - r).clamp(0, count as isize - 1) as usize;
                for (d, &x) in o.iter_mut().zip(&src[jj * row..(jj + 1) * row]) {
                    *d += w * x;
                }
            }
        }
    }
    out
}

/// Applies `f(input_line, output_line)` to every line along `axis` of `data` (laid out with
/// `dims`, i fastest) and returns the result, whose length along `axis` is `out_len`.
///
/// Lines along j and k are gathered in blocks of neighbouring i, so memory is read in
/// contiguous runs; the buffers are allocated once.
pub(crate) fn map_axis(
    data: &[f32],
    dims: [usize; 3],
    axis: usize,
    out_len: usize,
    mut f: impl FnMut(&[f32], &mut [f32]),
) -> Vec<f32> {
    let n = dims[axis];
    let mut out_dims = dims;
    out_dims[axis] = out_len;
    let mut out = vec![0f32; out_dims.iter().product()];
    if n == 0 || out.is_empty() {
        return out;
    }
    if axis == 0 {
        for (src, dst) in data.chunks_exact(n).zip(out.chunks_exact_mut(out_len)) {
            f(src, dst);
        }
        return out;
    }
    const B: usize = 32;
    let [nx, ny, nz] = dims;
    // (outer count, input base stride, output base stride, stride along the axis in / out)
    let (outer, base_in, base_out, stride_in, stride_out) = if axis == 1 {
        (nz, nx * ny, nx * out_len, nx, nx)
    } else {
        (ny, nx, nx, nx * ny, nx * ny)
    };
    let mut inbuf = vec![0f32; B * n];
    let mut outbuf = vec![0f32; B * out_len];
    for o in 0..outer {
        let bi = o * base_in;
        let bo = o * base_out;
        for i0 in (0..nx).step_by(B) {
            let b = B.min(nx - i0);
            for t in 0..n {
                let row = &data[bi + t * stride_in + i0..bi + t * stride_in + i0 + b];
                for (bb, &v) in row.iter().enumerate() {
                    inbuf[bb * n + t] = v;
                }
            }
            for bb in 0..b {
                f(
                    &inbuf[bb * n..(bb + 1) * n],
                    &mut outbuf[bb * out_len..(bb + 1) * out_len],
                );
            }
            for t in 0..out_len {
                let row = &mut out[bo + t * stride_out + i0..bo + t * stride_out + i0 + b];
                for (bb, v) in row.iter_mut().enumerate() {
                    *v = outbuf[bb * out_len + t];
                }
            }
        }
    }
    let _ = nz;
    out
}

/// For each bin of a short DFT: the bin of the long DFT it maps to, its complex weight, and for
/// the Nyquist bin of an even length a second (bin, weight).
pub(crate) type BinMap = Vec<(usize, Complex<f32>, Option<(usize, Complex<f32>)>)>;

/// Signed frequency of DFT bin `k` of a length-`m` transform, in `-(m/2)..=(m-1)/2`
/// (the Nyquist bin of an even length counts as negative).
#[inline]
pub(crate) fn signed_freq(k: usize, m: usize) -> isize {
    if k <= (m - 1) / 2 {
        k as isize
    } else {
        k as isize - m as isize
    }
}

/// Zero-fills the spectrum of every line along `axis` from `m` to `m * f` bins.
///
/// The coarse samples are taken to sit at fine positions `f * l + (f - 1) / 2` (the
/// [`Volume::refined_geometry`] convention), so the spectrum gets the matching linear phase.
/// The Nyquist bin of an even `m` is split equally between `+m/2` and `-m/2`.
fn zero_fill_axis(data: &[f32], dims: [usize; 3], axis: usize, f: usize) -> Vec<f32> {
    let m = dims[axis];
    let big = m * f;
    let mut planner = FftPlanner::<f32>::new();
    let fwd = planner.plan_fft_forward(m);
    let inv = planner.plan_fft_inverse(big);
    let mut scratch = vec![
        Complex::default();
        fwd.get_inplace_scratch_len()
            .max(inv.get_inplace_scratch_len())
    ];
    let delta = (f as f64 - 1.0) / 2.0;
    // (destination bin, weight) for each coarse bin; the Nyquist bin has a second destination.
    let phase = |k: isize, scale: f64| {
        let a = -2.0 * PI * k as f64 * delta / big as f64;
        Complex::new((scale * a.cos()) as f32, (scale * a.sin()) as f32)
    };
    let inv_m = 1.0 / m as f64;
    let mut plan: BinMap = Vec::with_capacity(m);
    for k in 0..m {
        let s = signed_freq(k, m);
        if m.is_multiple_of(2) && s == -(m as isize / 2) {
            let h = m / 2;
            plan.push((
                h,
                phase(h as isize, 0.5 * inv_m),
                Some((big - h, phase(-(h as isize), 0.5 * inv_m))),
            ));
        } else {
            plan.push((s.rem_euclid(big as isize) as usize, phase(s, inv_m), None));
        }
    }
    let mut line = vec![Complex::<f32>::default(); m];
    let mut spec = vec![Complex::<f32>::default(); big];
    map_axis(data, dims, axis, big, |src, dst| {
        for (c, &v) in line.iter_mut().zip(src) {
            *c = Complex::new(v, 0.0);
        }
        fwd.process_with_scratch(&mut line, &mut scratch);
        spec.iter_mut().for_each(|c| *c = Complex::default());
        for (k, &(d, w, extra)) in plan.iter().enumerate() {
            spec[d] += line[k] * w;
            if let Some((d2, w2)) = extra {
                spec[d2] += line[k] * w2;
            }
        }
        inv.process_with_scratch(&mut spec, &mut scratch);
        for (o, c) in dst.iter_mut().zip(&spec) {
            *o = c.re;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(dims: [usize; 3], f: impl Fn(f64) -> f64) -> Volume {
        let n = dims[2];
        let data = (0..dims.iter().product::<usize>())
            .map(|x| f((x / (dims[0] * dims[1]) % n) as f64) as f32)
            .collect();
        Volume::from_data(dims, [0.5, 0.5, 2.0], data)
    }

    #[test]
    fn bspline_passes_through_the_samples_and_keeps_cubics() {
        // Odd factor 3: every third fine voxel sits on a coarse sample.
        let v = line([2, 1, 9], |k| ((k * 1.7).sin() * 10.0).round());
        let up = resample(&v, [2, 1, 27], Method::BSpline);
        for k in 0..9 {
            assert!(
                (up.get(0, 0, 3 * k + 1) - v.get(0, 0, k)).abs() < 1e-4,
                "sample {k}"
            );
        }
        // A cubic is reproduced away from the ends (mirroring bends it there).
        let c = |x: f64| 0.02 * x * x * x - 0.3 * x * x + x;
        let v = line([1, 1, 40], c);
        let up = resample(&v, [1, 1, 100], Method::BSpline);
        for j in 30..70 {
            let s = (j as f64 + 0.5) * 0.4 - 0.5;
            assert!((up.data[j] as f64 - c(s)).abs() < 2e-3, "at {s}");
        }
    }

    #[test]
    fn non_integer_factors_keep_the_field_of_view() {
        let mut v = line([3, 2, 7], |k| k);
        v.affine[0][3] = 10.0;
        v.affine[2][1] = 0.3; // an oblique grid
        for m in [5, 7, 10, 18] {
            for method in [Method::Cubic, Method::BSpline, Method::Linear] {
                let r = resample(&v, [3, 2, m], method);
                assert_eq!(r.data.len(), 3 * 2 * m);
                // The outer face of the first and last voxel along k stays in place.
                let edge = |vol: &Volume, k: f64| vol.world([0.0, 0.0, k]);
                let (a, b) = (edge(&v, -0.5), edge(&r, -0.5));
                let (c, d) = (edge(&v, 6.5), edge(&r, m as f64 - 0.5));
                for x in 0..3 {
                    assert!((a[x] - b[x]).abs() < 1e-9 && (c[x] - d[x]).abs() < 1e-9);
                }
                assert!((r.spacing[2] - 2.0 * 7.0 / m as f64).abs() < 1e-9);
                // A linear ramp stays a ramp at the new centres, away from the ends (clamped
                // or mirrored there).
                let step = 7.0 / m as f64;
                let (inner, tol) = match method {
                    Method::BSpline => (2.5..=3.5, 2e-2),
                    _ => (1.0..=5.0, 1e-3),
                };
                for j in 0..m {
                    let s = (j as f64 + 0.5) * step - 0.5;
                    if inner.contains(&s) {
                        let got = r.get(1, 1, j) as f64;
                        assert!(
                            (got - s).abs() < tol,
                            "{method:?} m={m} j={j}: {got} vs {s}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn integer_upsampling_matches_resampling() {
        let v = line([2, 2, 6], |k| (k * k) % 5.0);
        let a = upsample(&v, [1, 1, 3], Method::Cubic);
        let b = resample(&v, [2, 2, 18], Method::Cubic);
        assert_eq!(a, b);
        assert_eq!(a.affine, v.refined_geometry([1, 1, 3]).affine);
    }

    #[test]
    fn keys_kernel_interpolates_and_sums_to_one() {
        assert_eq!(keys_cubic(0.0), 1.0);
        assert_eq!(keys_cubic(1.0), 0.0);
        assert_eq!(keys_cubic(2.0), 0.0);
        for t in [0.1, 0.25, 0.5, 0.9] {
            let s = keys_cubic(1.0 + t) + keys_cubic(t) + keys_cubic(1.0 - t) + keys_cubic(2.0 - t);
            assert!((s - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn fast_convolution_matches_clamped_taps() {
        let kernel = [0.1, -0.2, 0.5, 0.3, 0.05];
        for n in [1, 2, 3, 4, 5, 6, 11] {
            let src: Vec<f32> = (0..n).map(|x| ((x * 7 % 5) as f32) - 1.5).collect();
            let slow = Taps::build(n, n, 5, |j, w| {
                w.copy_from_slice(&kernel);
                j as isize - 2
            });
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            slow.apply(&src, &mut a);
            convolve_clamped_f32(&src, &mut b, &kernel.map(|x| x as f32));
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-6, "n = {n}: {a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn convolve_axis_matches_line_convolution() {
        let dims = [6, 5, 4];
        let data: Vec<f32> = (0..120).map(|x| ((x * 37 % 11) as f32) - 5.0).collect();
        let kernel = [0.2, 0.5, 0.3];
        for axis in 0..3 {
            let taps = Taps::build(dims[axis], dims[axis], 3, |j, w| {
                w.copy_from_slice(&kernel);
                j as isize - 1
            });
            let a = map_axis(&data, dims, axis, dims[axis], |s, d| taps.apply(s, d));
            let b = convolve_axis(&data, dims, axis, &kernel);
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() < 1e-5, "axis {axis}");
            }
        }
    }

    #[test]
    fn map_axis_matches_naive_on_every_axis() {
        let dims = [37, 5, 6];
        let data: Vec<f32> = (0..dims.iter().product::<usize>())
            .map(|x| x as f32)
            .collect();
        let v = Volume::from_data(dims, [1.0; 3], data.clone());
        for axis in 0..3 {
            // Reverse each line and append its sum: output length n + 1.
            let n = dims[axis];
            let out = map_axis(&data, dims, axis, n + 1, |s, d| {
                for t in 0..n {
                    d[t] = s[n - 1 - t];
                }
                d[n] = s.iter().sum();
            });
            let mut od = dims;
            od[axis] = n + 1;
            let o = Volume::from_data(od, [1.0; 3], out);
            for k in 0..od[2] {
                for j in 0..od[1] {
                    for i in 0..od[0] {
                        let mut p = [i, j, k];
                        let expected = if p[axis] == n {
                            (0..n)
                                .map(|t| {
                                    p[axis] = t;
                                    v.get(p[0], p[1], p[2])
                                })
                                .sum()
                        } else {
                            p[axis] = n - 1 - p[axis];
                            v.get(p[0], p[1], p[2])
                        };
                        assert_eq!(o.get(i, j, k), expected, "axis {axis} at {i} {j} {k}");
                    }
                }
            }
        }
    }
}
