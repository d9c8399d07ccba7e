//! From a real low-resolution scan to its super-resolved volume: put the low-resolution axis
//! where the network was trained to see it, upsample to the target grid, normalise, run the
//! network in tiles, and undo it all. The CLI, the trainer's evaluation and the page share it.

use burn::tensor::Device;

use crate::infer::{Progress, TileOptions, run_tiled};
use crate::model::{ModelCard, SrNet};
use crate::normalize::Normalization;
use crate::{Result, Volume};

/// Super-resolves `input` with `net`. `axis` overrides which axis of `input` is the
/// low-resolution one (default: the card's degradation decides from the voxel spacing).
pub async fn upscale(
    net: &SrNet,
    card: &ModelCard,
    input: &Volume,
    axis: Option<usize>,
    opts: TileOptions,
    device: &Device,
    progress: &mut dyn FnMut(Progress) -> bool,
) -> Result<Volume> {
    let deg = &card.degradation;
    let order = match axis {
        Some(a) => deg.order_for_axis(a)?,
        None => deg.canonical_order(input),
    };
    let lowres = input.permuted(order);
    let up = deg.upsample(&lowres);
    let norm = Normalization::for_network(&up);
    let out = run_tiled(net, &norm.apply(&up), opts, device, progress).await?;
    let mut out = norm.undo(&out).permuted(Volume::inverse_order(order));
    out.meta = input.meta.clone();
    out.meta.description = format!("{} (mrisr {})", input.meta.description, deg)
        .trim()
        .to_string();
    Ok(out)
}
