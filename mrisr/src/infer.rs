//! Running the network over a whole volume, tile by tile, on any burn device.
//!
//! Async because a browser can only read GPU results back asynchronously; native callers
//! block on the future (see `block_on`).

use burn::tensor::{Device, Tensor, TensorData};

use crate::model::SrNet;
pub use crate::tiles::Progress;
use crate::tiles::{self, Tile};
use crate::{Error, Result, Volume};

/// How to cut the volume for the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileOptions {
    /// Core edge in voxels (the part of each tile that is kept).
    pub core: usize,
    /// Context voxels on each side; at least the network's receptive radius for seamless output.
    pub halo: usize,
}

impl TileOptions {
    /// Tiles as large as `max_tile_voxels` allows, with a halo that makes tiling invisible.
    pub fn for_net(net: &crate::model::SrNetConfig, max_tile_voxels: usize) -> Self {
        let halo = net.receptive_radius();
        Self {
            core: tiles::core_for_budget(max_tile_voxels, halo),
            halo,
        }
    }
}

/// Applies `net` to `input` (already on the target grid and normalised), tile by tile.
///
/// `progress` is called after every tile; returning `false` cancels with [`Error::Cancelled`].
pub async fn run_tiled(
    net: &SrNet,
    input: &Volume,
    opts: TileOptions,
    device: &Device,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Volume> {
    let plan = tiles::plan(input.dims, opts.core, opts.halo);
    let voxels_total = plan.iter().map(Tile::read_voxels).sum();
    let mut out = Volume {
        data: vec![0.0; input.len()],
        ..input.clone()
    };
    let mut voxels_done = 0;
    for (n, tile) in plan.iter().enumerate() {
        let result = run_tile(net, &tiles::extract(input, tile), tile.read_size, device).await?;
        tiles::stitch(&mut out, tile, &result);
        voxels_done += tile.read_voxels();
        let p = Progress {
            tiles_done: n + 1,
            tiles_total: plan.len(),
            voxels_done,
            voxels_total,
        };
        if !progress(p) {
            return Err(Error::Cancelled);
        }
    }
    Ok(out)
}

/// One forward pass on a block stored i fastest (`size` = [ni, nj, nk]).
pub async fn run_tile(
    net: &SrNet,
    block: &[f32],
    size: [usize; 3],
    device: &Device,
) -> Result<Vec<f32>> {
    let [ni, nj, nk] = size;
    let x = Tensor::<5>::from_data(TensorData::new(block.to_vec(), [1, 1, nk, nj, ni]), device);
    let y = net.forward(x);
    let data = y
        .into_data_async()
        .await
        .map_err(|e| Error::Invalid(format!("the compute device failed: {e:?}")))?;
    data.try_into_vec::<f32>()
        .map_err(|e| Error::Invalid(format!("unexpected network output: {e:?}")))
}

/// Runs a future to completion on the current thread (native callers of the async API).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_lite::future::block_on(f)
}
