//! 3x3 and affine helpers: the voxel -> patient (RAS+, mm) maps of volumes, in one place.
//!
//! An [`Affine`] is a 4x4 matrix whose last row is `0 0 0 1`; column `c` of its upper 3x3 is
//! the step in mm of voxel axis `c`. Here: 3-vectors (DICOM's direction cosines and
//! positions), 3x3 matrices (NIfTI's quaternion form), affines and which voxel axis runs along
//! which patient axis (the viewer).

use crate::volume::{AXIS_ORDERS, Affine};

/// A 3-vector (a direction or a point, mm).
pub type V3 = [f64; 3];

pub fn dot(a: V3, b: V3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

pub fn cross(a: V3, b: V3) -> V3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

pub fn norm(a: V3) -> f64 {
    dot(a, a).sqrt()
}

pub fn sub(a: V3, b: V3) -> V3 {
    [a[0] - b[0], a[1] - b[1], a[2] - b[2]]
}

pub fn add_scaled(a: V3, b: V3, s: f64) -> V3 {
    [a[0] + b[0] * s, a[1] + b[1] * s, a[2] + b[2] * s]
}

pub fn scale(a: V3, s: f64) -> V3 {
    [a[0] * s, a[1] * s, a[2] * s]
}

/// Unit vector, or None for a zero / non-finite one.
pub fn unit(a: V3) -> Option<V3> {
    let n = norm(a);
    (n.is_finite() && n > 1e-6).then(|| scale(a, 1.0 / n))
}

// 3x3 matrices

/// Determinant of a 3x3 matrix.
pub fn det3(m: &[[f64; 3]; 3]) -> f64 {
    m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
}

/// Inverse transpose of a 3x3 matrix (cofactors / determinant).
pub fn inv_transpose(m: &[[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let d = det3(m);
    if d.abs() < 1e-300 || !d.is_finite() {
        return None;
    }
    let c =
        |r0: usize, c0: usize, r1: usize, c1: usize| m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0];
    Some([
        [c(1, 1, 2, 2) / d, -c(1, 0, 2, 2) / d, c(1, 0, 2, 1) / d],
        [-c(0, 1, 2, 2) / d, c(0, 0, 2, 2) / d, -c(0, 0, 2, 1) / d],
        [c(0, 1, 1, 2) / d, -c(0, 0, 1, 2) / d, c(0, 0, 1, 1) / d],
    ])
}

/// The orthogonal factor of the polar decomposition (Newton iteration), for a matrix with a
/// positive determinant: the rotation closest to `m` in the Frobenius norm.
pub fn nearest_rotation(mut m: [[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    for _ in 0..100 {
        let it = inv_transpose(&m)?;
        let mut next = [[0.0; 3]; 3];
        let mut change = 0.0f64;
        for r in 0..3 {
            for c in 0..3 {
                next[r][c] = 0.5 * (m[r][c] + it[r][c]);
                change = change.max((next[r][c] - m[r][c]).abs());
            }
        }
        m = next;
        if change < 1e-15 {
            break;
        }
    }
    Some(m)
}

// Affines

/// `a` applied to point `p` (voxel index -> mm, or mm -> voxel index for an inverse).
pub fn transform(a: &Affine, p: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|r| a[r][0] * p[0] + a[r][1] * p[1] + a[r][2] * p[2] + a[r][3])
}

/// Inverse of an affine (patient mm -> voxel index), or `None` when its 3x3 is singular or
/// not finite.
pub fn invert_affine(a: &Affine) -> Option<Affine> {
    let m: [[f64; 3]; 3] = std::array::from_fn(|r| std::array::from_fn(|c| a[r][c]));
    let det = det3(&m);
    if !det.is_finite() || det.abs() < 1e-12 {
        return None;
    }
    let it = inv_transpose(&m)?;
    let mut inv = [[0.0; 4]; 4];
    for r in 0..3 {
        for c in 0..3 {
            inv[r][c] = it[c][r];
        }
        inv[r][3] = -(0..3).map(|c| it[c][r] * a[c][3]).sum::<f64>();
    }
    inv[3][3] = 1.0;
    Some(inv)
}

/// `perm[w]` = the voxel axis closest to world axis `w` (0 = x/R, 1 = y/A, 2 = z/S), and
/// whether that voxel axis points along +w.
pub fn world_axes(affine: &Affine) -> ([usize; 3], [bool; 3]) {
    let len: [f64; 3] =
        std::array::from_fn(|c| norm([affine[0][c], affine[1][c], affine[2][c]]).max(1e-12));
    let score =
        |p: &[usize; 3]| -> f64 { (0..3).map(|w| (affine[w][p[w]] / len[p[w]]).abs()).sum() };
    let mut best = AXIS_ORDERS[0];
    for p in AXIS_ORDERS.iter().skip(1) {
        if score(p) > score(&best) + 1e-9 {
            best = *p;
        }
    }
    let positive = std::array::from_fn(|w| affine[w][best[w]] >= 0.0);
    (best, positive)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors() {
        let (x, y) = ([1.0, 0.0, 0.0], [0.0, 2.0, 0.0]);
        assert_eq!(cross(x, y), [0.0, 0.0, 2.0]);
        assert_eq!(dot(x, y), 0.0);
        assert_eq!(norm(sub(y, x)), 5.0f64.sqrt());
        assert_eq!(add_scaled(x, y, 0.5), [1.0, 1.0, 0.0]);
        assert_eq!(unit(y), Some([0.0, 1.0, 0.0]));
        assert_eq!(unit([0.0; 3]), None);
        assert_eq!(unit([f64::NAN, 0.0, 0.0]), None);
    }

    #[test]
    fn inverse_transpose_and_nearest_rotation() {
        let m = [[2.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, -1.0]];
        assert_eq!(det3(&m), -1.0);
        let it = inv_transpose(&m).unwrap();
        assert_eq!(it, [[0.5, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, -1.0]]);
        assert_eq!(inv_transpose(&[[0.0; 3]; 3]), None);
        // A rotation about z by 0.3 rad, sheared and scaled: the rotation comes back.
        let (s, c) = (0.3f64.sin(), 0.3f64.cos());
        let r = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]];
        let skewed = [
            [1.1 * c, -s + 0.02, 0.0],
            [1.1 * s, c, 0.01],
            [0.0, 0.0, 0.9],
        ];
        let back = nearest_rotation(skewed).unwrap();
        let close = |a: [[f64; 3]; 3], b: [[f64; 3]; 3], tol: f64| {
            (0..9).all(|n| (a[n / 3][n % 3] - b[n / 3][n % 3]).abs() < tol)
        };
        assert!(close(back, r, 0.05), "{back:?}");
        assert!((det3(&back) - 1.0).abs() < 1e-12);
        assert!(close(nearest_rotation(r).unwrap(), r, 1e-12));
    }

    #[test]
    fn affine_inverse_round_trips() {
        let a = [
            [0.0, -0.9, 0.1, 10.0],
            [1.2, 0.0, 0.0, -5.0],
            [0.0, 0.2, 3.0, 7.0],
            [0.0, 0.0, 0.0, 1.0],
        ];
        let inv = invert_affine(&a).unwrap();
        for p in [[1.0, 2.0, 3.0], [-4.0, 0.5, 9.0]] {
            let w = transform(&a, p);
            assert_eq!(
                w,
                [
                    -0.9 * p[1] + 0.1 * p[2] + 10.0,
                    1.2 * p[0] - 5.0,
                    0.2 * p[1] + 3.0 * p[2] + 7.0
                ]
            );
            let back = transform(&inv, w);
            for r in 0..3 {
                assert!((back[r] - p[r]).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn singular_affines_have_no_inverse() {
        let mut a = crate::volume::diagonal_affine([1.0, 1.0, 1.0]);
        a[2][2] = 0.0;
        assert_eq!(invert_affine(&a), None);
        a[2][2] = f64::NAN;
        assert_eq!(invert_affine(&a), None);
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
