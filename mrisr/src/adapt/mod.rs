//! Learning from this scan (self-supervised super-resolution, after SMORE and ECLARE): the
//! scan's in-plane detail is the training data. Pairs imitate the thick axis along an in-plane
//! axis ([`pairs`]); a 2D network (planar 3x3 kernels, see `SrNetConfig::planar`) learns them
//! ([`learn`], burn); it is then run over the scan's through-plane planes in both in-plane
//! orientations, and the two results are averaged (`pipeline::prepare` with an adapted card).
//!
//! Why 2D: the pairs are sharp along the axis that stays in plane and *thick along the third
//! axis* (the real slice axis), while the scan's through-plane planes are sharp along both
//! in-plane axes. A 3D kernel would learn from neighbours along the thick axis that it then
//! meets sharp: a domain gap the planar network does not have (ARCHITECTURE.md: a 3D network
//! learning from stacks of pairs scored 0.18 dB lower on the knee at x2 and learned 3x slower).

pub mod pairs;

#[cfg(feature = "nn")]
pub mod learn;

use serde::{Deserialize, Serialize};

use crate::degrade::{Degradation, SliceProfile};
use crate::model::card::{ModelCard, SrNetConfig};
use crate::resample::Method;
use crate::scan::ScanGeometry;
use crate::{Result, Volume};

/// What is learned: a scan's geometry and the factor to reach.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub geometry: ScanGeometry,
    /// Output slices per input slice (any value above 1).
    pub factor: f64,
    /// The interpolator that puts thick slices on the output grid (the network's input): the
    /// generic model's (Keys cubic), so learning starts from weights that know its input.
    pub baseline: Method,
}

impl Task {
    /// The task for `v`: its geometry (see [`ScanGeometry::of`]) and `factor` (default: the
    /// geometry's).
    pub fn for_scan(
        v: &Volume,
        factor: Option<f64>,
        thickness_mm: Option<f64>,
        profile: SliceProfile,
    ) -> Result<Self> {
        let geometry = ScanGeometry::of(v, thickness_mm, profile)?;
        let factor = match factor {
            Some(f) => geometry.check_factor(f)?,
            None => geometry.default_factor(),
        };
        Ok(Task {
            geometry,
            factor,
            // Keys cubic: what the generic network that learning starts from was trained on
            // (its degradation's baseline; tested). With the cubic B-spline, the stronger
            // spline alone, the learned network scored 0.08 dB (knee x2) to 0.11 dB (knee x4)
            // lower.
            baseline: Method::Cubic,
        })
    }

    /// Output slice spacing (mm) for `n` input slices.
    pub fn output_spacing(&self, n: usize) -> f64 {
        n as f64 * self.geometry.slice_spacing()
            / ScanGeometry::output_slices(n, self.factor) as f64
    }
}

/// What a weight file learned from a scan records about it (in its model card).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Adaptation {
    /// The series it learned from: description and source.
    pub series: String,
    pub task: Task,
    pub steps: u64,
    /// Mean loss on a fixed set of pairs before and after (normalised intensities, MSE).
    pub pair_loss_before: f64,
    pub pair_loss_after: f64,
    /// Whether it started from the published generic weights (else from scratch).
    pub started_from: Option<String>,
    pub seconds: f64,
}

impl Adaptation {
    /// "x4.00 (1.50 -> 0.38 mm), 0.31 x 0.31 x 1.50 mm ..., 400 steps, pair MSE 0.0120 -> 0.0061".
    pub fn describe(&self) -> String {
        let s = self.task.geometry.slice_spacing();
        format!(
            "{} ({}): x{:.2} ({s:.2} -> {:.2} mm), {} steps, pair MSE {:.5} -> {:.5}",
            self.series,
            self.task.geometry.describe(),
            self.task.factor,
            s / self.task.factor,
            self.steps,
            self.pair_loss_before,
            self.pair_loss_after
        )
    }
}

/// The network shape learned per scan by default: the `fast` preset's blocks and channels with
/// planar kernels (9 taps: a third of the work of the 3D network per voxel, and both
/// orientations together cost two thirds).
pub fn network() -> SrNetConfig {
    network_for(crate::model::card::Preset::Fast)
}

/// A preset's blocks and channels with planar kernels (`seed`: for a GPU).
pub fn network_for(preset: crate::model::card::Preset) -> SrNetConfig {
    SrNetConfig {
        planar: true,
        ..preset.config()
    }
}

/// A model card for weights learned per `adaptation`.
pub fn card(net: SrNetConfig, adaptation: Adaptation) -> ModelCard {
    let f = adaptation.task.factor.round().max(2.0) as usize;
    let mut card = ModelCard::new(
        format!("learned from {}", adaptation.series),
        net,
        Degradation::ThickSlices {
            factor: [f, 1, 1],
            profile: adaptation.task.geometry.profile,
        },
    );
    card.steps = adaptation.steps;
    card.train_data = vec![adaptation.series.clone()];
    card.started_from = adaptation.started_from.clone();
    card.adapted = Some(adaptation);
    card
}

/// Whether weights of shape `net` can start a scan's learning ([`planar_from_generic`]): the
/// 3D network with the learned network's blocks and channels.
pub fn can_start_from(net: &SrNetConfig) -> bool {
    let want = network();
    !net.planar && net.blocks == want.blocks && net.channels == want.channels
}

/// The generic 3D weights (`fast` shape) as a planar network's weights: the starting point of
/// a scan's learning. The generic network undoes thick slices along its axis 2 and is the same
/// along its axes 0 and 1; each 3x3x3 kernel is summed over its axis 0 (the network applied to
/// content constant along that axis) and turned so its axis 2 becomes the planar network's
/// axis 0. The result computes, away from the edges, what the 3D network computes on such
/// content.
pub fn planar_from_generic(name: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    use crate::engine::net::tensor;
    let card = crate::model::card::read_card(name, bytes)?;
    let bad = |reason: String| crate::Error::Weights {
        path: name.into(),
        reason,
    };
    let cfg = network();
    if !can_start_from(&card.net) {
        return Err(bad(format!(
            "a {} network cannot start a scan's learning (expected the fast 3D shape, {})",
            card.net.describe(),
            SrNetConfig {
                planar: false,
                ..cfg
            }
            .describe()
        )));
    }
    let file = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
    let c = cfg.channels;
    let mut convs = vec![("head".to_string(), 1, c)];
    for b in 0..cfg.blocks {
        convs.push((format!("blocks.{b}.conv1"), c, c));
        convs.push((format!("blocks.{b}.conv2"), c, c));
    }
    convs.push(("body".into(), c, c));
    convs.push(("tail".into(), c, 1));
    let mut out: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    for (prefix, cin, cout) in convs {
        let w = tensor(&file, &format!("{prefix}.weight"), &[cout, cin, 3, 3, 3]).map_err(&bad)?;
        let b = tensor(&file, &format!("{prefix}.bias"), &[cout]).map_err(&bad)?;
        // w[.][.][dz][dy][dx] -> p[.][.][0][dy][dz] = sum over dx.
        let mut p = vec![0f32; cout * cin * 9];
        for (kernel, planar) in w.chunks_exact(27).zip(p.chunks_exact_mut(9)) {
            for dz in 0..3 {
                for dy in 0..3 {
                    planar[dy * 3 + dz] = (0..3).map(|dx| kernel[(dz * 3 + dy) * 3 + dx]).sum();
                }
            }
        }
        out.push((format!("{prefix}.weight"), vec![cout, cin, 1, 3, 3], p));
        out.push((format!("{prefix}.bias"), vec![cout], b));
    }
    let mut planar_card = ModelCard::new(format!("{} (planar)", card.name), cfg, card.degradation);
    planar_card.started_from = Some(card.name.clone());
    let json = serde_json::to_string(&planar_card).expect("a model card always serialises");
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = out
        .into_iter()
        .map(|(n, shape, v)| {
            // f16 like every weight file (what the loaders expect).
            let data = v
                .iter()
                .flat_map(|&x| half::f16::from_f32(x).to_le_bytes())
                .collect();
            (n, data, shape)
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, data, shape)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F16, shape.clone(), data)
                .map(|v| (n.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| bad(format!("could not write planar weights: {e}")))?;
    let meta = std::collections::HashMap::from([(crate::model::card::CARD_KEY.to_string(), json)]);
    safetensors::serialize(views, Some(meta))
        .map_err(|e| bad(format!("could not write planar weights: {e}")))
}

#[cfg(test)]
mod tests;
