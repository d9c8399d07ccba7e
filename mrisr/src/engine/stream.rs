//! Runs the network over a column of the volume (an x-y tile, every slice) plane by plane.
//!
//! Every tensor of the network lives in a ring of a few z-planes. At step `t` the input's plane
//! `t` comes in, and each convolution writes its plane `t - lag`, where `lag` is how many
//! convolutions lie between it and the input: by then the three input planes it reads exist.
//! Nothing is computed twice along z (no halo there), and memory is a few planes per tensor
//! instead of whole volumes. Across x and y each tensor is computed only as far out as the
//! layers after it need (its margin: the convolutions still to come), so the column's halo
//! costs little. The same holds along z when only some planes are wanted (a slab of a volume
//! split among the page's workers): each tensor is computed only that far beyond them.

use super::kernel::{self, Epilogue, Inputs, Region};
use super::net::{CpuNet, Layer, TensorId};

/// Planes each tensor keeps, and how far behind the input each is produced.
#[derive(Clone, Debug)]
pub struct Schedule {
    pub lags: Vec<usize>,
    pub capacity: Vec<usize>,
    pub depth: usize,
}

impl Schedule {
    /// For `layers` (in the order they run) over tensors with channel `strides`.
    pub fn new(layers: &[Layer], strides: &[usize]) -> Self {
        let n = strides.len();
        let mut lags = vec![0; n];
        for l in layers {
            lags[l.output] = lags[l.input] + 1;
        }
        let mut capacity = vec![1; n];
        for l in layers {
            // A convolution reads planes z-1..z+1 of its input while that input is at z+1.
            capacity[l.input] = capacity[l.input].max(3);
            if let Some((s, _)) = l.skip {
                assert!(
                    lags[s] <= lags[l.output],
                    "a residual reads a tensor written earlier"
                );
                capacity[s] = capacity[s].max(lags[l.output] - lags[s] + 1);
            }
        }
        let depth = lags[n - 1];
        Self {
            lags,
            capacity,
            depth,
        }
    }

    /// Bytes of ring buffers per voxel of a plane (the output is written straight out).
    pub fn bytes_per_plane_voxel(&self, strides: &[usize]) -> usize {
        let floats: usize = (0..strides.len() - 1)
            .map(|t| self.capacity[t] * strides[t])
            .sum();
        floats * 4
    }
}

/// A column: `dims` = [nx, ny, nz] voxels of the tile (x fastest), and the core box
/// `[x0, x1) x [y0, y1) x [z0, z1)` whose results are wanted.
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub dims: [usize; 3],
    pub core: [[usize; 2]; 3],
}

impl Column {
    /// The column of a tile from `tiles::plan_axes` (whole along k), of which the planes
    /// `core_z` are wanted.
    pub fn of(tile: &crate::tiles::Tile, core_z: [usize; 2]) -> Self {
        let [x, y] = [0, 1].map(|a| {
            let start = tile.core_start[a] - tile.read_start[a];
            [start, start + tile.core_size[a]]
        });
        Self {
            dims: tile.read_size,
            core: [x, y, core_z],
        }
    }
}

/// Voxel-convolutions computed, and those the output needs (see [`planned_work`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Work {
    pub computed: u64,
    pub needed: u64,
}

/// Runs `net` on `input` (the column's voxels, x fastest) and returns the column's output with
/// the core filled (zeros elsewhere). `step` is called after every plane step with the number of
/// steps done (of `nz + depth`); returning `false` stops and gives `None`.
pub fn run_column(
    net: &CpuNet,
    input: &[f32],
    col: Column,
    step: &mut dyn FnMut(usize) -> bool,
) -> Option<Vec<f32>> {
    let schedule = &net.schedule;
    let [nx, ny, nz] = col.dims;
    assert_eq!(input.len(), nx * ny * nz);
    let padded = (nx + 2) * (ny + 2);
    let y_out = net.output();
    let mut rings: Vec<Vec<f32>> = (0..net.strides.len())
        .map(|t| {
            if t == y_out {
                Vec::new()
            } else {
                vec![0.0; schedule.capacity[t] * padded * net.strides[t]]
            }
        })
        .collect();
    let zero = vec![0.0f32; padded * net.strides.iter().max().unwrap()];
    let mut out = vec![0.0f32; nx * ny * nz];
    let plane = |rings: &[Vec<f32>], t: TensorId, z: isize| -> *const [f32] {
        let len = padded * net.strides[t];
        if z < 0 || z as usize >= nz {
            &zero[..len]
        } else {
            let slot = z as usize % schedule.capacity[t];
            &rings[t][slot * len..(slot + 1) * len]
        }
    };
    for t in 0..nz + schedule.depth {
        if t < nz {
            // The input plane, into its ring with the zero border.
            let slot = t % schedule.capacity[0];
            let dst = &mut rings[0][slot * padded..(slot + 1) * padded];
            for y in 0..ny {
                let src = &input[(t * ny + y) * nx..(t * ny + y + 1) * nx];
                dst[(y + 1) * (nx + 2) + 1..(y + 1) * (nx + 2) + 1 + nx].copy_from_slice(src);
            }
        }
        for layer in &net.layers {
            let [z0, z1] = z_range(schedule, col, layer.output);
            let Some(z) = t
                .checked_sub(schedule.lags[layer.output])
                .filter(|z| (z0..z1).contains(z))
            else {
                continue;
            };
            let z = z as isize;
            // SAFETY (the raw slices below): they point into rings of tensors other than the
            // one written (a layer never reads its own output), which stay put during the call.
            let input = Inputs {
                planes: [-1, 0, 1].map(|dz| unsafe { &*plane(&rings, layer.input, z + dz) }),
                stride: net.strides[layer.input],
            };
            let skip = layer
                .skip
                .map(|(s, scale)| (unsafe { &*plane(&rings, s, z) }, scale));
            let epi = Epilogue {
                relu: layer.relu,
                skip,
            };
            let region = region(schedule, col, layer.output);
            if layer.output == y_out {
                let rows = &mut out[z as usize * nx * ny..(z as usize + 1) * nx * ny];
                let rows = &mut rows[region.y0 * nx..region.y1 * nx];
                par_rows(rows, nx, region, |r, chunk| {
                    kernel::conv_rows_to_scalar(&layer.conv, input, r, epi, chunk)
                });
            } else {
                let len = padded * net.strides[layer.output];
                let slot = z as usize % schedule.capacity[layer.output];
                let row_len = (nx + 2) * net.strides[layer.output];
                let dst = &mut rings[layer.output][slot * len..(slot + 1) * len];
                let rows = &mut dst[(region.y0 + 1) * row_len..(region.y1 + 1) * row_len];
                par_rows(rows, row_len, region, |r, chunk| {
                    kernel::conv_rows(&layer.conv, input, r, epi, chunk)
                });
            }
        }
        if !step(t + 1) {
            return None;
        }
    }
    Some(out)
}

/// The part of tensor `t`'s planes a column computes: the core, widened by one voxel for each
/// convolution still to come after `t`, within the column.
fn region(schedule: &Schedule, col: Column, t: TensorId) -> Region {
    let margin = schedule.depth - schedule.lags[t];
    let [nx, ny, _] = col.dims;
    let [[x0, x1], [y0, y1], _] = col.core;
    Region {
        nx,
        x0: x0.saturating_sub(margin),
        x1: (x1 + margin).min(nx),
        y0: y0.saturating_sub(margin),
        y1: (y1 + margin).min(ny),
    }
}

/// The planes `[z0, z1)` of tensor `t` a column computes: the wanted ones, widened by one for
/// each convolution still to come after `t` (which reads a plane either side), within the column.
fn z_range(schedule: &Schedule, col: Column, t: TensorId) -> [usize; 2] {
    let margin = schedule.depth - schedule.lags[t];
    let [z0, z1] = col.core[2];
    [z0.saturating_sub(margin), (z1 + margin).min(col.dims[2])]
}

/// Voxel-convolutions a column computes, and those its core needs.
pub fn planned_work(net: &CpuNet, col: Column) -> Work {
    let [[x0, x1], [y0, y1], [z0, z1]] = col.core;
    let computed = net
        .layers
        .iter()
        .map(|l| {
            let r = region(&net.schedule, col, l.output);
            let [a, b] = z_range(&net.schedule, col, l.output);
            ((r.x1 - r.x0) * (r.y1 - r.y0) * (b - a)) as u64
        })
        .sum();
    Work {
        computed,
        needed: ((x1 - x0) * (y1 - y0) * (z1 - z0)) as u64 * net.layers.len() as u64,
    }
}

/// Splits the rows of `region` (held in `rows`, `row_len` floats each) among the CPU's threads.
fn par_rows(
    rows: &mut [f32],
    row_len: usize,
    region: Region,
    f: impl Fn(Region, &mut [f32]) + Sync,
) {
    let n = region.y1 - region.y0;
    if n == 0 {
        return;
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        // A few chunks per thread keeps the threads busy when rows differ in cost.
        let chunk_rows = n.div_ceil(4 * rayon::current_num_threads()).max(1);
        rows.par_chunks_mut(chunk_rows * row_len)
            .enumerate()
            .for_each(|(i, chunk)| {
                let y0 = region.y0 + i * chunk_rows;
                let r = Region {
                    y0,
                    y1: (y0 + chunk_rows).min(region.y1),
                    ..region
                };
                f(r, chunk)
            });
    }
    // One engine per Web Worker in the page (see www/js/compute.js): no threads inside it.
    #[cfg(target_arch = "wasm32")]
    {
        let _ = row_len;
        f(region, rows);
    }
}
