//! Voxel grid and affine, the way dcm2niix builds them.
//!
//! The "natural" grid is i = DICOM column, j = DICOM row, k = slice (ascending along the slice
//! direction), and its affine maps to RAS (DICOM LPS with x and y negated). dcm2niix then either
//! flips j (2D acquisitions, `nii_flipY`, so the image is not upside down in viewers that ignore
//! the affine) or, for single 3D acquisitions, permutes and flips the axes losslessly to the
//! nearest RAS+ orientation (`nii_setOrtho`). [`finish`] does the same.

use crate::Affine;

// The vector helpers live in `crate::geometry`; re-exported for this reader's modules.
pub(crate) use crate::geometry::{V3, add_scaled, cross, dot, norm, scale, sub, unit};

/// RAS affine of the natural grid from LPS columns: i step, j step, k step and origin.
pub(crate) fn natural_affine(col_i: V3, col_j: V3, col_k: V3, origin: V3) -> Affine {
    let mut a = [[0.0; 4]; 4];
    for r in 0..3 {
        // LPS -> RAS: negate x and y.
        let s = if r < 2 { -1.0 } else { 1.0 };
        a[r][0] = s * col_i[r];
        a[r][1] = s * col_j[r];
        a[r][2] = s * col_k[r];
        a[r][3] = s * origin[r];
    }
    a[3][3] = 1.0;
    a
}

/// How the natural grid is turned into the output grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reorient {
    /// Flip rows (2D acquisitions and 4D data).
    FlipY,
    /// Nearest-orthogonal RAS+ reorientation (single-volume 3D acquisitions).
    Ortho,
}

/// A lossless axis permutation with flips: output axis `a` reads input axis `perm[a]`,
/// reversed when `flip[a]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AxisMap {
    pub perm: [usize; 3],
    pub flip: [bool; 3],
}

impl AxisMap {
    pub(crate) const IDENTITY: AxisMap = AxisMap {
        perm: [0, 1, 2],
        flip: [false; 3],
    };
    pub(crate) const FLIP_Y: AxisMap = AxisMap {
        perm: [0, 1, 2],
        flip: [false, true, false],
    };

    pub(crate) fn out_dims(&self, dims: [usize; 3]) -> [usize; 3] {
        std::array::from_fn(|a| dims[self.perm[a]])
    }

    /// The affine of the output grid.
    pub(crate) fn affine(&self, dims: [usize; 3], a: &Affine) -> Affine {
        let mut out = [[0.0; 4]; 4];
        out[3][3] = 1.0;
        let mut origin_idx = [0.0f64; 3];
        for ax in 0..3 {
            let p = self.perm[ax];
            let s = if self.flip[ax] { -1.0 } else { 1.0 };
            for (r, row) in out.iter_mut().enumerate().take(3) {
                row[ax] = a[r][p] * s;
            }
            if self.flip[ax] {
                origin_idx[p] = dims[p].saturating_sub(1) as f64;
            }
        }
        for (r, row) in out.iter_mut().enumerate().take(3) {
            row[3] = a[r][3] + (0..3).map(|c| a[r][c] * origin_idx[c]).sum::<f64>();
        }
        out
    }

    /// Reorders voxels (i fastest) of a `dims` volume into the output grid.
    // The reader places voxels directly (series.rs `Scatter`, tested against this).
    #[cfg(test)]
    pub(crate) fn apply<T: Copy>(&self, dims: [usize; 3], data: &[T]) -> Vec<T> {
        if *self == AxisMap::IDENTITY {
            return data.to_vec();
        }
        let od = self.out_dims(dims);
        let stride = [1, dims[0], dims[0] * dims[1]];
        // Per output axis: start offset and signed step in the input.
        let mut start = 0isize;
        let mut step = [0isize; 3];
        for (a, step_a) in step.iter_mut().enumerate() {
            let p = self.perm[a];
            let st = stride[p] as isize;
            if self.flip[a] {
                start += st * (dims[p] as isize - 1);
                *step_a = -st;
            } else {
                *step_a = st;
            }
        }
        let mut out = Vec::with_capacity(data.len());
        for z in 0..od[2] {
            let oz = start + step[2] * z as isize;
            for y in 0..od[1] {
                let oy = oz + step[1] * y as isize;
                for x in 0..od[0] {
                    out.push(data[(oy + step[0] * x as isize) as usize]);
                }
            }
        }
        out
    }
}

/// dcm2niix `nii_setOrtho`: the permutation/flip that brings `a` nearest to RAS+.
pub(crate) fn ortho_map(dims: [usize; 3], a: &Affine) -> AxisMap {
    // Already canonical (positive diagonal, zeros elsewhere): nothing to do.
    let canonical = (0..3).all(|i| {
        (0..3).all(|j| {
            if i == j {
                a[i][j] > 0.0
            } else {
                a[i][j] == 0.0
            }
        })
    });
    if canonical {
        return AxisMap::IDENTITY;
    }
    // The corner closest to the minimum of all corners decides which axes are reversed.
    let world = |idx: [f64; 3]| -> V3 {
        std::array::from_fn(|r| a[r][0] * idx[0] + a[r][1] * idx[1] + a[r][2] * idx[2] + a[r][3])
    };
    let flips: Vec<[f64; 3]> = (0..8)
        .map(|i| std::array::from_fn(|b| if i & (1 << b) != 0 { -1.0 } else { 1.0 }))
        .collect();
    let corners: Vec<V3> = flips
        .iter()
        .map(|f| {
            world(std::array::from_fn(|b| {
                if f[b] < 0.0 {
                    dims[b].saturating_sub(1) as f64
                } else {
                    0.0
                }
            }))
        })
        .collect();
    let mut min = corners[0];
    for c in &corners[1..] {
        for j in 0..3 {
            min[j] = min[j].min(c[j]);
        }
    }
    let mut best = 0;
    let mut best_d = norm(sub(corners[0], min));
    for (i, c) in corners.iter().enumerate().skip(1) {
        let d = norm(sub(*c, min));
        if d < best_d {
            best_d = d;
            best = i;
        }
    }
    let f = flips[best];
    // The six permutation matrices carrying those flips; keep the one most aligned with `a`.
    // m[i][perm[i]] = f[i] (row i = input axis i), as in dcm2niix getBestOrient.
    let mut best_score = 0.0;
    let mut best_m: Option<[[f64; 3]; 3]> = None;
    for p in crate::volume::AXIS_ORDERS {
        let mut m = [[0.0; 3]; 3];
        for i in 0..3 {
            m[i][p[i]] = f[i];
        }
        // sum_ij a[i][j] * m[j][i]
        let score: f64 = (0..3)
            .map(|i| (0..3).map(|j| a[i][j] * m[j][i]).sum::<f64>())
            .sum();
        if score > best_score {
            best_score = score;
            best_m = Some(m);
        }
    }
    let Some(m) = best_m else {
        return AxisMap::IDENTITY;
    };
    // Output axis j reads input axis i where m[i][j] != 0, reversed when negative.
    let mut map = AxisMap::IDENTITY;
    for (i, row) in m.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            if v != 0.0 {
                map.perm[j] = i;
                map.flip[j] = v < 0.0;
            }
        }
    }
    map
}

/// The final axis map for a natural grid, as dcm2niix chooses it.
pub(crate) fn final_map(kind: Reorient, dims: [usize; 3], a: &Affine) -> AxisMap {
    match kind {
        Reorient::FlipY => AxisMap::FLIP_Y,
        Reorient::Ortho => ortho_map(dims, a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flip_y_keeps_world_positions() {
        let dims = [2, 3, 2];
        let a = natural_affine(
            [1.0, 0.0, 0.0],
            [0.0, 2.0, 0.0],
            [0.0, 0.0, 3.0],
            [5.0, 6.0, 7.0],
        );
        let data: Vec<usize> = (0..12).collect();
        let m = AxisMap::FLIP_Y;
        let out = m.apply(dims, &data);
        let oa = m.affine(dims, &a);
        let w = |a: &Affine, i: [f64; 3]| -> V3 {
            std::array::from_fn(|r| a[r][0] * i[0] + a[r][1] * i[1] + a[r][2] * i[2] + a[r][3])
        };
        // output voxel (1, 0, 1) is input voxel (1, 2, 1)
        assert_eq!(out[1 + 2 * 3], data[1 + 2 * (2 + 3)]);
        assert_eq!(w(&oa, [1.0, 0.0, 1.0]), w(&a, [1.0, 2.0, 1.0]));
    }
}
