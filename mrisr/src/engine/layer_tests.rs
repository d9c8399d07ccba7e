//! The training layer (`layer`) against plain f64 loops written for clarity: the convolution,
//! and its input and weight gradients as the adjoints of that convolution.

use super::layer::{self, ConvWeights, Grid};
use super::tests::Lcg;

/// A padded channels-last batch with random interior and zero border.
fn batch(grid: Grid, c: usize, rng: &mut Lcg) -> Vec<f32> {
    let mut v: Vec<f32> = (0..grid.floats(c)).map(|_| rng.next()).collect();
    layer::zero_border(&mut v, grid, c);
    v
}

fn at(grid: Grid, c: usize, n: usize, z: usize, y: usize, x: usize, ch: usize) -> usize {
    ((((n * grid.d + z) * (grid.h + 2) + y + 1) * (grid.w + 2)) + x + 1) * c + ch
}

/// The tap offsets (dz, dy, dx) of a kernel with `taps` taps, in burn's order.
fn offsets(taps: usize) -> Vec<[isize; 3]> {
    let dzs: &[isize] = if taps == 9 { &[0] } else { &[-1, 0, 1] };
    let mut o = Vec::new();
    for &dz in dzs {
        for dy in -1..=1 {
            for dx in -1..=1 {
                o.push([dz, dy, dx]);
            }
        }
    }
    o
}

/// The input voxel under tap `t` of output voxel (z, y, x), if inside the volume.
fn shifted(grid: Grid, z: usize, y: usize, x: usize, o: [isize; 3]) -> Option<[usize; 3]> {
    let (z, y, x) = (z as isize + o[0], y as isize + o[1], x as isize + o[2]);
    let inside = |v: isize, n: usize| v >= 0 && v < n as isize;
    (inside(z, grid.d) && inside(y, grid.h) && inside(x, grid.w))
        .then_some([z as usize, y as usize, x as usize])
}

fn voxels(grid: Grid) -> impl Iterator<Item = [usize; 4]> {
    let Grid { n, d, h, w } = grid;
    (0..n).flat_map(move |n| {
        (0..d).flat_map(move |z| (0..h).flat_map(move |y| (0..w).map(move |x| [n, z, y, x])))
    })
}

struct Case {
    grid: Grid,
    cin: usize,
    cout: usize,
    taps: usize,
}

fn check(case: Case, seed: u64) {
    let Case {
        grid,
        cin,
        cout,
        taps,
    } = case;
    let mut rng = Lcg(seed);
    let weight: Vec<f32> = (0..cout * cin * taps).map(|_| rng.next() * 0.3).collect();
    let bias: Vec<f32> = (0..cout).map(|_| rng.next()).collect();
    let conv = ConvWeights {
        cin,
        cout,
        weight: &weight,
        bias: &bias,
    };
    let input = batch(grid, cin, &mut rng);
    let grad_out = batch(grid, cout, &mut rng);
    let offs = offsets(taps);
    let w = |co: usize, ci: usize, t: usize| weight[(co * cin + ci) * taps + t] as f64;

    // Reference: y = conv(x) + b, dx = conv^T(dy), dw = sum x dy, db = sum dy.
    let mut y_ref = vec![0.0f64; grid.floats(cout)];
    let mut dx_ref = vec![0.0f64; grid.floats(cin)];
    let mut dw_ref = vec![0.0f64; weight.len()];
    let mut db_ref = vec![0.0f64; cout];
    for [n, z, y, x] in voxels(grid) {
        for co in 0..cout {
            let g = grad_out[at(grid, cout, n, z, y, x, co)] as f64;
            db_ref[co] += g;
            let mut s = bias[co] as f64;
            for (t, &o) in offs.iter().enumerate() {
                if let Some([zz, yy, xx]) = shifted(grid, z, y, x, o) {
                    for ci in 0..cin {
                        let xi = at(grid, cin, n, zz, yy, xx, ci);
                        s += w(co, ci, t) * input[xi] as f64;
                        dx_ref[xi] += w(co, ci, t) * g;
                        dw_ref[(co * cin + ci) * taps + t] += input[xi] as f64 * g;
                    }
                }
            }
            y_ref[at(grid, cout, n, z, y, x, co)] = s;
        }
    }

    let close = |got: &[f32], want: &[f64], what: &str| {
        assert_eq!(got.len(), want.len(), "{what}: length");
        let scale = want.iter().fold(1e-3f64, |m, v| m.max(v.abs()));
        for (i, (&g, &r)) in got.iter().zip(want).enumerate() {
            assert!(
                (g as f64 - r).abs() <= 1e-4 * scale,
                "{what} (cin {cin}, cout {cout}, taps {taps}) at {i}: {g} vs {r}"
            );
        }
    };
    let mut y = vec![f32::NAN; grid.floats(cout)];
    layer::forward(&input, grid, conv, &mut y);
    close(&y, &y_ref, "forward");
    assert!(layer::border_is_zero(&y, grid, cout));
    let mut dx = vec![f32::NAN; grid.floats(cin)];
    layer::input_grad(&grad_out, grid, conv, &mut dx);
    close(&dx, &dx_ref, "input gradient");
    assert!(layer::border_is_zero(&dx, grid, cin));
    let (dw, db) = layer::weight_grad(&input, &grad_out, grid, conv);
    close(&dw, &dw_ref, "weight gradient");
    close(&db, &db_ref, "bias gradient");
}

#[test]
fn layer_matches_plain_loops_for_every_layer_shape() {
    // Odd sizes, two volumes, planes at both ends: every border of the padding is crossed.
    let grid = Grid {
        n: 2,
        d: 3,
        h: 5,
        w: 7,
    };
    for (i, (cin, cout)) in [(1, 16), (16, 16), (16, 1), (32, 16), (16, 64)]
        .into_iter()
        .enumerate()
    {
        for taps in [27, 9] {
            check(
                Case {
                    grid,
                    cin,
                    cout,
                    taps,
                },
                i as u64 * 31 + taps as u64,
            );
        }
    }
}

#[test]
fn layer_handles_a_single_plane_and_rows_narrower_than_a_block() {
    let grid = Grid {
        n: 1,
        d: 1,
        h: 2,
        w: 3,
    };
    check(
        Case {
            grid,
            cin: 16,
            cout: 16,
            taps: 27,
        },
        7,
    );
}

#[test]
fn supported_shapes_are_the_networks() {
    assert!(layer::supported(1, 16) && layer::supported(64, 64) && layer::supported(16, 1));
    assert!(!layer::supported(4, 4) && !layer::supported(1, 4) && !layer::supported(8, 1));
}

#[test]
fn border_check_sees_a_nonzero_border() {
    let grid = Grid {
        n: 1,
        d: 2,
        h: 3,
        w: 3,
    };
    let mut v = vec![0.0; grid.floats(2)];
    assert!(layer::border_is_zero(&v, grid, 2));
    // Last channel of the last voxel of the right border of row 2 in the second plane.
    let i = grid.plane(2) + (3 * 5 + 4) * 2 + 1;
    v[i] = 1.0;
    assert!(!layer::border_is_zero(&v, grid, 2));
    layer::zero_border(&mut v, grid, 2);
    assert!(layer::border_is_zero(&v, grid, 2));
}
