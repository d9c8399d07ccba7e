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
use wasm_bindgen::prelude::*;

use crate::handle::VolumeHandle;
use crate::js_error;

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

/// `perm[w]` = the voxel axis closest to world axis `w` (0 = x/R, 1 = y/A, 2 = z/S), and
/// whether that voxel axis points along +w.
pub fn world_axes(affine: &[[f64; 4]; 4]) -> ([usize; 3], [bool; 3]) {
    let norm: [f64; 3] = std::array::from_fn(|c| {
        (0..3)
            .map(|r| affine[r][c] * affine[r][c])
            .sum::<f64>()
            .sqrt()
            .max(1e-12)
    });
    let score =
        |p: &[usize; 3]| -> f64 { (0..3).map(|w| (affine[w][p[w]] / norm[p[w]]).abs()).sum() };
    let mut best = mrisr::volume::AXIS_ORDERS[0];
    for p in mrisr::volume::AXIS_ORDERS.iter().skip(1) {
        if score(p) > score(&best) + 1e-9 {
            best = *p;
        }
    }
    let positive = std::array::from_fn(|w| affine[w][best[w]] >= 0.0);
    (best, positive)
}

/// Layout of plane `plane` (0 axial, 1 coronal, 2 sagittal) for a volume.
pub fn plane_layout(
    dims: [usize; 3],
    spacing: [f64; 3],
    affine: &[[f64; 4]; 4],
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
    vol: &mrisr::Volume,
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

#[wasm_bindgen]
impl VolumeHandle {
    /// The layouts of the axial, coronal and sagittal planes, as a JSON array.
    pub fn layout(&self) -> String {
        let v = &self.vol;
        let l: Vec<PlaneLayout> = (0..3)
            .map(|p| plane_layout(v.dims, v.spacing, &v.affine, p))
            .collect();
        serde_json::to_string(&l).expect("layout serialises")
    }

    /// RGBA pixels (`width * height * 4`) of slice `slice` of plane `plane`, ready for `ImageData`.
    pub fn render(
        &self,
        plane: usize,
        slice: usize,
        center: f32,
        width: f32,
    ) -> Result<js_sys::Uint8ClampedArray, JsValue> {
        if plane > 2 {
            return Err(js_error(format!(
                "plane {plane}: expected 0 (axial), 1 (coronal) or 2 (sagittal)"
            )));
        }
        let v = &self.vol;
        let l = plane_layout(v.dims, v.spacing, &v.affine, plane);
        let px = render_rgba(v, &l, slice, center, width);
        Ok(js_sys::Uint8ClampedArray::from(&px[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ras_volume_is_drawn_radiologically() {
        let a = mrisr::volume::diagonal_affine([1.0, 2.0, 3.0]);
        let ax = plane_layout([4, 5, 6], [1.0, 2.0, 3.0], &a, AXIAL);
        assert_eq!((ax.axis_fixed, ax.axis_h, ax.axis_v), (2, 0, 1));
        assert!(ax.flip_h && ax.flip_v, "right on the left, anterior up");
        let sag = plane_layout([4, 5, 6], [1.0, 2.0, 3.0], &a, SAGITTAL);
        assert_eq!((sag.axis_fixed, sag.axis_h, sag.axis_v), (0, 1, 2));
        assert_eq!((sag.width, sag.height, sag.px_h_mm), (5, 6, 3.0));
    }

    #[test]
    fn permuted_axes_are_found() {
        // voxel i runs posterior (-y), j runs superior (+z), k runs right (+x): a sagittal stack
        let a = [
            [0.0, 0.0, 1.0, 0.0],
            [-1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let (perm, pos) = world_axes(&a);
        assert_eq!(perm, [2, 0, 1]);
        assert_eq!(pos, [true, false, true]);
    }
}
