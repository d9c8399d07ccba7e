//! Simulated fast acquisitions: turn a high-resolution volume into the low-resolution volume a
//! shorter scan of the same anatomy would have produced. Training pairs are (degraded, original).
//!
//! Grids: a degradation by an integer `factor` per axis produces a volume on
//! [`coarsened_geometry`]: `dims / factor` voxels, `spacing * factor`, the same field of view
//! (the outer edges of the first and last voxels stay where they were). It is the exact inverse
//! of [`Volume::refined_geometry`]. When a dimension is not a multiple of its factor, the last
//! `dims % factor` voxels along that axis are dropped first (the remaining field of view is
//! kept).

use std::f64::consts::PI;

use rustfft::FftPlanner;
use rustfft::num_complex::Complex;
use serde::{Deserialize, Serialize};

use crate::resample::{BinMap, Method, Taps, convolve_axis, map_axis, signed_freq};
use crate::{Error, Result, Volume};

/// FWHM of a Gaussian in units of its standard deviation: `2 sqrt(2 ln 2)`.
pub const FWHM_PER_SIGMA: f64 = 2.354_820_045_030_95;

/// Through-slice sensitivity profile used by [`Degradation::ThickSlices`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SliceProfile {
    /// Ideal rectangular slice: the mean of `factor` consecutive thin slices.
    #[default]
    Box,
    /// Gaussian slice profile with FWHM equal to the new slice thickness (`factor` thin
    /// slices), centred on the new slice; neighbouring slices overlap in their tails, as a real
    /// RF excitation's profile does.
    Gaussian,
}

/// A simulated acquisition. It is serialised into the model card, so its JSON form is stable:
/// `{"kind": "k_space_truncation", "factor": [1, 1, 2]}` and so on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Degradation {
    /// A lower matrix over the same field of view: only the central `1 / factor` of k-space
    /// is acquired along each axis with `factor > 1` (fewer phase encodes or readout samples,
    /// i.e. a proportionally shorter scan along phase-encoding axes). Modelled by FFT along the
    /// axis, keeping the central `n / factor` frequencies, and inverse FFT on the coarse grid.
    /// This gives the Gibbs ringing of a real low-matrix scan. Undone (for band-limited
    /// content) by [`Method::ZeroFill`].
    KSpaceTruncation {
        /// Integer reduction per axis (1 = untouched).
        factor: [usize; 3],
    },
    /// Thicker slices: each new slice integrates the signal of `factor` consecutive thin
    /// slices along the axes with `factor > 1` (fewer, thicker 2D slices: a shorter 2D
    /// multi-slice scan with more SNR per slice). Baseline inverse: [`Method::Cubic`].
    ThickSlices {
        /// Integer reduction per axis (1 = untouched); usually one axis, the slice axis.
        factor: [usize; 3],
        #[serde(default)]
        profile: SliceProfile,
    },
    /// Gaussian blur along one axis on the same grid (FWHM in mm): a wider point-spread
    /// function, e.g. from T2 decay during a long echo train or a smoother slice profile.
    GaussianBlur {
        /// Axis 0, 1 or 2 (i, j, k).
        axis: usize,
        /// Full width at half maximum in millimetres.
        fwhm_mm: f64,
    },
    /// Several degradations applied in order (their factors multiply).
    Chain { steps: Vec<Degradation> },
}

impl Degradation {
    /// The grid reduction per axis: the output has `dims / factor()` voxels.
    pub fn factor(&self) -> [usize; 3] {
        match self {
            Degradation::KSpaceTruncation { factor } | Degradation::ThickSlices { factor, .. } => {
                *factor
            }
            Degradation::GaussianBlur { .. } => [1; 3],
            Degradation::Chain { steps } => steps.iter().fold([1; 3], |acc, s| {
                let f = s.factor();
                std::array::from_fn(|a| acc[a] * f[a])
            }),
        }
    }

    /// The non-learned upsampler that matches this degradation: zero-filling for k-space
    /// truncation (alone or last in a chain), cubic otherwise.
    pub fn baseline_method(&self) -> Method {
        match self {
            Degradation::KSpaceTruncation { .. } => Method::ZeroFill,
            Degradation::Chain { steps } => steps
                .iter()
                .rev()
                .find(|s| s.factor() != [1; 3])
                .map_or(Method::Cubic, |s| s.baseline_method()),
            _ => Method::Cubic,
        }
    }

    /// Checks that this degradation can be applied to a volume of `dims` (factors at least 1,
    /// no dimension smaller than its factor, a sane FWHM and axis).
    pub fn validate(&self, dims: [usize; 3]) -> Result<()> {
        match self {
            Degradation::KSpaceTruncation { factor } | Degradation::ThickSlices { factor, .. } => {
                for a in 0..3 {
                    if factor[a] == 0 {
                        return Err(Error::Invalid(format!(
                            "degradation factor {factor:?} has a 0"
                        )));
                    }
                    if dims[a] < factor[a] {
                        return Err(Error::Invalid(format!(
                            "a volume of {dims:?} voxels is too small for a reduction by {factor:?}"
                        )));
                    }
                }
                Ok(())
            }
            Degradation::GaussianBlur { axis, fwhm_mm } => {
                if *axis > 2 {
                    return Err(Error::Invalid(format!("blur axis {axis} is not 0, 1 or 2")));
                }
                if !(fwhm_mm.is_finite() && *fwhm_mm >= 0.0) {
                    return Err(Error::Invalid(format!(
                        "blur FWHM {fwhm_mm} mm is not a size"
                    )));
                }
                Ok(())
            }
            Degradation::Chain { steps } => {
                let mut d = dims;
                for s in steps {
                    s.validate(d)?;
                    let f = s.factor();
                    d = std::array::from_fn(|a| d[a] / f[a]);
                }
                Ok(())
            }
        }
    }

    /// The low-resolution volume this acquisition would produce from `vol`.
    ///
    /// Panics on what [`Degradation::validate`] rejects; call it first on untrusted input.
    pub fn apply(&self, vol: &Volume) -> Volume {
        if let Err(e) = self.validate(vol.dims) {
            panic!("{e}");
        }
        match self {
            Degradation::KSpaceTruncation { factor } => truncate_k_space(vol, *factor),
            Degradation::ThickSlices { factor, profile } => thick_slices(vol, *factor, *profile),
            Degradation::GaussianBlur { axis, fwhm_mm } => gaussian_blur(vol, *axis, *fwhm_mm),
            Degradation::Chain { steps } => {
                let mut v = vol.clone();
                for s in steps {
                    v = s.apply(&v);
                }
                v
            }
        }
    }
}

/// The grid of `vol` coarsened by `factor`: `dims / factor` voxels (rounded down), voxel size
/// `spacing * factor`, and the first coarse voxel centred on fine index `(factor - 1) / 2`, so
/// the field of view keeps its outer edges. `data` is left empty.
///
/// For dims that are multiples of `factor`, `coarsened_geometry(v, f).refined_geometry(f)` is
/// `v`'s grid again.
pub fn coarsened_geometry(vol: &Volume, factor: [usize; 3]) -> Volume {
    let dims: [usize; 3] = std::array::from_fn(|a| vol.dims[a] / factor[a].max(1));
    let mut affine = vol.affine;
    for c in 0..3 {
        let f = factor[c].max(1) as f64;
        let shift = (f - 1.0) / 2.0;
        for (r, row) in affine.iter_mut().enumerate().take(3) {
            row[3] += vol.affine[r][c] * shift;
            row[c] = vol.affine[r][c] * f;
        }
    }
    Volume {
        dims,
        spacing: Volume::spacing_from_affine(&affine),
        affine,
        data: Vec::new(),
        meta: vol.meta.clone(),
    }
}

/// The first `dims` voxels of `vol` along each axis (same affine: voxel 0 stays put).
fn crop_to(vol: &Volume, dims: [usize; 3]) -> Vec<f32> {
    if dims == vol.dims {
        return vol.data.clone();
    }
    let mut out = Vec::with_capacity(dims.iter().product());
    for k in 0..dims[2] {
        for j in 0..dims[1] {
            let row = vol.index(0, j, k);
            out.extend_from_slice(&vol.data[row..row + dims[0]]);
        }
    }
    out
}

/// See [`Degradation::KSpaceTruncation`]. The coarse samples are the band-limited
/// interpolant evaluated at the coarse voxel centres (a linear phase in k-space), so they line
/// up with [`coarsened_geometry`]. For an even coarse size the two fine frequencies `+-m/2`
/// both fold into the coarse Nyquist bin.
pub fn truncate_k_space(vol: &Volume, factor: [usize; 3]) -> Volume {
    let mut out = coarsened_geometry(vol, factor);
    let mut dims: [usize; 3] = std::array::from_fn(|a| out.dims[a] * factor[a]);
    let mut data = crop_to(vol, dims);
    let mut planner = FftPlanner::<f32>::new();
    for axis in 0..3 {
        let f = factor[axis];
        if f <= 1 {
            continue;
        }
        let big = dims[axis];
        let m = big / f;
        let fwd = planner.plan_fft_forward(big);
        let inv = planner.plan_fft_inverse(m);
        let mut scratch = vec![
            Complex::default();
            fwd.get_inplace_scratch_len()
                .max(inv.get_inplace_scratch_len())
        ];
        let delta = (f as f64 - 1.0) / 2.0;
        let scale = 1.0 / big as f64;
        let phase = |k: isize| {
            let a = 2.0 * PI * k as f64 * delta / big as f64;
            Complex::new((scale * a.cos()) as f32, (scale * a.sin()) as f32)
        };
        // For each coarse bin: the fine bin(s) it takes, with weights.
        let mut plan: BinMap = Vec::with_capacity(m);
        for k in 0..m {
            let s = signed_freq(k, m);
            if m.is_multiple_of(2) && s == -(m as isize / 2) {
                let h = m / 2;
                plan.push((h, phase(h as isize), Some((big - h, phase(-(h as isize))))));
            } else {
                plan.push((s.rem_euclid(big as isize) as usize, phase(s), None));
            }
        }
        let mut line = vec![Complex::<f32>::default(); big];
        let mut low = vec![Complex::<f32>::default(); m];
        data = map_axis(&data, dims, axis, m, |src, dst| {
            for (c, &v) in line.iter_mut().zip(src) {
                *c = Complex::new(v, 0.0);
            }
            fwd.process_with_scratch(&mut line, &mut scratch);
            for (l, &(d, w, extra)) in low.iter_mut().zip(&plan) {
                *l = line[d] * w;
                if let Some((d2, w2)) = extra {
                    *l += line[d2] * w2;
                }
            }
            inv.process_with_scratch(&mut low, &mut scratch);
            for (o, c) in dst.iter_mut().zip(&low) {
                *o = c.re;
            }
        });
        dims[axis] = m;
    }
    out.data = data;
    out
}

/// See [`Degradation::ThickSlices`]. The result's slices are as thick as their spacing: the
/// source's slice thickness (DICOM SliceThickness, a sidecar's) no longer describes them.
pub fn thick_slices(vol: &Volume, factor: [usize; 3], profile: SliceProfile) -> Volume {
    let mut out = coarsened_geometry(vol, factor);
    if factor.iter().any(|&f| f > 1) {
        out.meta.slice_thickness_mm = None;
    }
    let mut dims: [usize; 3] = std::array::from_fn(|a| out.dims[a] * factor[a]);
    let mut data = crop_to(vol, dims);
    for axis in 0..3 {
        let f = factor[axis];
        if f <= 1 {
            continue;
        }
        let n = dims[axis];
        let m = n / f;
        let taps = match profile {
            SliceProfile::Box => Taps::build(n, m, f, |l, w| {
                w.iter_mut().for_each(|x| *x = 1.0 / f as f64);
                (l * f) as isize
            }),
            SliceProfile::Gaussian => {
                let sigma = f as f64 / FWHM_PER_SIGMA;
                let r = (3.0 * sigma).ceil() as isize + 1;
                Taps::build(n, m, (2 * r + 1) as usize, |l, w| {
                    let c = (l * f) as f64 + (f as f64 - 1.0) / 2.0;
                    let first = c.floor() as isize - r;
                    for (t, x) in w.iter_mut().enumerate() {
                        let d = (first + t as isize) as f64 - c;
                        *x = (-d * d / (2.0 * sigma * sigma)).exp();
                    }
                    let s: f64 = w.iter().sum();
                    w.iter_mut().for_each(|x| *x /= s);
                    first
                })
            }
        };
        data = map_axis(&data, dims, axis, m, |s, d| taps.apply(s, d));
        dims[axis] = m;
    }
    out.data = data;
    out
}

/// A normalised Gaussian kernel with standard deviation `sigma` voxels, truncated at
/// `ceil(3 sigma)` (at least one tap).
pub fn gaussian_kernel(sigma: f64) -> Vec<f64> {
    if sigma.is_nan() || sigma <= 0.0 {
        return vec![1.0];
    }
    let r = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f64> = (-r..=r)
        .map(|t| (-(t * t) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f64 = k.iter().sum();
    k.iter_mut().for_each(|x| *x /= s);
    k
}

/// See [`Degradation::GaussianBlur`]: same grid, edges clamped.
pub fn gaussian_blur(vol: &Volume, axis: usize, fwhm_mm: f64) -> Volume {
    let sigma = fwhm_mm / FWHM_PER_SIGMA / vol.spacing[axis];
    let kernel = gaussian_kernel(sigma);
    let mut out = vol.clone();
    if kernel.len() > 1 && vol.dims[axis] > 0 {
        out.data = convolve_axis(&vol.data, vol.dims, axis, &kernel);
    }
    out
}
