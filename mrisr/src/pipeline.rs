//! From a real low-resolution scan to its super-resolved volume: put the low-resolution axis
//! where the network was trained to see it, upsample to the target grid, normalise, run the
//! network, and undo it all. The CLI, the trainer's evaluation and the page share it, with
//! either engine ([`Network`]: mrisr's CPU engine, or burn on a device); the page's CPU pool
//! calls [`prepare`] and [`Prepared::finish`] itself around its workers.

#[cfg(feature = "nn")]
use crate::engine::{self, ColumnPlan, CpuNet};
use crate::model::ModelCard;
use crate::normalize::Normalization;
#[cfg(feature = "nn")]
use crate::tiles::Progress;
use crate::{Metadata, Result, Volume};

/// The network's input for a scan, and what it takes to map the network's output back.
pub struct Prepared {
    /// Upsampled, permuted and normalised: what the network reads.
    pub input: Volume,
    order: [usize; 3],
    norm: Normalization,
}

/// Puts `input` in the network's frame. `axis` overrides which axis of `input` is the
/// low-resolution one (default: the card's degradation decides from the voxel spacing).
pub fn prepare(card: &ModelCard, input: &Volume, axis: Option<usize>) -> Result<Prepared> {
    let deg = &card.degradation;
    let order = match axis {
        Some(a) => deg.order_for_axis(a)?,
        None => deg.canonical_order(input),
    };
    let up = deg.upsample(&input.permuted(order));
    let norm = Normalization::for_network(&up);
    Ok(Prepared {
        input: norm.apply(&up),
        order,
        norm,
    })
}

impl Prepared {
    /// The network's output back in the scan's frame and intensities, with the scan's
    /// metadata (`source`) and a description that says what was done.
    pub fn finish(&self, output: &Volume, card: &ModelCard, source: &Metadata) -> Volume {
        let mut out = self
            .norm
            .undo(output)
            .permuted(Volume::inverse_order(self.order));
        out.meta = source.clone();
        out.meta.description = format!("{} (mrisr {})", source.description, card.degradation)
            .trim()
            .to_string();
        out
    }
}

/// A network on the engine that runs it: what the CLI, `trainer eval` and the page hold once
/// they have read a weight file.
#[cfg(feature = "nn")]
pub enum Network {
    /// mrisr's CPU engine, within `memory` bytes of plane buffers.
    Cpu { net: CpuNet, memory: usize },
    /// burn's network on `device` (a GPU), in `tiles`.
    Burn {
        net: crate::model::SrNet,
        device: burn::tensor::Device,
        tiles: crate::infer::TileOptions,
    },
}

#[cfg(feature = "nn")]
impl Network {
    /// Reads a weight file for the CPU engine (`device` = None) or for burn on `device`, with
    /// tiles of at most `max_tile_voxels` there. `name` is used in error messages.
    pub fn load(
        name: &str,
        bytes: &[u8],
        device: Option<&burn::tensor::Device>,
        memory: usize,
        max_tile_voxels: usize,
    ) -> Result<(Self, ModelCard)> {
        Ok(match device {
            None => {
                let (net, card) = CpuNet::from_weight_file(name, bytes)?;
                (Network::Cpu { net, memory }, card)
            }
            Some(device) => {
                let (net, card) = crate::model::weights::load(name, bytes, device)?;
                let tiles = crate::infer::TileOptions::for_net(&card.net, max_tile_voxels);
                let device = device.clone();
                (Network::Burn { net, device, tiles }, card)
            }
        })
    }

    /// The network alone, on a volume already in its frame (see [`prepare`]).
    pub async fn run(
        &self,
        input: &Volume,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<Volume> {
        match self {
            Network::Cpu { net, memory } => {
                let plan = ColumnPlan::for_budget(net, input.dims, *memory);
                engine::run(net, input, plan, progress)
            }
            Network::Burn { net, device, tiles } => {
                crate::infer::run_tiled(net, input, *tiles, device, progress).await
            }
        }
    }

    /// A scan to its super-resolved volume: [`prepare`], [`Network::run`], then back.
    pub async fn upscale(
        &self,
        card: &ModelCard,
        input: &Volume,
        axis: Option<usize>,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<Volume> {
        let prepared = prepare(card, input, axis)?;
        let out = self.run(&prepared.input, progress).await?;
        Ok(prepared.finish(&out, card, &input.meta))
    }
}
