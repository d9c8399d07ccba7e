//! `cargo run -p trainer`: trains mrisr super-resolution weights; `trainer eval` measures them.

use trainer::{bench, data, device, eval, scan_eval, train};

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use mrisr::degrade::Degradation;
use mrisr::model::card::{ModelCard, Preset};

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "Train and evaluate mrisr super-resolution weights"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Train weights (the default when no subcommand is given).
    Train(TrainArgs),
    /// Per-volume PSNR, SSIM and HFEN of cubic vs. one or more weight files, with figures.
    Eval(eval::EvalArgs),
    /// Inference and training throughput per preset on one backend, next to tricubic (markdown).
    Bench(bench::BenchArgs),
    /// Learning from the scan itself vs. Keys cubic, cubic B-spline and the generic model, on
    /// simulated thick slices (x2, x4) of high-resolution volumes, with figures.
    EvalScan(scan_eval::ScanEvalArgs),
}

#[derive(Args, Clone)]
struct TrainArgs {
    /// NIfTI files or folders (searched recursively for NIfTI files and DICOM series).
    #[arg(long, default_values = ["../shared/data/train", "../shared/data/ref"])]
    data: Vec<PathBuf>,
    /// Hold out for testing every subject that has a volume with this in its name.
    #[arg(long, default_values = ["subject01"])]
    test: Vec<String>,
    /// Validate on the subjects of these volumes (default: the smallest training subject).
    #[arg(long)]
    val: Vec<String>,
    /// Network size: seed (9x64, GPU), fast (4x16, CPU and browser), tiny (tests).
    #[arg(long, default_value = "fast")]
    preset: Preset,
    /// Loss: mse, or perceptual (MSE + VGG16 features on 2D slices along the three axes).
    #[arg(long, default_value = "mse", value_parser = ["mse", "perceptual"])]
    loss: String,
    /// Weight of the perceptual term.
    #[arg(long, default_value_t = train::PERCEPTUAL_WEIGHT)]
    perceptual_weight: f32,
    /// Simulated acquisition to undo, e.g. `slices:2` (x2 thicker slices along the slice axis)
    /// or `kspace:2` (x2 in-plane k-space truncation).
    #[arg(long, default_value = "slices:2")]
    degradation: Degradation,
    /// Edge of the cubic training blocks, in voxels.
    #[arg(long, default_value_t = 32)]
    block: usize,
    /// Blocks per step.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Optimiser steps per epoch.
    #[arg(long, default_value_t = 200)]
    steps: usize,
    /// Peak learning rate (Adam), decayed along a cosine to a tenth.
    #[arg(long, default_value_t = 5e-4)]
    lr: f64,
    /// Validation blocks (fixed for the whole run).
    #[arg(long, default_value_t = 64)]
    val_blocks: usize,
    #[arg(long, value_enum, default_value = "auto")]
    backend: device::BackendChoice,
    /// Run name (default: PRESET-LOSS-DEGRADATION).
    #[arg(long)]
    name: Option<String>,
    /// Folder for checkpoints and logs (one subfolder per run).
    #[arg(long, default_value = "runs")]
    runs: PathBuf,
    /// Start from these weights (same preset) instead of a fresh network: fine-tuning, e.g.
    /// perceptual after MSE, or a longer run after a short one.
    #[arg(long, value_name = "WEIGHTS")]
    init: Option<PathBuf>,
    /// Continue the run from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Where the best weights go (default: www/weights/NAME.safetensors).
    #[arg(long)]
    export: Option<PathBuf>,
    /// Only use a centred cube of this edge from each volume (quick experiments, tests).
    #[arg(long)]
    crop: Option<usize>,
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        Some(Command::EvalScan(args)) => scan_eval::run(args),
        Some(Command::Train(args)) => train(args),
        None => train(cli.train),
    }
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    // Read first: a wrong --init file fails at once, not after the data has loaded.
    let init = args
        .init
        .as_deref()
        .map(train::InitWeights::read)
        .transpose()?;
    let (device, device_line) = device::select(args.backend)?;
    eprintln!("device: {device_line}");
    let net = args.preset.config();
    let loss = train::loss_kind(&args.loss, args.perceptual_weight);
    let name = args.name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}-{}",
            args.preset.name(),
            args.loss,
            args.degradation.to_string().replace(':', "x")
        )
    });

    let mut all = data::load_all(&args.data)?;
    if let Some(edge) = args.crop {
        for n in &mut all {
            n.volume = mrisr::volume::center_crop(&n.volume, [edge; 3]);
        }
    }
    let split = data::split(all, &args.test, &args.val)?;
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
    let train_pairs = data::make_pairs(&split.train, &args.degradation, args.block);
    // Without a validation subject, validate on the training pairs (said so in the log).
    let val_pairs = data::make_pairs(&split.val, &args.degradation, args.block);
    let val_source = if val_pairs.is_empty() {
        &train_pairs
    } else {
        &val_pairs
    };
    anyhow::ensure!(
        !train_pairs.is_empty(),
        "no training volume is at least {} voxels along every axis",
        args.block
    );
    if val_pairs.is_empty() {
        eprintln!("warning: no validation subject; validating on training volumes");
    }
    let val = train::ValSet::new(val_source, args.block, args.val_blocks, args.seed + 1);

    let mut card = ModelCard::new(&name, net, args.degradation.clone());
    card.loss = loss.clone();
    card.block = args.block;
    card.train_data = split.train.iter().map(|n| n.name.clone()).collect();
    card.started_from = init.as_ref().map(train::InitWeights::describe);
    card.held_out = split
        .val
        .iter()
        .chain(&split.test)
        .map(|n| n.name.clone())
        .collect();

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130); // second Ctrl-C: leave now
        }
        eprintln!("\nstopping after this step; saving a checkpoint (Ctrl-C again to quit at once)");
    })
    .context("installing the Ctrl-C handler")?;

    let trainer = train::Trainer {
        cfg: train::RunConfig {
            name: name.clone(),
            net,
            loss,
            block: args.block,
            batch: args.batch,
            steps_per_epoch: args.steps,
            epochs: args.epochs,
            lr: args.lr,
            seed: args.seed,
        },
        device,
        dir: args.runs.join(&name),
        card_template: card,
        export: Some(
            args.export
                .unwrap_or_else(|| PathBuf::from(format!("www/weights/{name}.safetensors"))),
        ),
        init,
    };
    let state = trainer.run(&train_pairs, &val, args.resume, stop)?;
    if let (Some(best), Some(base)) = (state.best_val_psnr, state.baseline_val_psnr)
        && best <= base
    {
        eprintln!(
            "warning: the network never beat the baseline on validation ({best:.2} vs {base:.2} \
             dB): train longer, or check the data and --degradation before using these weights"
        );
    }
    eprintln!(
        "done: {} steps, best validation PSNR {:.2} dB; run folder {}",
        state.step,
        state.best_val_psnr.unwrap_or(f64::NAN),
        trainer.dir.display()
    );
    Ok(())
}
