//! One convolution layer over a whole batch, forward and backward: what training needs from the
//! CPU kernels (`model::cpu_conv` plugs it into burn's autodiff on the CPU backend).
//!
//! Layout ("padded channels-last"): `[n][d][h + 2][w + 2][c]`, one zero voxel around each plane
//! in y and x (the network's "same" padding, so the kernels need no bounds checks); planes
//! outside the volume in z are planes of zeros. Every function keeps that border zero.
//!
//! The input gradient of a convolution is the convolution of the output gradient with the
//! weights flipped in space and their channels swapped, so it runs on the forward kernel; the
//! weight gradient has its own kernel (`mrisr_kernels::weight_grad`).

use mrisr_kernels::{Epilogue, Inputs, PackedConv, Region};

/// The interior size of a padded channels-last batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub n: usize,
    pub d: usize,
    pub h: usize,
    pub w: usize,
}

impl Grid {
    /// Floats in one padded plane of `c` channels.
    pub fn plane(&self, c: usize) -> usize {
        (self.h + 2) * (self.w + 2) * c
    }

    /// Floats in the whole padded batch of `c` channels.
    pub fn floats(&self, c: usize) -> usize {
        self.n * self.d * self.plane(c)
    }

    fn region(&self) -> Region {
        Region {
            nx: self.w,
            x0: 0,
            x1: self.w,
            y0: 0,
            y1: self.h,
        }
    }
}

/// A convolution's weights as burn and PyTorch hold them: `[cout][cin][taps]`, taps 27 (3x3x3)
/// or 9 (planar: 1x3x3), and the bias.
#[derive(Clone, Copy, Debug)]
pub struct ConvWeights<'a> {
    pub cin: usize,
    pub cout: usize,
    pub weight: &'a [f32],
    pub bias: &'a [f32],
}

impl ConvWeights<'_> {
    pub fn planar(&self) -> bool {
        self.weight.len() == self.cout * self.cin * 9
    }

    /// The weights with 27 taps (a planar kernel is the middle plane of a 3x3x3 one).
    fn taps27(&self) -> Vec<f32> {
        if self.planar() {
            super::net::middle_plane(self.weight)
        } else {
            self.weight.to_vec()
        }
    }
}

/// Whether the kernels take a layer of these channel counts: every count a multiple of 16 (the
/// widest SIMD vector) except a single input or output channel (the network's head and tail).
pub fn supported(cin: usize, cout: usize) -> bool {
    let ok = |c: usize| c.is_multiple_of(16);
    (cin == 1 && ok(cout)) || (cout == 1 && ok(cin)) || (ok(cin) && ok(cout))
}

/// Whether the kernels take every layer of a network of `channels` features (head, body, tail).
pub fn supports_network(channels: usize) -> bool {
    supported(1, channels) && supported(channels, channels) && supported(channels, 1)
}

/// `out = conv(input) + bias`, both padded channels-last (`out`: `cout` channels, border zero).
pub fn forward(input: &[f32], grid: Grid, conv: ConvWeights, out: &mut [f32]) {
    let packed = PackedConv::pack(conv.cin, conv.cout, conv.cout, &conv.taps27(), conv.bias);
    run(input, conv.cin, grid, &packed, out);
}

/// The gradient at the input of a convolution from the gradient at its output (`grad_out`,
/// `cout` channels, border zero): padded channels-last, `cin` channels.
pub fn input_grad(grad_out: &[f32], grid: Grid, conv: ConvWeights, grad_in: &mut [f32]) {
    let w = conv.taps27();
    // Flipped in space (tap t -> 26 - t) with the channels swapped: [cin][cout][27].
    let mut flipped = vec![0.0; w.len()];
    for co in 0..conv.cout {
        for ci in 0..conv.cin {
            for t in 0..27 {
                flipped[(ci * conv.cout + co) * 27 + 26 - t] = w[(co * conv.cin + ci) * 27 + t];
            }
        }
    }
    let packed = PackedConv::pack(
        conv.cout,
        conv.cin,
        conv.cin,
        &flipped,
        &vec![0.0; conv.cin],
    );
    run(grad_out, conv.cout, grid, &packed, grad_in);
}

/// The gradients of the weights (`[cout][cin][taps]`, as `conv.weight`) and of the bias, from the
/// layer's input and the gradient at its output (both padded channels-last, border zero).
pub fn weight_grad(
    input: &[f32],
    grad_out: &[f32],
    grid: Grid,
    conv: ConvWeights,
) -> (Vec<f32>, Vec<f32>) {
    let (cin, cout) = (conv.cin, conv.cout);
    assert_eq!(input.len(), grid.floats(cin));
    assert_eq!(grad_out.len(), grid.floats(cout));
    let planar = conv.planar();
    let zeros = vec![0.0; grid.plane(cin)];
    // Sums per (batch, z) plane: acc[tap][ci][co] (or [tap][ci] for one output channel), then
    // the bias's sums over the interior.
    let acc_len = 27 * cin * cout;
    let plane = |p: usize, acc: &mut [f32]| {
        let (n, z) = (p / grid.d, p % grid.d);
        let at = |z: usize| &input[(n * grid.d + z) * grid.plane(cin)..][..grid.plane(cin)];
        let planes = [
            if z > 0 { at(z - 1) } else { &zeros },
            at(z),
            if z + 1 < grid.d { at(z + 1) } else { &zeros },
        ];
        let inputs = Inputs {
            planes,
            stride: cin,
        };
        let g = &grad_out[p * grid.plane(cout)..][..grid.plane(cout)];
        let (wacc, bacc) = acc.split_at_mut(acc_len);
        if cout == 1 {
            mrisr_kernels::weight_grad_to_scalar(planar, inputs, g, grid.w, grid.h, wacc);
        } else {
            mrisr_kernels::weight_grad(planar, cin, cout, inputs, g, grid.w, grid.h, wacc);
        }
        for y in 0..grid.h {
            let row = &g[((y + 1) * (grid.w + 2) + 1) * cout..][..grid.w * cout];
            for voxel in row.chunks_exact(cout) {
                for (b, &v) in bacc.iter_mut().zip(voxel) {
                    *b += v;
                }
            }
        }
    };
    let acc = sum_over_planes(grid.n * grid.d, acc_len + cout, plane);
    let (wacc, bias) = acc.split_at(acc_len);
    // [tap][ci][co] -> [co][ci][taps], only the middle plane's taps for a planar kernel.
    let taps = if planar { 9..18 } else { 0..27 };
    let mut weight = Vec::with_capacity(cout * cin * taps.len());
    for co in 0..cout {
        for ci in 0..cin {
            weight.extend(taps.clone().map(|t| wacc[(t * cin + ci) * cout + co]));
        }
    }
    (weight, bias.to_vec())
}

/// Whether the y-x border of every plane is zero (gradients from outside this module are
/// checked before the kernels read them as padding).
pub fn border_is_zero(data: &[f32], grid: Grid, c: usize) -> bool {
    let row = (grid.w + 2) * c;
    data.chunks_exact(grid.plane(c)).all(|plane| {
        plane[..row].iter().all(|&v| v == 0.0)
            && plane[(grid.h + 1) * row..].iter().all(|&v| v == 0.0)
            && (1..=grid.h).all(|y| {
                let r = &plane[y * row..(y + 1) * row];
                r[..c].iter().chain(&r[row - c..]).all(|&v| v == 0.0)
            })
    })
}

/// Sets the y-x border of every plane to zero.
pub fn zero_border(data: &mut [f32], grid: Grid, c: usize) {
    let row = (grid.w + 2) * c;
    for plane in data.chunks_exact_mut(grid.plane(c)) {
        plane[..row].fill(0.0);
        plane[(grid.h + 1) * row..].fill(0.0);
        for y in 1..=grid.h {
            let r = &mut plane[y * row..(y + 1) * row];
            r[..c].fill(0.0);
            r[row - c..].fill(0.0);
        }
    }
}

/// One packed convolution over every plane of the batch, planes in parallel.
fn run(input: &[f32], cin: usize, grid: Grid, conv: &PackedConv, out: &mut [f32]) {
    let cout = conv.cout;
    assert_eq!(input.len(), grid.floats(cin), "input is not a padded batch");
    assert_eq!(out.len(), grid.floats(cout), "output is not a padded batch");
    let zeros = vec![0.0; grid.plane(cin)];
    let plane = |p: usize, out: &mut [f32]| {
        let (n, z) = (p / grid.d, p % grid.d);
        let at = |z: usize| &input[(n * grid.d + z) * grid.plane(cin)..][..grid.plane(cin)];
        let inputs = Inputs {
            planes: [
                if z > 0 { at(z - 1) } else { &zeros },
                at(z),
                if z + 1 < grid.d { at(z + 1) } else { &zeros },
            ],
            stride: cin,
        };
        let epi = Epilogue {
            relu: false,
            skip: None,
        };
        let row = (grid.w + 2) * cout;
        // The kernels write the interior of rows 1..=h only: the border stays zero.
        out.fill(0.0);
        if cout == 1 {
            // The one-channel kernel writes rows without border; they go into the padded plane.
            let mut rows = vec![0.0; grid.h * grid.w];
            mrisr_kernels::conv_rows_to_scalar(conv, inputs, grid.region(), epi, &mut rows);
            for (y, r) in rows.chunks_exact(grid.w).enumerate() {
                out[(y + 1) * row + 1..][..grid.w].copy_from_slice(r);
            }
        } else {
            mrisr_kernels::conv_rows(conv, inputs, grid.region(), epi, &mut out[row..]);
        }
    };
    for_each_plane(out, grid.plane(cout), plane);
}

/// Runs `f(plane index, plane)` over the planes of `out`: on every core natively, in turn in the
/// page (one engine per Web Worker there).
fn for_each_plane(out: &mut [f32], plane_len: usize, f: impl Fn(usize, &mut [f32]) + Sync) {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(plane_len)
            .enumerate()
            .for_each(|(p, o)| f(p, o));
    }
    #[cfg(target_arch = "wasm32")]
    for (p, o) in out.chunks_mut(plane_len).enumerate() {
        f(p, o);
    }
}

/// The sum over planes `0..planes` of what `f(plane, acc)` adds to a zeroed `acc` of `len`
/// floats: one accumulator per thread natively, added up at the end.
fn sum_over_planes(planes: usize, len: usize, f: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        (0..planes)
            .into_par_iter()
            .fold(
                || vec![0.0; len],
                |mut acc, p| {
                    f(p, &mut acc);
                    acc
                },
            )
            .reduce(
                || vec![0.0; len],
                |mut a, b| {
                    a.iter_mut().zip(&b).for_each(|(a, b)| *a += b);
                    a
                },
            )
    }
    #[cfg(target_arch = "wasm32")]
    {
        let mut acc = vec![0.0; len];
        (0..planes).for_each(|p| f(p, &mut acc));
        acc
    }
}
