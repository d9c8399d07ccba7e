//! `cargo run -p trainer`: trains mrisr super-resolution weights; `trainer eval` measures them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Parser, Subcommand};
use trainer::train_args::{TrainArgs, TrainRun};
use trainer::{bench, eval, scan_eval};

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
    let TrainRun {
        trainer,
        train_pairs,
        val,
        resume,
    } = args.prepare()?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130); // second Ctrl-C: leave now
        }
        eprintln!("\nstopping after this step; saving a checkpoint (Ctrl-C again to quit at once)");
    })
    .context("installing the Ctrl-C handler")?;

    let state = trainer.run(&train_pairs, &val, resume, stop)?;
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
