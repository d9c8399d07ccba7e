//! The one data type every stage shares: a 3D scalar volume with its place in patient space.
//!
//! Conventions (the same as NIfTI and dcm2niix, so a volume round-trips through both):
//! - `data` is stored with `i` varying fastest, then `j`, then `k` (NIfTI / Fortran order).
//! - `affine` maps a voxel index `(i, j, k, 1)` to RAS+ millimetres (x = Right, y = Anterior,
//!   z = Superior), like a NIfTI sform. DICOM is LPS+, so readers flip the first two rows.
//! - `spacing[a]` is the length of affine column `a` (always > 0).

use serde::{Deserialize, Serialize};

/// Voxel index -> RAS+ mm, row-major 4x4 (last row `0 0 0 1`).
pub type Affine = [[f64; 4]; 4];

/// The six orders of three axes, e.g. to find which voxel axis lies closest to which world axis.
pub const AXIS_ORDERS: [[usize; 3]; 6] = [
    [0, 1, 2],
    [0, 2, 1],
    [1, 0, 2],
    [1, 2, 0],
    [2, 0, 1],
    [2, 1, 0],
];

/// Where a volume came from and what a writer should carry over.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// Human-readable description (DICOM SeriesDescription, NIfTI `descrip`).
    pub description: String,
    /// File or folder it was read from, for error messages and provenance.
    pub source: String,
    /// Slice thickness (mm) when the source says (DICOM SliceThickness, a BIDS sidecar's
    /// SliceThickness): learning from the scan models the slices with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice_thickness_mm: Option<f64>,
    /// DICOM attributes of the source series that a derived series must keep (patient, study,
    /// frame of reference...). `None` for volumes that did not come from DICOM.
    pub dicom: Option<SourceAttributes>,
}

/// DICOM attributes of a source series that a derived series keeps (patient, study, frame of
/// reference, ...), stored as (group, element, VR, value) so a writer can copy them verbatim.
/// Multi-valued attributes keep DICOM's backslash separator in `value`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceAttributes {
    pub elements: Vec<(u16, u16, String, String)>,
    /// The source images of the volume, one per slice, for the derived series' Source Image
    /// and Referenced Series sequences.
    #[serde(default)]
    pub images: Vec<SourceImage>,
}

/// One source image (a file, or a frame of a multi-frame file) and the plane it covers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceImage {
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
    /// 1-based frame number in a multi-frame file.
    pub frame: Option<u32>,
    /// A point of the image plane and its unit normal, patient coordinates (LPS, mm).
    pub position: [f64; 3],
    pub normal: [f64; 3],
}

impl SourceAttributes {
    /// The value of attribute (group, element), if kept.
    pub fn get(&self, group: u16, element: u16) -> Option<&str> {
        self.elements
            .iter()
            .find(|e| e.0 == group && e.1 == element)
            .map(|e| e.3.as_str())
    }
}

/// A 3D scalar volume: f32 voxels, their grid and their position in patient space.
#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    /// Voxel counts along i, j, k.
    pub dims: [usize; 3],
    /// Voxel size in mm along i, j, k.
    pub spacing: [f64; 3],
    /// Voxel index -> RAS+ mm.
    pub affine: Affine,
    /// `dims[0] * dims[1] * dims[2]` voxels, `i` fastest.
    pub data: Vec<f32>,
    pub meta: Metadata,
}

impl Volume {
    /// A volume of zeros on an axis-aligned grid with its first voxel at the origin.
    pub fn zeros(dims: [usize; 3], spacing: [f64; 3]) -> Self {
        Self::from_data(dims, spacing, vec![0.0; dims.iter().product()])
    }

    /// Wraps `data` (i fastest) on an axis-aligned grid with its first voxel at the origin.
    ///
    /// Panics if `data.len()` does not match `dims`: that is a programming error, not bad input.
    pub fn from_data(dims: [usize; 3], spacing: [f64; 3], data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            dims.iter().product::<usize>(),
            "data length must match dims"
        );
        Self {
            dims,
            spacing,
            affine: diagonal_affine(spacing),
            data,
            meta: Metadata::default(),
        }
    }

    /// Number of voxels.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Linear index of voxel `(i, j, k)`.
    #[inline]
    pub fn index(&self, i: usize, j: usize, k: usize) -> usize {
        i + self.dims[0] * (j + self.dims[1] * k)
    }

    #[inline]
    pub fn get(&self, i: usize, j: usize, k: usize) -> f32 {
        self.data[self.index(i, j, k)]
    }

    #[inline]
    pub fn set(&mut self, i: usize, j: usize, k: usize, v: f32) {
        let idx = self.index(i, j, k);
        self.data[idx] = v;
    }

    /// Smallest and largest voxel value (`(0, 0)` for an empty volume).
    pub fn min_max(&self) -> (f32, f32) {
        let mut it = self.data.iter().copied().filter(|v| v.is_finite());
        let Some(first) = it.next() else {
            return (0.0, 0.0);
        };
        it.fold((first, first), |(lo, hi), v| (lo.min(v), hi.max(v)))
    }

    /// RAS+ mm position of voxel `(i, j, k)` (fractional indices allowed).
    pub fn world(&self, ijk: [f64; 3]) -> [f64; 3] {
        crate::geometry::transform(&self.affine, ijk)
    }

    /// Voxel index (fractional) of RAS+ mm point `xyz`: the inverse of [`Volume::world`];
    /// `None` when the affine is singular.
    pub fn voxel(&self, xyz: [f64; 3]) -> Option<[f64; 3]> {
        crate::geometry::invert_affine(&self.affine)
            .map(|inv| crate::geometry::transform(&inv, xyz))
    }

    /// Recomputes `spacing` from the affine's column lengths.
    pub fn spacing_from_affine(affine: &Affine) -> [f64; 3] {
        std::array::from_fn(|c| {
            (0..3)
                .map(|r| affine[r][c] * affine[r][c])
                .sum::<f64>()
                .sqrt()
        })
    }

    /// The same volume with its axes reordered: new axis `a` is old axis `order[a]`.
    /// The affine columns move with the data, so every voxel keeps its place in patient space.
    pub fn permuted(&self, order: [usize; 3]) -> Volume {
        let mut seen = [false; 3];
        order.iter().for_each(|&a| seen[a] = true);
        assert!(
            seen.iter().all(|&s| s),
            "order must be a permutation of 0, 1, 2"
        );
        let dims: [usize; 3] = std::array::from_fn(|a| self.dims[order[a]]);
        let mut affine = self.affine;
        for (row, old) in affine.iter_mut().zip(&self.affine).take(3) {
            for (a, &o) in order.iter().enumerate() {
                row[a] = old[o];
            }
        }
        // Strides of the old layout, read in the new axis order.
        let old_stride = [1, self.dims[0], self.dims[0] * self.dims[1]];
        let s: [usize; 3] = std::array::from_fn(|a| old_stride[order[a]]);
        let mut data = Vec::with_capacity(self.data.len());
        for k in 0..dims[2] {
            for j in 0..dims[1] {
                let base = j * s[1] + k * s[2];
                data.extend((0..dims[0]).map(|i| self.data[base + i * s[0]]));
            }
        }
        Volume {
            dims,
            spacing: std::array::from_fn(|a| self.spacing[order[a]]),
            affine,
            data,
            meta: self.meta.clone(),
        }
    }

    /// The permutation that undoes `permuted(order)`.
    pub fn inverse_order(order: [usize; 3]) -> [usize; 3] {
        let mut inv = [0; 3];
        for (a, &o) in order.iter().enumerate() {
            inv[o] = a;
        }
        inv
    }

    /// The same volume sampled on a grid `factor` times finer along each axis, covering the
    /// same field of view: voxel centres move so the new grid's outer edges match the old.
    /// Only the geometry is computed here; `data` is left empty for a resampler to fill.
    pub fn refined_geometry(&self, factor: [usize; 3]) -> Volume {
        self.regridded_geometry(std::array::from_fn(|a| self.dims[a] * factor[a]))
    }

    /// The grid of `dims` voxels covering the same field of view as this volume's (any ratio,
    /// finer or coarser, per axis): voxel size `spacing * old / new`, and new voxel `j` centred
    /// at old index `(j + 0.5) * old / new - 0.5`, so the outer edges match. `data` is left
    /// empty.
    pub fn regridded_geometry(&self, dims: [usize; 3]) -> Volume {
        let mut affine = self.affine;
        for c in 0..3 {
            // Old voxels per new voxel.
            let step = self.dims[c] as f64 / dims[c].max(1) as f64;
            let shift = -0.5 + 0.5 * step;
            for (r, row) in affine.iter_mut().enumerate().take(3) {
                row[3] += self.affine[r][c] * shift;
                row[c] = self.affine[r][c] * step;
            }
        }
        Volume {
            dims,
            spacing: Self::spacing_from_affine(&affine),
            affine,
            data: Vec::new(),
            meta: self.meta.clone(),
        }
    }
}

/// The sub-volume of `size` voxels starting at voxel `start` (clipped to the volume), with the
/// affine moved so every voxel keeps its place in patient space.
pub fn crop(v: &Volume, start: [usize; 3], size: [usize; 3]) -> Volume {
    let start: [usize; 3] = std::array::from_fn(|a| start[a].min(v.dims[a]));
    let dims: [usize; 3] = std::array::from_fn(|a| size[a].min(v.dims[a] - start[a]));
    let mut data = Vec::with_capacity(dims.iter().product());
    for k in start[2]..start[2] + dims[2] {
        for j in start[1]..start[1] + dims[1] {
            let row = v.index(start[0], j, k);
            data.extend_from_slice(&v.data[row..row + dims[0]]);
        }
    }
    let mut affine = v.affine;
    let origin = v.world(start.map(|s| s as f64));
    for r in 0..3 {
        affine[r][3] = origin[r];
    }
    Volume {
        dims,
        spacing: v.spacing,
        affine,
        data,
        meta: v.meta.clone(),
    }
}

/// The centred sub-volume of (at most) `size` voxels.
pub fn center_crop(v: &Volume, size: [usize; 3]) -> Volume {
    let start = std::array::from_fn(|a| v.dims[a].saturating_sub(size[a]) / 2);
    crop(v, start, size)
}

/// Axis-aligned affine with the given voxel size and the first voxel at the origin.
pub fn diagonal_affine(spacing: [f64; 3]) -> Affine {
    [
        [spacing[0], 0.0, 0.0, 0.0],
        [0.0, spacing[1], 0.0, 0.0],
        [0.0, 0.0, spacing[2], 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_i_fastest() {
        let mut v = Volume::zeros([2, 3, 4], [1.0; 3]);
        v.set(1, 2, 3, 7.0);
        assert_eq!(v.data[1 + 2 * (2 + 3 * 3)], 7.0);
        assert_eq!(v.get(1, 2, 3), 7.0);
    }

    #[test]
    fn permutation_keeps_world_positions_and_inverts() {
        let dims = [3, 4, 5];
        let mut v = Volume::from_data(dims, [0.5, 1.0, 2.0], (0..60).map(|x| x as f32).collect());
        v.affine[0][3] = -7.0;
        let order = [2, 0, 1];
        let p = v.permuted(order);
        assert_eq!(p.dims, [5, 3, 4]);
        assert_eq!(p.spacing, [2.0, 0.5, 1.0]);
        // Voxel (i, j, k) of the original is voxel (k, i, j) of the permuted volume.
        assert_eq!(p.get(4, 2, 1), v.get(2, 1, 4));
        assert_eq!(p.world([4.0, 2.0, 1.0]), v.world([2.0, 1.0, 4.0]));
        assert_eq!(p.permuted(Volume::inverse_order(order)), v);
    }

    #[test]
    fn crop_keeps_world_positions() {
        let v = Volume::from_data(
            [4, 5, 6],
            [1.0, 2.0, 3.0],
            (0..120).map(|x| x as f32).collect(),
        );
        let c = crop(&v, [1, 2, 3], [2, 2, 10]);
        assert_eq!(c.dims, [2, 2, 3]);
        assert_eq!(c.get(1, 1, 2), v.get(2, 3, 5));
        assert_eq!(c.world([1.0, 1.0, 2.0]), v.world([2.0, 3.0, 5.0]));
        assert_eq!(c.voxel(v.world([2.0, 3.0, 5.0])), Some([1.0, 1.0, 2.0]));
        assert_eq!(center_crop(&v, [2, 3, 4]).get(0, 0, 0), v.get(1, 1, 1));
    }

    #[test]
    fn refined_geometry_keeps_field_of_view() {
        let mut v = Volume::zeros([4, 4, 10], [0.5, 0.5, 2.0]);
        v.affine[0][3] = 10.0;
        let r = v.refined_geometry([1, 1, 2]);
        assert_eq!(r.dims, [4, 4, 20]);
        assert_eq!(r.spacing, [0.5, 0.5, 1.0]);
        // Old slice 0 covers z in [-1, 1]; new slices 0 and 1 are centred at -0.5 and 0.5.
        assert!((r.world([0.0, 0.0, 0.0])[2] + 0.5).abs() < 1e-12);
        assert!((r.world([0.0, 0.0, 1.0])[2] - 0.5).abs() < 1e-12);
        assert_eq!(r.world([0.0, 0.0, 0.0])[0], 10.0);
    }
}
