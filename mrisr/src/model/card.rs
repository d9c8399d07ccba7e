//! The model card: what a weight file says about itself (architecture, degradation it undoes,
//! data, metrics, version). Stored inside the weight file and checked on load. No burn here, so
//! the page and the CLI can read it without building the network.

use serde::{Deserialize, Serialize};

use crate::degrade::{Degradation, SliceProfile};

/// Named network sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// 9 blocks x 64 channels: the seed experiment's network. Wants a GPU to train.
    Seed,
    /// 4 blocks x 16 channels: trains on two CPU cores, runs in a browser without a big GPU.
    Fast,
    /// 1 block x 4 channels: for tests only.
    Tiny,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Seed, Preset::Fast, Preset::Tiny];

    pub fn config(self) -> SrNetConfig {
        match self {
            Preset::Seed => SrNetConfig {
                blocks: 9,
                channels: 64,
                residual_scale: 0.1,
                planar: false,
            },
            Preset::Fast => SrNetConfig {
                blocks: 4,
                channels: 16,
                residual_scale: 0.2,
                planar: false,
            },
            Preset::Tiny => SrNetConfig {
                blocks: 1,
                channels: 4,
                residual_scale: 1.0,
                planar: false,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Seed => "seed",
            Preset::Fast => "fast",
            Preset::Tiny => "tiny",
        }
    }
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown preset '{s}' (expected seed, fast or tiny)"))
    }
}

/// Shape of the network. Serialised into the model card, so a weight file says how to build
/// the network that reads it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SrNetConfig {
    /// Residual blocks (two convolutions each).
    pub blocks: usize,
    /// Feature channels inside the network.
    pub channels: usize,
    /// Scale of each block's residual before it is added (EDSR uses 0.1 for deep nets; it keeps
    /// early training stable).
    pub residual_scale: f32,
    /// 3x3 kernels within the planes of the network's axes 0 and 1 instead of 3x3x3: a 2D
    /// network run on every plane along axis 2 (the networks learned from a scan itself, see
    /// `adapt`). Stored in the weight file as `[cout, cin, 1, 3, 3]`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub planar: bool,
}

impl SrNetConfig {
    /// Taps of one kernel: 27, or 9 for a planar network.
    pub fn taps(&self) -> usize {
        if self.planar { 9 } else { 27 }
    }

    /// Kernel shape `[depth (axis 2), height (axis 1), width (axis 0)]` as burn and the weight
    /// file have it.
    pub fn kernel(&self) -> [usize; 3] {
        if self.planar { [1, 3, 3] } else { [3, 3, 3] }
    }

    /// Number of 3x3x3 convolutions on the longest path (head + 2 per block + body + tail).
    pub fn depth(&self) -> usize {
        2 * self.blocks + 3
    }

    /// How far (in voxels) an output voxel sees into its input: one voxel per convolution.
    /// Tiles overlapping by this much give the same result as the whole volume at once.
    pub fn receptive_radius(&self) -> usize {
        self.depth()
    }

    /// Trainable parameters.
    pub fn parameters(&self) -> usize {
        let c = self.channels;
        let conv = |cin: usize, cout: usize| cin * cout * self.taps() + cout;
        conv(1, c) + self.blocks * 2 * conv(c, c) + conv(c, c) + conv(c, 1)
    }

    /// Multiply-accumulates per output voxel (a throughput yardstick for benchmarks).
    pub fn macs_per_voxel(&self) -> usize {
        let c = self.channels;
        self.taps() * (c + self.blocks * 2 * c * c + c * c + c)
    }
}

/// Which loss the weights were trained with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LossKind {
    Mse,
    /// MSE + `weight` x VGG16 feature distance on 2D slices along the three axes.
    Perceptual {
        weight: f32,
    },
}

/// Quality on held-out data, next to the cubic baseline it has to beat.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CardMetrics {
    pub psnr_db: f64,
    pub ssim: f64,
    pub baseline_psnr_db: f64,
    pub baseline_ssim: f64,
    /// What the numbers were computed on (volumes, blocks).
    pub on: String,
}

/// Everything a weight file says about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Format version of the card (bumped on incompatible changes).
    pub format: u32,
    pub name: String,
    pub preset: Option<Preset>,
    pub net: SrNetConfig,
    /// The acquisition the network undoes: applied to a high-res volume it gives the network's
    /// kind of input, and its `upsample` method puts a real low-res input on the target grid.
    pub degradation: Degradation,
    pub loss: LossKind,
    /// Volumes trained on, and those held out.
    pub train_data: Vec<String>,
    pub held_out: Vec<String>,
    pub steps: u64,
    /// The weights this run started from (`trainer --init`): their name and steps, or none when
    /// it started from scratch. `steps` counts only this run's steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_from: Option<String>,
    pub block: usize,
    pub metrics: Option<CardMetrics>,
    /// mrisr version that wrote the file.
    pub mrisr_version: String,
    /// Free text: licence of the weights, caveats ("not for diagnosis").
    pub notes: String,
    /// Weights learned from one scan itself (`adapt`): the series, its geometry and factor,
    /// and how the learning went. Such a network is planar and runs per `adapt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapted: Option<crate::adapt::Adaptation>,
}

impl ModelCard {
    pub const FORMAT: u32 = 1;

    pub fn new(name: impl Into<String>, net: SrNetConfig, degradation: Degradation) -> Self {
        Self {
            format: Self::FORMAT,
            name: name.into(),
            preset: Preset::ALL.into_iter().find(|p| p.config() == net),
            net,
            degradation,
            loss: LossKind::Mse,
            train_data: Vec::new(),
            held_out: Vec::new(),
            steps: 0,
            started_from: None,
            block: 32,
            metrics: None,
            mrisr_version: env!("CARGO_PKG_VERSION").to_string(),
            notes: "Research use only; not for diagnosis.".to_string(),
            adapted: None,
        }
    }
}

/// Metadata key of the card JSON inside a weight file (a safetensors file).
pub const CARD_KEY: &str = "mrisr.card";

/// Reads the model card out of a weight file without building the network.
///
/// `name` is only used in error messages.
pub fn read_card(name: &str, bytes: &[u8]) -> crate::Result<ModelCard> {
    let bad = |reason: String| crate::Error::Weights {
        path: name.into(),
        reason,
    };
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| {
        bad(format!(
            "not an mrisr weight file (safetensors header: {e})"
        ))
    })?;
    let json = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get(CARD_KEY))
        .ok_or_else(|| bad("a safetensors file, but without an mrisr model card".into()))?;
    let card: ModelCard =
        serde_json::from_str(json).map_err(|e| bad(format!("model card is not readable: {e}")))?;
    if card.format != ModelCard::FORMAT {
        return Err(bad(format!(
            "model card format {} (this mrisr reads format {})",
            card.format,
            ModelCard::FORMAT
        )));
    }
    if card.net.blocks == 0
        || card.net.channels == 0
        || card.net.channels > 1024
        || card.net.blocks > 256
    {
        return Err(bad(format!("implausible network shape {:?}", card.net)));
    }
    Ok(card)
}

impl SrNetConfig {
    /// "4 blocks x 16 channels, 33k parameters".
    pub fn describe(&self) -> String {
        format!(
            "{}{} blocks x {} channels, {}k parameters",
            if self.planar { "2D, " } else { "" },
            self.blocks,
            self.channels,
            self.parameters() / 1000
        )
    }
}

impl Degradation {
    /// What the acquisition did, in words ("slices 2x thicker (box profile)").
    pub fn in_words(&self) -> String {
        let axes = |f: &[usize; 3]| {
            let along: Vec<_> = (0..3)
                .filter(|&a| f[a] > 1)
                .map(|a| format!("{}x along {}", f[a], ["i", "j", "k"][a]))
                .collect();
            along.join(", ")
        };
        match self {
            Degradation::ThickSlices { factor, profile } => {
                let profile = match profile {
                    SliceProfile::Box => "box",
                    SliceProfile::Gaussian => "Gaussian",
                };
                let n = factor.iter().max().copied().unwrap_or(1);
                format!("slices {n}x thicker ({profile} profile)")
            }
            Degradation::KSpaceTruncation { factor } => {
                let n = factor.iter().max().copied().unwrap_or(1);
                format!("a {n}x smaller matrix (k-space cut {})", axes(factor))
            }
            Degradation::GaussianBlur { axis, fwhm_mm } => {
                format!(
                    "a blur of {fwhm_mm} mm (FWHM) along {}",
                    ["i", "j", "k"][*axis % 3]
                )
            }
            Degradation::Chain { steps } => steps
                .iter()
                .map(Degradation::in_words)
                .collect::<Vec<_>>()
                .join(", then "),
        }
    }
}

impl ModelCard {
    /// What a person asks of a model, as (question, answer) rows: what it undoes, its network,
    /// what it learned from, how it measured against cubic. The CLI (`mrisr models`) and the
    /// page show these.
    pub fn summary(&self) -> Vec<(&'static str, String)> {
        let loss = match &self.loss {
            LossKind::Mse => "MSE".to_string(),
            LossKind::Perceptual { weight } => format!("MSE + {weight} x VGG16 perceptual"),
        };
        let mut rows = vec![
            ("Undoes", self.degradation.in_words()),
            ("Network", self.net.describe()),
        ];
        if !self.train_data.is_empty() {
            rows.push((
                "Trained on",
                format!(
                    "{} ({} steps, {loss})",
                    self.train_data.join(", "),
                    self.steps
                ),
            ));
        }
        if let Some(a) = &self.adapted {
            rows[0] = (
                "Undoes",
                format!(
                    "slices {:.2} mm thick every {:.2} mm ({:?} profile), to {:.2} mm",
                    a.task.geometry.thickness_mm,
                    a.task.geometry.slice_spacing(),
                    a.task.geometry.profile,
                    a.task.geometry.slice_spacing() / a.task.factor
                ),
            );
            rows.push(("Learned from", a.describe()));
        }
        if let Some(m) = &self.metrics {
            rows.push((
                "Measured",
                format!(
                    "{:+.2} dB PSNR over cubic (SSIM {:.3} vs {:.3}) on {}",
                    m.psnr_db - m.baseline_psnr_db,
                    m.ssim,
                    m.baseline_ssim,
                    m.on
                ),
            ));
        }
        rows
    }
}

#[cfg(test)]
mod summary_tests {
    use super::*;

    #[test]
    fn a_card_in_words() {
        let mut card = ModelCard::new("m", Preset::Fast.config(), "slices:2".parse().unwrap());
        card.train_data = vec!["a".into(), "b".into()];
        card.steps = 600;
        card.metrics = Some(CardMetrics {
            psnr_db: 31.5,
            ssim: 0.95,
            baseline_psnr_db: 30.25,
            baseline_ssim: 0.94,
            on: "validation blocks".into(),
        });
        let rows = card.summary();
        let row = |k: &str| rows.iter().find(|(q, _)| *q == k).unwrap().1.clone();
        assert_eq!(row("Undoes"), "slices 2x thicker (box profile)");
        assert_eq!(row("Network"), "4 blocks x 16 channels, 63k parameters");
        assert_eq!(row("Trained on"), "a, b (600 steps, MSE)");
        assert!(row("Measured").starts_with("+1.25 dB PSNR over cubic (SSIM 0.950 vs 0.940)"));
        let k: Degradation = "kspace:2".parse().unwrap();
        assert_eq!(
            k.in_words(),
            "a 2x smaller matrix (k-space cut 2x along i, 2x along j)"
        );
    }
}
