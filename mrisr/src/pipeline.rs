//! From a real low-resolution scan to its super-resolved volume: put the low-resolution axis
//! where the network was trained to see it, upsample to the target grid, normalise, run the
//! network, and undo it all. The CLI, the trainer's evaluation and the page share it, with
//! either engine ([`Network`]: mrisr's CPU engine, or burn on a device); the page's CPU pool
//! calls [`prepare`] and [`Prepared::finish`] itself around its workers.

use crate::adapt::Task;
#[cfg(feature = "nn")]
use crate::engine::{self, ColumnPlan, CpuNet};
use crate::model::ModelCard;
use crate::normalize::Normalization;
use crate::resample::resample;
use crate::scan::ScanGeometry;
#[cfg(feature = "nn")]
use crate::tiles::Progress;
use crate::{Metadata, Result, Volume};

/// The network's input for a scan, and what it takes to map the network's output back.
pub struct Prepared {
    /// What the network reads: upsampled, permuted and normalised. One view for a generic
    /// model; two for a model learned from a scan (both in-plane orientations of its planar
    /// network), whose outputs are averaged.
    pub views: Vec<View>,
    norm: Normalization,
}

/// One input of the network, in its frame.
pub struct View {
    pub input: Volume,
    order: [usize; 3],
}

/// Puts `input` in the network's frame. `axis` overrides which axis of `input` is the
/// low-resolution one (default: the card's degradation decides from the voxel spacing).
pub fn prepare(card: &ModelCard, input: &Volume, axis: Option<usize>) -> Result<Prepared> {
    if let Some(adapted) = &card.adapted {
        return prepare_adapted(&adapted.task, input, axis);
    }
    let deg = &card.degradation;
    let order = match axis {
        Some(a) => deg.order_for_axis(a)?,
        None => deg.canonical_order(input),
    };
    let up = deg.upsample(&input.permuted(order));
    let norm = Normalization::for_network(&up);
    Ok(Prepared {
        views: vec![View {
            input: norm.apply(&up),
            order,
        }],
        norm,
    })
}

/// A planar network learned from a scan: the thick axis upsampled by the task's factor with
/// its baseline, then the thick axis at the network's axis 0 and each in-plane axis in turn at
/// its axis 1 (the planes it convolves); the other in-plane axis runs along axis 2.
fn prepare_adapted(task: &Task, input: &Volume, axis: Option<usize>) -> Result<Prepared> {
    let thick = match axis {
        Some(a) if a > 2 => {
            return Err(crate::Error::Invalid(format!("axis {a} is not 0, 1 or 2")));
        }
        Some(a) => a,
        None => ScanGeometry::of(input, None, task.geometry.profile)?.thick_axis,
    };
    let mut dims = input.dims;
    dims[thick] = ScanGeometry::output_slices(dims[thick], task.factor);
    let up = resample(input, dims, task.baseline);
    let norm = Normalization::for_network(&up);
    let up = norm.apply(&up);
    let (a, b) = ((thick + 1) % 3, (thick + 2) % 3);
    let views = [[thick, a, b], [thick, b, a]]
        .into_iter()
        .map(|order| View {
            input: up.permuted(order),
            order,
        })
        .collect();
    Ok(Prepared { views, norm })
}

impl Prepared {
    /// The network's outputs (one per view) back in the scan's frame and intensities, averaged,
    /// with the scan's metadata (`source`) and a description that says what was done.
    pub fn finish(&self, outputs: &[Volume], card: &ModelCard, source: &Metadata) -> Volume {
        assert_eq!(outputs.len(), self.views.len(), "one output per view");
        let mut sum: Option<Volume> = None;
        for (view, output) in self.views.iter().zip(outputs) {
            let back = output.permuted(Volume::inverse_order(view.order));
            match &mut sum {
                None => sum = Some(back),
                Some(s) => s.data.iter_mut().zip(&back.data).for_each(|(a, b)| *a += b),
            }
        }
        let mut mean = sum.expect("at least one view");
        let n = outputs.len() as f32;
        if n > 1.0 {
            mean.data.iter_mut().for_each(|x| *x /= n);
        }
        let mut out = self.norm.undo(&mean);
        out.meta = source.clone();
        // The source's slice thickness no longer describes the new slices.
        out.meta.slice_thickness_mm = None;
        let what = match &card.adapted {
            Some(a) => format!("learned x{:.2}", a.task.factor),
            None => card.degradation.to_string(),
        };
        out.meta.description = format!("{} (mrisr {what})", source.description)
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
    /// burn's network on `device` (a GPU), in `tiles`. Boxed: burn holds its modules inline,
    /// and unboxed they made every `Network` 960 bytes, the CPU one too.
    Burn {
        net: Box<crate::model::SrNet>,
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
                let net = Box::new(net);
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
        let views = prepared.views.len();
        let mut outputs = Vec::with_capacity(views);
        for (v, view) in prepared.views.iter().enumerate() {
            // One progress scale over every view.
            let mut report = |p: Progress| {
                progress(Progress {
                    tiles_done: v * p.tiles_total + p.tiles_done,
                    tiles_total: views * p.tiles_total,
                    voxels_done: v * p.voxels_total + p.voxels_done,
                    voxels_total: views * p.voxels_total,
                })
            };
            outputs.push(self.run(&view.input, &mut report).await?);
        }
        Ok(prepared.finish(&outputs, card, &input.meta))
    }
}
