//! A scan's own super-resolution task, read from its geometry: which axis is thick, by how
//! much, with which slice profile, and onto which grid the result goes. No burn here: the CLI,
//! the trainer and the page all ask these questions before anything is learned.

use serde::{Deserialize, Serialize};

use crate::degrade::{FWHM_PER_SIGMA, SliceProfile};
use crate::{Error, Result, Volume};

/// Below this ratio of slice spacing to in-plane spacing a volume is taken as isotropic: there
/// is no thick axis to learn from the others.
pub const MIN_ANISOTROPY: f64 = 1.5;

/// The largest default factor (more is possible with `--factor`, rarely useful: each output
/// slice then has less than a sixth of a measured slice behind it).
pub const MAX_DEFAULT_FACTOR: f64 = 6.0;

/// The geometry of a thick-slice scan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScanGeometry {
    /// Voxel axis (0, 1, 2 = i, j, k) along which slices are thick.
    pub thick_axis: usize,
    /// The two in-plane axes, finer spacing first.
    pub in_plane: [usize; 2],
    /// Voxel size along each axis (mm).
    pub spacing: [f64; 3],
    /// Slice thickness (mm): from the series when it says, else the slice spacing (contiguous
    /// slices).
    pub thickness_mm: f64,
    /// The slices' sensitivity profile across their thickness.
    pub profile: SliceProfile,
}

impl ScanGeometry {
    /// Reads the task from `v`'s voxel size; `thickness_mm` overrides the slice thickness
    /// (default: what the source says, DICOM SliceThickness or a sidecar's, when plausible;
    /// else the spacing). Errors on a volume that is already (nearly) isotropic or too small to
    /// learn from.
    pub fn of(v: &Volume, thickness_mm: Option<f64>, profile: SliceProfile) -> Result<Self> {
        let s = v.spacing;
        if s.iter().any(|x| !(x.is_finite() && *x > 0.0)) {
            return Err(Error::Invalid(format!(
                "{}: voxel size {s:?} mm is not usable",
                v.meta.source
            )));
        }
        let thick_axis = (0..3)
            .max_by(|&a, &b| s[a].total_cmp(&s[b]).then(b.cmp(&a)))
            .unwrap_or(2);
        let mut in_plane = [(thick_axis + 1) % 3, (thick_axis + 2) % 3];
        if s[in_plane[1]] < s[in_plane[0]] {
            in_plane.swap(0, 1);
        }
        let geometry = ScanGeometry {
            thick_axis,
            in_plane,
            spacing: s,
            thickness_mm: thickness_mm
                .or(v
                    .meta
                    .slice_thickness_mm
                    .filter(|t| *t <= 3.0 * s[thick_axis]))
                .unwrap_or(s[thick_axis]),
            profile,
        };
        let ratio = geometry.anisotropy();
        if ratio < MIN_ANISOTROPY {
            return Err(Error::Invalid(format!(
                "{}: voxels of {:.2} x {:.2} x {:.2} mm are nearly isotropic (slices {ratio:.2}x \
                 the in-plane spacing, less than {MIN_ANISOTROPY}): there is no thick axis to \
                 learn from the scan itself",
                v.meta.source, s[0], s[1], s[2]
            )));
        }
        if !(geometry.thickness_mm.is_finite() && geometry.thickness_mm > 0.0) {
            return Err(Error::Invalid(format!(
                "slice thickness {} mm is not a size",
                geometry.thickness_mm
            )));
        }
        let small = in_plane.iter().any(|&a| v.dims[a] < 16) || v.dims[thick_axis] < 4;
        if small {
            return Err(Error::Invalid(format!(
                "{}: {:?} voxels are too few to learn from (at least 16 in plane and 4 slices)",
                v.meta.source, v.dims
            )));
        }
        Ok(geometry)
    }

    /// Slice spacing over the finer in-plane spacing.
    pub fn anisotropy(&self) -> f64 {
        self.spacing[self.thick_axis] / self.spacing[self.in_plane[0]]
    }

    /// Slice spacing (mm).
    pub fn slice_spacing(&self) -> f64 {
        self.spacing[self.thick_axis]
    }

    /// Gap between slices (mm; negative for overlapping slices).
    pub fn gap_mm(&self) -> f64 {
        self.slice_spacing() - self.thickness_mm
    }

    /// The default factor: the largest whole factor whose output spacing is no finer than the
    /// in-plane spacing, at most [`MAX_DEFAULT_FACTOR`].
    pub fn default_factor(&self) -> f64 {
        (self.anisotropy() + 1e-6)
            .floor()
            .clamp(2.0, MAX_DEFAULT_FACTOR)
    }

    /// The factor for an output slice spacing of `mm`.
    pub fn factor_for_spacing(&self, mm: f64) -> Result<f64> {
        if !(mm.is_finite() && mm > 0.0) {
            return Err(Error::Invalid(format!(
                "target spacing {mm} mm is not a size"
            )));
        }
        self.check_factor(self.slice_spacing() / mm)
    }

    /// Checks a requested factor: more than 1, at most 16.
    pub fn check_factor(&self, f: f64) -> Result<f64> {
        if !(f.is_finite() && f > 1.0 && f <= 16.0) {
            return Err(Error::Invalid(format!(
                "factor {f:.3}: expected more than 1 and at most 16"
            )));
        }
        Ok(f)
    }

    /// Output slices for `n` input slices at `factor` (the field of view is kept, so the
    /// output spacing is `n * spacing / count`).
    pub fn output_slices(n: usize, factor: f64) -> usize {
        ((n as f64 * factor).round() as usize).max(n + 1)
    }

    /// "0.31 x 0.31 x 1.50 mm, slices along i, 1.50 mm thick (no gap)".
    pub fn describe(&self) -> String {
        let s = self.spacing;
        let gap = self.gap_mm();
        let gap = if gap.abs() < 1e-3 {
            "no gap".to_string()
        } else if gap > 0.0 {
            format!("{gap:.2} mm gap")
        } else {
            format!("{:.2} mm overlap", -gap)
        };
        format!(
            "{:.2} x {:.2} x {:.2} mm, slices along {}, {:.2} mm thick ({gap})",
            s[0],
            s[1],
            s[2],
            ["i", "j", "k"][self.thick_axis],
            self.thickness_mm
        )
    }
}

/// Weights that take a line of samples (pixel size `pixel_mm`, pixel `i` centred at
/// `i * pixel_mm`) to the values a slice of `width_mm` with `profile` centred at `centre_mm`
/// would measure: the line is taken as constant over each pixel, and each pixel is weighted by
/// the part of the profile over it. Returns the first pixel index and the weights (which sum
/// to 1; pixels outside the line are the caller's to clamp).
pub fn profile_weights(
    pixel_mm: f64,
    centre_mm: f64,
    width_mm: f64,
    profile: SliceProfile,
    w: &mut Vec<f64>,
) -> isize {
    w.clear();
    // Extent of the profile (a Gaussian to 3 sigma).
    let half = match profile {
        SliceProfile::Box => width_mm / 2.0,
        SliceProfile::Gaussian => 3.0 * width_mm / FWHM_PER_SIGMA,
    };
    let first = ((centre_mm - half) / pixel_mm + 0.5).floor() as isize;
    let last = ((centre_mm + half) / pixel_mm + 0.5).floor() as isize;
    for i in first..=last {
        let (a, b) = (
            (i as f64 - 0.5) * pixel_mm - centre_mm,
            (i as f64 + 0.5) * pixel_mm - centre_mm,
        );
        let mass = match profile {
            SliceProfile::Box => (b.min(half) - a.max(-half)).max(0.0),
            SliceProfile::Gaussian => {
                let sigma = width_mm / FWHM_PER_SIGMA;
                let cdf = |x: f64| 0.5 * (1.0 + erf(x / (sigma * std::f64::consts::SQRT_2)));
                cdf(b) - cdf(a)
            }
        };
        w.push(mass);
    }
    let total: f64 = w.iter().sum();
    if total > 0.0 {
        w.iter_mut().for_each(|x| *x /= total);
    } else {
        // Narrower than nothing: the pixel under the centre.
        w.iter_mut().for_each(|x| *x = 0.0);
        let c = ((centre_mm / pixel_mm + 0.5).floor() as isize - first) as usize;
        if let Some(x) = w.get_mut(c) {
            *x = 1.0;
        }
    }
    first
}

/// The error function (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7).
fn erf(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.327_591_1 * x.abs());
    let y = 1.0
        - (((((1.061_405_429 * t - 1.453_152_027) * t) + 1.421_413_741) * t - 0.284_496_736) * t
            + 0.254_829_592)
            * t
            * (-x * x).exp();
    y.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn knee() -> Volume {
        Volume::zeros([20, 64, 64], [1.5, 0.3125, 0.3125])
    }

    #[test]
    fn finds_the_thick_axis_and_a_sensible_factor() {
        let g = ScanGeometry::of(&knee(), None, SliceProfile::Box).unwrap();
        assert_eq!(g.thick_axis, 0);
        assert_eq!(g.in_plane, [1, 2]);
        assert!((g.anisotropy() - 4.8).abs() < 1e-9);
        assert_eq!(g.default_factor(), 4.0);
        assert_eq!(g.gap_mm(), 0.0);
        assert!((g.factor_for_spacing(0.5).unwrap() - 3.0).abs() < 1e-9);
        assert!(g.check_factor(1.0).is_err() && g.check_factor(f64::NAN).is_err());
        // A 2D T1 with a gap: 1 x 1 x 4.8 mm spacing, 4 mm thick.
        let t1 = Volume::zeros([64, 64, 20], [1.0, 1.0, 4.8]);
        let g = ScanGeometry::of(&t1, Some(4.0), SliceProfile::Box).unwrap();
        assert_eq!((g.thick_axis, g.default_factor()), (2, 4.0));
        assert!((g.gap_mm() - 0.8).abs() < 1e-9);
        assert!(g.describe().contains("0.80 mm gap"));
        // The source's SliceThickness is used unless overridden.
        let mut gapped = Volume::zeros([64, 64, 20], [0.6, 0.6, 4.0]);
        gapped.meta.slice_thickness_mm = Some(3.0);
        let g = ScanGeometry::of(&gapped, None, SliceProfile::Box).unwrap();
        assert_eq!((g.thickness_mm, g.gap_mm()), (3.0, 1.0));
        let g = ScanGeometry::of(&gapped, Some(4.0), SliceProfile::Box).unwrap();
        assert_eq!(g.gap_mm(), 0.0);
        // Very thick slices are capped.
        let thick = Volume::zeros([64, 64, 8], [0.5, 0.5, 6.0]);
        let g = ScanGeometry::of(&thick, None, SliceProfile::Box).unwrap();
        assert_eq!(g.default_factor(), MAX_DEFAULT_FACTOR);
        assert_eq!(ScanGeometry::output_slices(35, 2.5), 88);
    }

    #[test]
    fn refuses_isotropic_and_tiny_volumes() {
        let mut iso = Volume::zeros([32, 32, 32], [1.0, 1.0, 1.2]);
        iso.meta.source = "brain.nii.gz".into();
        let e = ScanGeometry::of(&iso, None, SliceProfile::Box)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("brain.nii.gz") && e.contains("nearly isotropic"),
            "{e}"
        );
        let tiny = Volume::zeros([8, 8, 3], [1.0, 1.0, 4.0]);
        assert!(ScanGeometry::of(&tiny, None, SliceProfile::Box).is_err());
    }

    #[test]
    fn profile_weights_integrate_the_slice() {
        let mut w = Vec::new();
        // A 1 mm box from 0.1 to 1.1 mm over 0.5 mm pixels (pixel i covers i/2 -+ 0.25 mm):
        // 0.15 mm of pixel 0, all of pixel 1, 0.35 mm of pixel 2.
        let first = profile_weights(0.5, 0.6, 1.0, SliceProfile::Box, &mut w);
        let expect = [0.15, 0.5, 0.35];
        assert_eq!(first, 0);
        assert_eq!(w.len(), 3);
        for (a, b) in w.iter().zip(expect) {
            assert!((a - b).abs() < 1e-12, "{w:?}");
        }
        // A box narrower than a pixel reads the pixel under it.
        let first = profile_weights(1.0, 3.1, 0.2, SliceProfile::Box, &mut w);
        assert_eq!((first, w.as_slice()), (3, [1.0].as_slice()));
        // A Gaussian: symmetric, sums to 1, peaks at the centre, FWHM as asked.
        let first = profile_weights(0.1, 5.0, 1.0, SliceProfile::Gaussian, &mut w);
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        let peak = (50 - first) as usize;
        assert!((w[peak - 3] - w[peak + 3]).abs() < 1e-9);
        let half = w[peak] / 2.0;
        // Pixels 5 away (0.5 mm = half the FWHM) hold about half the peak.
        assert!(
            (w[peak + 5] - half).abs() / half < 0.05,
            "{} vs {half}",
            w[peak + 5]
        );
        assert!((erf(0.5) - 0.520_499_877_8).abs() < 2e-7);
    }
}
