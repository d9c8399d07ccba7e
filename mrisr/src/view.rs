//! The three orthogonal planes of a volume, as a radiologist expects to see them.
//!
//! Voxel axes are matched to the patient axes they run closest to (any permutation and flip,
//! from the affine), then each plane is drawn in radiological convention:
//! - axial: patient right on the screen's left, anterior up;
//! - coronal: patient right on the screen's left, superior up;
//! - sagittal: anterior on the left, superior up.
//!
//! A plane image is `width x height` pixels; pixel `(x, y)` shows voxel index
//! `axis_h = flip_h ? width-1-x : x`, `axis_v = flip_v ? height-1-y : y`, `axis_fixed = slice`.
//! Pixels are not square in general: `px_w_mm` / `px_h_mm` give their size for the canvas.

use serde::Serialize;

use crate::geometry::world_axes;
use crate::volume::{Affine, Volume};

/// Plane numbers used by the page.
pub const AXIAL: usize = 0;
pub const CORONAL: usize = 1;
pub const SAGITTAL: usize = 2;

/// How one plane maps onto voxel axes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PlaneLayout {
    pub axis_fixed: usize,
    pub axis_h: usize,
    pub flip_h: bool,
    pub axis_v: usize,
    pub flip_v: bool,
    pub width: usize,
    pub height: usize,
    /// Number of slices along `axis_fixed`.
    pub count: usize,
    pub px_w_mm: f64,
    pub px_h_mm: f64,
}

/// Layout of plane `plane` (0 axial, 1 coronal, 2 sagittal) for a volume.
pub fn plane_layout(
    dims: [usize; 3],
    spacing: [f64; 3],
    affine: &Affine,
    plane: usize,
) -> PlaneLayout {
    let (perm, positive) = world_axes(affine);
    // (fixed world axis, horizontal world axis, vertical world axis); on screen, right and down
    // run towards -x (left) / -y (posterior) / -z (inferior) in every plane.
    let (fw, hw, vw) = match plane {
        AXIAL => (2, 0, 1),
        CORONAL => (1, 0, 2),
        _ => (0, 1, 2),
    };
    let (axis_fixed, axis_h, axis_v) = (perm[fw], perm[hw], perm[vw]);
    PlaneLayout {
        axis_fixed,
        axis_h,
        // screen-right goes to -world; the index runs that way only if the axis points to -world
        flip_h: positive[hw],
        axis_v,
        flip_v: positive[vw],
        width: dims[axis_h],
        height: dims[axis_v],
        count: dims[axis_fixed],
        px_w_mm: spacing[axis_h],
        px_h_mm: spacing[axis_v],
    }
}

/// Greyscale RGBA of one slice with window `center`/`width` (values below the window are black).
pub fn render_rgba(
    vol: &Volume,
    l: &PlaneLayout,
    slice: usize,
    center: f32,
    width: f32,
) -> Vec<u8> {
    let mut out = vec![255u8; l.width * l.height * 4];
    let slice = slice.min(l.count.saturating_sub(1));
    let strides = [1, vol.dims[0], vol.dims[0] * vol.dims[1]];
    let base = slice * strides[l.axis_fixed];
    let width = width.max(1e-6);
    let lo = center - width / 2.0;
    let scale = 255.0 / width;
    for y in 0..l.height {
        let vy = if l.flip_v { l.height - 1 - y } else { y };
        let row = base + vy * strides[l.axis_v];
        for x in 0..l.width {
            let vx = if l.flip_h { l.width - 1 - x } else { x };
            let v = vol.data[row + vx * strides[l.axis_h]];
            let g = if v.is_finite() {
                ((v - lo) * scale).clamp(0.0, 255.0) as u8
            } else {
                0
            };
            let p = (y * l.width + x) * 4;
            out[p] = g;
            out[p + 1] = g;
            out[p + 2] = g;
        }
    }
    out
}

/// The "Auto" display window: 0.5th and 99.5th percentile of the finite voxels, from a
/// subsample of at most ~1M voxels.
pub fn robust_range(data: &[f32]) -> (f32, f32) {
    let step = (data.len() / (1 << 20)).max(1);
    let mut s: Vec<f32> = data
        .iter()
        .step_by(step)
        .copied()
        .filter(|v| v.is_finite())
        .collect();
    if s.is_empty() {
        return (0.0, 1.0);
    }
    s.sort_unstable_by(f32::total_cmp);
    let at = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    let (lo, hi) = (at(0.005), at(0.995));
    if hi > lo {
        (lo, hi)
    } else {
        (s[0], s[s.len() - 1].max(s[0] + 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volume::diagonal_affine;

    #[test]
    fn ras_volume_is_drawn_radiologically() {
        let a = diagonal_affine([1.0, 2.0, 3.0]);
        let ax = plane_layout([4, 5, 6], [1.0, 2.0, 3.0], &a, AXIAL);
        assert_eq!((ax.axis_fixed, ax.axis_h, ax.axis_v), (2, 0, 1));
        assert!(ax.flip_h && ax.flip_v, "right on the left, anterior up");
        let sag = plane_layout([4, 5, 6], [1.0, 2.0, 3.0], &a, SAGITTAL);
        assert_eq!((sag.axis_fixed, sag.axis_h, sag.axis_v), (0, 1, 2));
        assert_eq!((sag.width, sag.height, sag.px_h_mm), (5, 6, 3.0));
    }

    #[test]
    fn rendered_pixels_follow_the_layout_and_the_window() {
        // RAS volume, value = i + 10 j: the axial plane shows i flipped (right on the left)
        // and j flipped (anterior up).
        let mut v = Volume::zeros([3, 2, 1], [1.0; 3]);
        for j in 0..2 {
            for i in 0..3 {
                v.set(i, j, 0, (i + 10 * j) as f32);
            }
        }
        v.data[0] = f32::NAN;
        let l = plane_layout(v.dims, v.spacing, &v.affine, AXIAL);
        let px = render_rgba(&v, &l, 0, 10.0, 20.0);
        let grey: Vec<u8> = px.chunks(4).map(|p| p[0]).collect();
        // window 0..20: value x -> x * 255 / 20; NaN -> black; alpha opaque everywhere
        let g = |x: f32| (x * 255.0 / 20.0) as u8;
        assert_eq!(grey, vec![g(12.0), g(11.0), g(10.0), g(2.0), g(1.0), 0]);
        assert!(
            px.chunks(4)
                .all(|p| p[3] == 255 && p[1] == p[0] && p[2] == p[0])
        );
    }

    #[test]
    fn robust_range_ignores_outliers_and_non_finite_values() {
        let mut data: Vec<f32> = (0..1000).map(|x| x as f32).collect();
        data.extend([1e9, f32::NAN, f32::INFINITY]);
        let (lo, hi) = robust_range(&data);
        assert!(
            (4.0..=6.0).contains(&lo) && (993.0..=996.0).contains(&hi),
            "{lo} {hi}"
        );
        assert_eq!(
            robust_range(&[3.0; 10]),
            (3.0, 4.0),
            "a flat image gets a 1-wide window"
        );
        assert_eq!(robust_range(&[f32::NAN]), (0.0, 1.0));
    }
}
