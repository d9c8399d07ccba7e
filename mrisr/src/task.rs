//! The task a model is trained for, seen from its degradation: which axes are low-resolution,
//! how a volume is turned so those axes sit where the network learned them, and how a training
//! input is simulated from a high-resolution target.

use std::fmt;
use std::str::FromStr;

use crate::degrade::{Degradation, SliceProfile};
use crate::normalize::Normalization;
use crate::resample::upsample;
use crate::volume::crop;
use crate::{Error, Result, Volume};

impl Degradation {
    /// Axes (in the network's frame) this degradation acts on.
    pub fn degraded_axes(&self) -> Vec<usize> {
        match self {
            Degradation::GaussianBlur { axis, .. } => vec![*axis],
            Degradation::Chain { steps } => {
                let mut axes: Vec<usize> = steps.iter().flat_map(|s| s.degraded_axes()).collect();
                axes.sort_unstable();
                axes.dedup();
                axes
            }
            _ => (0..3).filter(|&a| self.factor()[a] > 1).collect(),
        }
    }

    /// The axis order that puts `input`'s low-resolution axes where the network expects them:
    /// with one degraded axis, the input's coarsest axis goes there; with two (in-plane), the
    /// coarsest axis goes to the remaining one (it is the slice axis). Ties keep the last axis.
    pub fn canonical_order(&self, input: &Volume) -> [usize; 3] {
        let coarsest = (0..3)
            .rev()
            .max_by(|&a, &b| {
                input.spacing[a]
                    .total_cmp(&input.spacing[b])
                    .then(a.cmp(&b))
            })
            .unwrap_or(2);
        self.order_for_axis(coarsest).unwrap_or([0, 1, 2])
    }

    /// The axis order for an input whose (through-plane) low-resolution axis is `axis`.
    pub fn order_for_axis(&self, axis: usize) -> Result<[usize; 3]> {
        if axis > 2 {
            return Err(Error::Invalid(format!("axis {axis} is not 0, 1 or 2")));
        }
        let degraded = self.degraded_axes();
        let target = match degraded.as_slice() {
            [one] => *one,
            [a, b] => (0..3).find(|c| c != a && c != b).unwrap_or(2),
            _ => return Ok([0, 1, 2]),
        };
        // A cyclic rotation (keeps the handedness of the voxel grid) with order[target] = axis.
        let r = (axis + 3 - target) % 3;
        Ok([r, (r + 1) % 3, (r + 2) % 3])
    }

    /// Puts a real low-resolution volume (already in the network's frame) on the target grid
    /// with the matching baseline interpolation.
    pub fn upsample(&self, lowres: &Volume) -> Volume {
        upsample(lowres, self.factor(), self.baseline_method())
    }

    /// The network's training input for a high-resolution target: degrade, then upsample back
    /// onto the target's grid. `target` dims must be multiples of the factor
    /// (see [`Degradation::crop_to_multiple`]).
    pub fn simulate(&self, target: &Volume) -> Volume {
        let mut out = self.upsample(&self.apply(target));
        // Same grid as the target (it is by construction; keep the target's exact affine).
        out.affine = target.affine;
        out.spacing = target.spacing;
        out
    }

    /// `v` cropped so every dimension is a multiple of the factor.
    pub fn crop_to_multiple(&self, v: &Volume) -> Volume {
        let f = self.factor();
        let size = std::array::from_fn(|a| v.dims[a] / f[a] * f[a]);
        if size == v.dims {
            v.clone()
        } else {
            crop(v, [0; 3], size)
        }
    }

    /// Whether swapping the network's axes 0 and 1 leaves the task unchanged (a valid
    /// augmentation).
    pub fn allows_in_plane_swap(&self) -> bool {
        let f = self.factor();
        let d = self.degraded_axes();
        f[0] == f[1] && (d.contains(&0) == d.contains(&1))
    }
}

impl Normalization {
    /// The intensity scaling the network sees, in training and in use alike: divide by the
    /// 99.5th percentile of the foreground, no clipping (bright fat and fluid must survive).
    pub fn for_network(v: &Volume) -> Self {
        Normalization::fit(v, 99.5, f32::INFINITY)
    }
}

/// Short forms for the command line: `slices:F` (thicker slices along the slice axis),
/// `kspace:F` (in-plane k-space truncation), `blur:FWHM_MM` (through-plane Gaussian blur).
impl FromStr for Degradation {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| format!("'{s}': expected KIND:VALUE, e.g. slices:2"))?;
        let factor = || {
            value
                .parse::<usize>()
                .ok()
                .filter(|f| (2..=8).contains(f))
                .ok_or_else(|| format!("'{value}': factor must be an integer from 2 to 8"))
        };
        match kind {
            "slices" => Ok(Degradation::ThickSlices {
                factor: [1, 1, factor()?],
                profile: SliceProfile::Box,
            }),
            "kspace" => {
                let f = factor()?;
                Ok(Degradation::KSpaceTruncation { factor: [f, f, 1] })
            }
            "blur" => {
                let fwhm_mm: f64 = value
                    .parse()
                    .map_err(|_| format!("'{value}': FWHM in mm expected"))?;
                Ok(Degradation::GaussianBlur { axis: 2, fwhm_mm })
            }
            _ => Err(format!(
                "'{kind}': unknown degradation (slices, kspace or blur)"
            )),
        }
    }
}

impl fmt::Display for Degradation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Degradation::ThickSlices {
                factor: [1, 1, n],
                profile: SliceProfile::Box,
            } => write!(f, "slices:{n}"),
            Degradation::KSpaceTruncation { factor: [a, b, 1] } if a == b => {
                write!(f, "kspace:{a}")
            }
            Degradation::GaussianBlur { axis: 2, fwhm_mm } => write!(f, "blur:{fwhm_mm}"),
            other => write!(
                f,
                "{}",
                serde_json::to_string(other).map_err(|_| fmt::Error)?
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_forms_round_trip() {
        for s in ["slices:2", "kspace:3", "blur:1.5"] {
            assert_eq!(s.parse::<Degradation>().unwrap().to_string(), s);
        }
        assert!("slices:1".parse::<Degradation>().is_err());
        assert!("foo:2".parse::<Degradation>().is_err());
    }

    #[test]
    fn thick_axis_goes_to_the_degraded_axis() {
        let d: Degradation = "slices:2".parse().unwrap();
        // Knee DESS: sagittal slices 1.5 mm along i, 0.3125 mm in plane.
        let v = Volume::zeros([8, 16, 16], [1.5, 0.3125, 0.3125]);
        let order = d.canonical_order(&v);
        assert_eq!(order[2], 0);
        assert_eq!(v.permuted(order).spacing[2], 1.5);
        // In-plane truncation: the slice axis must stay undegraded.
        let k: Degradation = "kspace:2".parse().unwrap();
        assert_eq!(k.canonical_order(&v)[2], 0);
    }

    #[test]
    fn simulate_keeps_the_grid() {
        let d: Degradation = "slices:2".parse().unwrap();
        let v = Volume::from_data(
            [4, 4, 8],
            [1.0; 3],
            (0..128).map(|x| (x % 7) as f32).collect(),
        );
        let s = d.simulate(&v);
        assert_eq!(s.dims, v.dims);
        assert_eq!(s.affine, v.affine);
        assert_ne!(s.data, v.data);
    }
}
