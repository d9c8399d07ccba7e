//! From a real low-resolution scan to its super-resolved volume: put the low-resolution axis
//! where the network was trained to see it, upsample to the target grid, normalise, run the
//! network, and undo it all. The CLI, the trainer's evaluation and the page share it, with
//! either engine: mrisr's CPU engine ([`upscale_cpu`]) or burn on any device ([`upscale`]).

use crate::engine::{self, ColumnPlan, CpuNet};
use crate::model::ModelCard;
use crate::normalize::Normalization;
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

/// Super-resolves `input` on the CPU with mrisr's engine, within `memory_budget` bytes of
/// plane buffers (see [`engine::ColumnPlan::for_budget`]).
pub fn upscale_cpu(
    net: &CpuNet,
    card: &ModelCard,
    input: &Volume,
    axis: Option<usize>,
    memory_budget: usize,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Volume> {
    let prepared = prepare(card, input, axis)?;
    let plan = ColumnPlan::for_budget(net, prepared.input.dims, memory_budget);
    let mut work = engine::Work::default();
    let out = engine::run(net, &prepared.input, plan, &mut work, progress)?;
    Ok(prepared.finish(&out, card, &input.meta))
}

/// Super-resolves `input` with burn's `net` on `device`, in tiles.
#[cfg(feature = "nn")]
pub async fn upscale(
    net: &crate::model::SrNet,
    card: &ModelCard,
    input: &Volume,
    axis: Option<usize>,
    opts: crate::infer::TileOptions,
    device: &burn::tensor::Device,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Volume> {
    let prepared = prepare(card, input, axis)?;
    let out = crate::infer::run_tiled(net, &prepared.input, opts, device, progress).await?;
    Ok(prepared.finish(&out, card, &input.meta))
}
