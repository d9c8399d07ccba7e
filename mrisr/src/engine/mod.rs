//! The CPU engine: the network on the CPU at full speed, without burn.
//!
//! burn's CPU backend runs a 3x3x3 convolution as im2col + gemm, which reaches about a tenth of
//! what the CPU can do on 16-64 channels. Here the same network, read from the same weight
//! file, runs as direct convolutions in channels-last layout with SIMD register blocking
//! ([`kernel`]), one plane at a time with nothing computed twice along z ([`stream`]), on every
//! core (rayon natively; one thread per Web Worker in the page). burn stays the engine for
//! training and GPUs; a test checks that both give the same output.

/// The SIMD kernels (crate `mrisr-kernels`, fully optimised in every profile).
pub use mrisr_kernels as kernel;
pub mod layer;
pub mod net;
pub mod stream;

pub use net::CpuNet;
pub use stream::Work;

use crate::tiles::{self, Progress};
use crate::{Error, Result, Volume};
use stream::Column;

/// Memory the engine may use for its plane buffers, by default (the whole-knee run of the
/// `seed` network stays within it; `fast` then takes whole 512 x 512 planes).
pub const DEFAULT_MEMORY_BUDGET: usize = 1 << 30;

/// How a volume is cut into columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColumnPlan {
    /// Edge of a column's core in x and y.
    pub core: usize,
    /// Context on each side: the network's receptive radius.
    pub halo: usize,
}

impl ColumnPlan {
    /// Columns as wide as `budget` bytes of plane buffers allow for a volume of `dims`.
    pub fn for_budget(net: &CpuNet, dims: [usize; 3], budget: usize) -> Self {
        let halo = net.schedule.depth;
        // Per voxel of a column's cross-section: the rings, plus the column's input and output.
        let per_voxel = net.schedule.bytes_per_plane_voxel(&net.strides) + 8 * dims[2];
        let edge = ((budget / per_voxel) as f64).sqrt() as usize;
        Self {
            core: edge.saturating_sub(2 * halo + 2).max(8),
            halo,
        }
    }

    /// Voxel-convolutions a run over a volume of `dims` computes, and those it needs: the
    /// cost of the columns' halos (nothing is recomputed along k).
    pub fn work(&self, net: &CpuNet, dims: [usize; 3]) -> Work {
        let mut total = Work::default();
        for tile in self.columns(dims) {
            let w = stream::planned_work(net, Column::of(&tile, [0, dims[2]]));
            total.computed += w.computed;
            total.needed += w.needed;
        }
        total
    }

    fn columns(&self, dims: [usize; 3]) -> Vec<tiles::Tile> {
        tiles::plan_axes(
            dims,
            [self.core, self.core, dims[2]],
            [self.halo, self.halo, 0],
        )
    }

    /// Bytes the plane buffers of one column take (the peak of a run, besides the volumes).
    pub fn column_bytes(&self, net: &CpuNet, dims: [usize; 3]) -> usize {
        let nx = (self.core + 2 * self.halo).min(dims[0]) + 2;
        let ny = (self.core + 2 * self.halo).min(dims[1]) + 2;
        nx * ny * (net.schedule.bytes_per_plane_voxel(&net.strides) + 8 * dims[2])
    }
}

/// Applies `net` to `input` (already on the target grid and normalised): the same result as
/// `infer::run_tiled` with burn. `progress` is called after every plane of every column;
/// returning `false` cancels with [`Error::Cancelled`]. [`ColumnPlan::work`] says what the
/// run computes.
pub fn run(
    net: &CpuNet,
    input: &Volume,
    plan: ColumnPlan,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Volume> {
    run_planes(net, input, plan, [0, input.dims[2]], progress)
}

/// [`run`] for a slab of a larger volume of which only the planes `[k0, k1)` along k are
/// wanted (the others are context, and come out as zeros): each tensor is computed only as
/// far beyond them as the layers after it need, so a slab's context costs about half of what
/// a whole run over it would.
pub fn run_planes(
    net: &CpuNet,
    input: &Volume,
    plan: ColumnPlan,
    [k0, k1]: [usize; 2],
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Volume> {
    let dims = input.dims;
    if dims.contains(&0) {
        return Err(Error::Invalid("the volume is empty".into()));
    }
    if k0 >= k1 || k1 > dims[2] {
        return Err(Error::Invalid(format!(
            "planes {k0}..{k1} wanted of a volume with {} along k",
            dims[2]
        )));
    }
    let columns = plan.columns(dims);
    let steps = dims[2] + net.schedule.depth;
    let voxels_total: usize = columns.iter().map(|t| t.read_voxels()).sum();
    let mut out = Volume {
        data: vec![0.0; input.len()],
        ..input.clone()
    };
    let mut voxels_before = 0;
    for (n, tile) in columns.iter().enumerate() {
        let block = tiles::extract(input, tile);
        let col = Column::of(tile, [k0, k1]);
        let mut report = |done: usize| {
            progress(Progress {
                tiles_done: n + usize::from(done == steps),
                tiles_total: columns.len(),
                voxels_done: voxels_before + tile.read_voxels() * done / steps,
                voxels_total,
            })
        };
        let result = stream::run_column(net, &block, col, &mut report).ok_or(Error::Cancelled)?;
        tiles::stitch(&mut out, tile, &result);
        voxels_before += tile.read_voxels();
    }
    Ok(out)
}

#[cfg(test)]
mod layer_tests;
#[cfg(test)]
mod tests;
