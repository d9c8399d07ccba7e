//! `trainer train`'s flags and how they become a run: [`TrainArgs::prepare`] reads the data,
//! splits it by subject, cuts the pairs and fills in the model card, giving a [`TrainRun`]
//! whose [`Trainer`] only has to run. The flags say what they mean; the defaults that point at
//! `../shared/data` are this repository's layout, and `--help` says what to pass elsewhere.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use mrisr::degrade::Degradation;
use mrisr::model::card::{LossKind, ModelCard, Preset};

use crate::data::{self, Pair};
use crate::device::DeviceArgs;
use crate::train::{self, InitWeights, RunConfig, Trainer, ValSet};

/// The training loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Loss {
    /// Mean squared error.
    Mse,
    /// MSE + VGG16 feature distance on 2D slices along the three axes.
    Perceptual,
}

impl Loss {
    /// The loss as the card records it; `weight` is the perceptual term's.
    pub fn kind(self, weight: f32) -> LossKind {
        match self {
            Loss::Mse => LossKind::Mse,
            Loss::Perceptual => LossKind::Perceptual { weight },
        }
    }

    /// The name on the command line and in run names.
    pub fn name(self) -> &'static str {
        match self {
            Loss::Mse => "mse",
            Loss::Perceptual => "perceptual",
        }
    }
}

#[derive(Args, Clone)]
pub struct TrainArgs {
    /// NIfTI files or folders (searched recursively for NIfTI files and DICOM series). The
    /// default is this repository's data beside the clone (../shared/data); elsewhere, pass
    /// your own high-resolution volumes.
    #[arg(long, default_values = ["../shared/data/train", "../shared/data/ref"])]
    pub data: Vec<PathBuf>,
    /// Hold out for testing every subject that has a volume with this in its name.
    #[arg(long, default_values = ["subject01"])]
    pub test: Vec<String>,
    /// Validate on the subjects of these volumes (default: the smallest training subject).
    #[arg(long)]
    pub val: Vec<String>,
    /// Network size: seed (9x64, GPU), fast (4x16, CPU and browser), tiny (tests).
    #[arg(long, default_value = "fast")]
    pub preset: Preset,
    /// The training loss.
    #[arg(long, value_enum, default_value_t = Loss::Mse)]
    pub loss: Loss,
    /// Weight of the perceptual term.
    #[arg(long, default_value_t = train::PERCEPTUAL_WEIGHT)]
    pub perceptual_weight: f32,
    /// Simulated acquisition to undo, e.g. `slices:2` (x2 thicker slices along the slice axis)
    /// or `kspace:2` (x2 in-plane k-space truncation).
    #[arg(long, default_value = "slices:2")]
    pub degradation: Degradation,
    /// Edge of the cubic training blocks, in voxels.
    #[arg(long, default_value_t = 32)]
    pub block: usize,
    /// Blocks per step.
    #[arg(long, default_value_t = 4)]
    pub batch: usize,
    #[arg(long, default_value_t = 20)]
    pub epochs: usize,
    /// Optimiser steps per epoch.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Peak learning rate (Adam), decayed along a cosine to a tenth.
    #[arg(long, default_value_t = 5e-4)]
    pub lr: f64,
    /// Validation blocks (fixed for the whole run).
    #[arg(long, default_value_t = 64)]
    pub val_blocks: usize,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Run name (default: PRESET-LOSS-DEGRADATION).
    #[arg(long)]
    pub name: Option<String>,
    /// Folder for checkpoints and logs (one subfolder per run).
    #[arg(long, default_value = "runs")]
    pub runs: PathBuf,
    /// Start from these weights (same preset) instead of a fresh network: fine-tuning, e.g.
    /// perceptual after MSE, or a longer run after a short one.
    #[arg(long, value_name = "WEIGHTS")]
    pub init: Option<PathBuf>,
    /// Continue the run from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Where the best weights go (default: www/weights/NAME.safetensors, the page's folder
    /// when run from the repository's root).
    #[arg(long)]
    pub export: Option<PathBuf>,
    /// Only use a centred cube of this edge from each volume (quick experiments, tests).
    #[arg(long)]
    pub crop: Option<usize>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// A run ready to go: the trainer, its data and whether it continues from a checkpoint.
pub struct TrainRun {
    pub trainer: Trainer,
    pub train_pairs: Vec<Pair>,
    pub val: ValSet,
    pub resume: bool,
}

impl TrainArgs {
    /// `PRESET-LOSS-DEGRADATION` unless `--name` was given.
    pub fn run_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            format!(
                "{}-{}-{}",
                self.preset.name(),
                self.loss.name(),
                self.degradation.to_string().replace(':', "x")
            )
        })
    }

    /// Reads `--init` and the data, and sets up the run (printing the device and the split).
    pub fn prepare(self) -> anyhow::Result<TrainRun> {
        // Read first: a wrong --init file fails at once, not after the data has loaded.
        let init = self.init.as_deref().map(InitWeights::read).transpose()?;
        let (device, device_line) = self.device.select()?;
        eprintln!("device: {device_line}");
        let net = self.preset.config();
        let loss = self.loss.kind(self.perceptual_weight);
        let name = self.run_name();

        let mut all = data::load_all(&self.data)?;
        if let Some(edge) = self.crop {
            for n in &mut all {
                n.volume = mrisr::volume::center_crop(&n.volume, [edge; 3]);
            }
        }
        let split = data::split(all, &self.test, &self.val)?;
        let names = |v: &[data::Named]| {
            v.iter()
                .map(|n| format!("{} ({})", n.name, n.subject))
                .collect::<Vec<_>>()
        };
        eprintln!(
            "train: {:?}\nval:   {:?}\ntest:  {:?}",
            names(&split.train),
            names(&split.val),
            names(&split.test)
        );
        let train_pairs = data::make_pairs(&split.train, &self.degradation, self.block);
        // Without a validation subject, validate on the training pairs (said so in the log).
        let val_pairs = data::make_pairs(&split.val, &self.degradation, self.block);
        anyhow::ensure!(
            !train_pairs.is_empty(),
            "no training volume is at least {} voxels along every axis",
            self.block
        );
        let val_source = if val_pairs.is_empty() {
            eprintln!("warning: no validation subject; validating on training volumes");
            &train_pairs
        } else {
            &val_pairs
        };
        let val = ValSet::new(val_source, self.block, self.val_blocks, self.seed + 1);

        let mut card = ModelCard::new(&name, net, self.degradation.clone());
        card.loss = loss.clone();
        card.block = self.block;
        card.train_data = split.train.iter().map(|n| n.name.clone()).collect();
        card.started_from = init.as_ref().map(InitWeights::describe);
        card.held_out = split
            .val
            .iter()
            .chain(&split.test)
            .map(|n| n.name.clone())
            .collect();

        let export = self
            .export
            .unwrap_or_else(|| PathBuf::from(format!("www/weights/{name}.safetensors")));
        let trainer = Trainer {
            cfg: RunConfig {
                name: name.clone(),
                net,
                loss,
                block: self.block,
                batch: self.batch,
                steps_per_epoch: self.steps,
                epochs: self.epochs,
                lr: self.lr,
                seed: self.seed,
            },
            device,
            dir: self.runs.join(&name),
            card_template: card,
            export: Some(export),
            init,
        };
        Ok(TrainRun {
            trainer,
            train_pairs,
            val,
            resume: self.resume,
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        train: TrainArgs,
    }

    #[test]
    fn losses_are_a_closed_choice() {
        let cli = Cli::try_parse_from(["t", "--loss", "perceptual"]).unwrap();
        assert_eq!(cli.train.loss, Loss::Perceptual);
        assert_eq!(
            cli.train.loss.kind(0.5),
            LossKind::Perceptual { weight: 0.5 }
        );
        assert_eq!(cli.train.run_name(), "fast-perceptual-slicesx2");
        let err = Cli::try_parse_from(["t", "--loss", "ssim"]).err().unwrap();
        assert!(
            err.to_string()
                .contains("[possible values: mse, perceptual]"),
            "{err}"
        );
    }
}
