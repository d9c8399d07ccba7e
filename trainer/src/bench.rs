//! `trainer bench`: inference and training throughput per preset on one backend, next to the
//! tricubic upsampling every result starts from, measured side by side in one run on a crop
//! of the real knee. Prints a markdown table for BENCHMARKS.md.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::Device;
use clap::Args;
use mrisr::args::TileArgs;
use mrisr::degrade::Degradation;
use mrisr::infer::{TileOptions, block_on, run_tiled};
use mrisr::model::card::{Preset, SrNetConfig};
use mrisr::normalize::Normalization;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::data::{Named, make_pairs};
use crate::device::DeviceArgs;
use crate::perceptual::Vgg16Features;
use crate::train::{PERCEPTUAL_WEIGHT, batch, training_loss};
use crate::train_args::Loss;

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// High-resolution volume to crop from (NIfTI). The default is the knee in this
    /// repository's data beside the clone (../shared/data); elsewhere, pass any isotropic scan.
    #[arg(long, default_value = "../shared/data/ref/knee_dess_echo1.nii.gz")]
    volume: PathBuf,
    /// Edge of the centred crop that is super-resolved (its voxels are the output voxels).
    #[arg(long, default_value_t = 64)]
    edge: usize,
    #[arg(long, value_delimiter = ',', default_value = "tiny,fast,seed")]
    presets: Vec<Preset>,
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "mse,perceptual"
    )]
    losses: Vec<Loss>,
    /// Timed repetitions of each inference (after one untimed warm-up); the median is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Timed training steps (after two untimed warm-up steps).
    #[arg(long, default_value_t = 5)]
    train_steps: usize,
    /// Training block edge and batch.
    #[arg(long, default_value_t = 32)]
    block: usize,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[command(flatten)]
    tiles: TileArgs,
    /// The device's peak dense FP32 TFLOP/s, to print the fraction of it reached.
    #[arg(long)]
    peak_tflops: Option<f64>,
    #[command(flatten)]
    device: DeviceArgs,
    /// A Python with PyTorch: runs the PyTorch peer (`--peer`) on the same presets, edge,
    /// block and batch in the same run, and prints its rows and the ratios.
    #[arg(long)]
    torch_python: Option<PathBuf>,
    /// The PyTorch peer script: the default is this repository's (../shared/tools beside the
    /// clone); elsewhere, pass the path of peer_torch.py.
    #[arg(long, default_value = "../shared/tools/peers/peer_torch.py")]
    peer: PathBuf,
    /// Device for the PyTorch peer (cpu or cuda).
    #[arg(long, default_value = "cpu")]
    peer_device: String,
}

/// What the PyTorch peer printed: inference output voxels/s and training samples/s.
struct PeerFigures {
    voxels_per_s: f64,
    samples_per_s: f64,
    line: String,
}

/// Runs the PyTorch peer on `cfg`'s shape and reads its two figures.
fn torch_peer(
    args: &BenchArgs,
    python: &std::path::Path,
    cfg: &mrisr::model::SrNetConfig,
) -> anyhow::Result<PeerFigures> {
    let out = std::process::Command::new(python)
        .arg(&args.peer)
        .args(["--device", &args.peer_device])
        .args(["--cube", &args.edge.to_string()])
        .args(["--blocks", &cfg.blocks.to_string()])
        .args(["--channels", &cfg.channels.to_string()])
        .args(["--batch", &args.batch.to_string()])
        .args(["--iters", &args.repeat.max(args.train_steps).to_string()])
        .output()
        .with_context(|| format!("running {} {}", python.display(), args.peer.display()))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "the PyTorch peer failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    // "inference 64^3: 195 ms, 1.344 Mvox/s" and "training 32^3 batch 4: 287 ms/step, 13.93 samples/s"
    let number_before = |line: &str, unit: &str| -> Option<f64> {
        line.split(unit)
            .next()?
            .split_whitespace()
            .last()?
            .parse()
            .ok()
    };
    let find = |prefix: &str, unit: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| number_before(l, unit))
            .with_context(|| format!("no '{prefix} ... {unit}' line in the peer's output: {text}"))
    };
    Ok(PeerFigures {
        voxels_per_s: find("inference", "Mvox/s")? * 1e6,
        samples_per_s: find("training", "samples/s")?,
        line: text.lines().next().unwrap_or_default().to_string(),
    })
}

/// What runs the network in burn on this device: on the CPU, mrisr's kernels inside burn
/// (`mrisr::model::cpu_conv`) unless `MRISR_BURN_CONV=1` or the channels do not suit them.
fn convolutions(device: &Device, cfg: SrNetConfig) -> &'static str {
    if *device == Device::flex() && mrisr::model::cpu_conv::takes(cfg.channels) {
        "burn + mrisr kernels"
    } else {
        "burn"
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.repeat > 0 && args.train_steps > 0,
        "--repeat and --train-steps must be > 0"
    );
    // Checked before anything is timed, not after the inference rows.
    anyhow::ensure!(
        args.edge >= args.block,
        "--edge {} is smaller than --block {}: no training block fits in the crop",
        args.edge,
        args.block
    );
    let (device, line) = args.device.select()?;
    let hr = mrisr::io::nifti::read_nifti_volume(&args.volume)
        .with_context(|| format!("reading {}", args.volume.display()))?;
    let deg: Degradation = "slices:2".parse().expect("a valid degradation");
    let crop = deg.crop_to_multiple(&mrisr::volume::center_crop(&hr, [args.edge; 3]));
    deg.validate(crop.dims).map_err(|e| {
        anyhow::anyhow!(
            "{}: a {:?}-voxel crop cannot be degraded ({deg}): {e}",
            args.volume.display(),
            crop.dims
        )
    })?;
    let lowres = deg.apply(&crop);
    let voxels = crop.len() as f64;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "device: {line}; {cores} CPU threads; input {} -> output {} voxels ({}), {}",
        lowres.dims.map(|d| d.to_string()).join("x"),
        crop.dims.map(|d| d.to_string()).join("x"),
        deg,
        args.volume.display()
    );

    // The baseline every result starts from: the cubic upsampling of the low-res input.
    let cubic = median(
        (0..args.repeat + 1)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(deg.upsample(&lowres));
                t.elapsed().as_secs_f64()
            })
            .skip(1)
            .collect(),
    );
    let up = deg.upsample(&lowres);
    let input = Normalization::for_network(&up).apply(&up);

    // The "of peak" column only when the peak is known.
    let peak_cell = |text: &str| match args.peak_tflops {
        Some(_) => format!(" {text} |"),
        None => String::new(),
    };
    let peak = |gflops: f64| match args.peak_tflops {
        Some(p) => peak_cell(&format!("{:.1} %", gflops / (p * 1e3) * 100.0)),
        None => String::new(),
    };
    println!(
        "\n| what | preset | output voxels/s | time vs. cubic | GFLOP/s |{}",
        peak_cell("of peak")
    );
    println!("| --- | --- | --- | --- | --- |{}", peak_cell("---"));
    println!(
        "| tricubic upsampling | - | {:.0} | 1.00 | - |{}",
        voxels / cubic,
        peak_cell("-")
    );
    let mut engine_rates = Vec::new();
    let mut peers = Vec::new();
    let mut train_rates = Vec::new();
    for preset in &args.presets {
        let cfg = preset.config();
        // Random (not zero) tail: the work is the same, and nothing can be skipped.
        let net = cfg.init_with(&device, false);
        let opts = TileOptions::for_net(&cfg, args.tiles.max_tile_voxels);
        let times: Vec<f64> = (0..args.repeat + 1)
            .map(|_| {
                let t = Instant::now();
                block_on(run_tiled(&net, &input, opts, &device, &mut |_| true))?;
                Ok(t.elapsed().as_secs_f64())
            })
            .collect::<anyhow::Result<_>>()?;
        let t = median(times[1..].to_vec());
        let gflops = 2.0 * cfg.macs_per_voxel() as f64 * voxels / t / 1e9;
        println!(
            "| inference, {} (tiled) | {} | {:.0} | {:.1} | {:.1} |{}",
            convolutions(&device, cfg),
            preset.name(),
            voxels / t,
            t / cubic,
            gflops,
            peak(gflops)
        );
        // The same network (weights written and read back) on mrisr's CPU engine.
        let card = mrisr::model::ModelCard::new(preset.name(), cfg, deg.clone());
        let bytes = mrisr::model::weights::save(&net, &card)?;
        let (cpu, _) = mrisr::engine::CpuNet::from_weight_file("bench", &bytes)?;
        let plan =
            mrisr::engine::ColumnPlan::for_budget(&cpu, input.dims, args.tiles.memory_bytes());
        let work = plan.work(&cpu, input.dims);
        let times: Vec<f64> = (0..args.repeat + 1)
            .map(|_| {
                let t = Instant::now();
                mrisr::engine::run(&cpu, &input, plan, &mut |_| true)?;
                Ok(t.elapsed().as_secs_f64())
            })
            .collect::<anyhow::Result<_>>()?;
        let t = median(times[1..].to_vec());
        let gflops = 2.0 * cfg.macs_per_voxel() as f64 * voxels / t / 1e9;
        engine_rates.push((preset.name(), voxels / t));
        println!(
            "| inference, mrisr CPU engine (computed/needed {:.2}) | {} | {:.0} | {:.1} | {:.1} |{}",
            work.computed as f64 / work.needed as f64,
            preset.name(),
            voxels / t,
            t / cubic,
            gflops,
            peak(gflops)
        );
        if let Some(python) = &args.torch_python {
            let f = torch_peer(&args, python, &cfg)?;
            let gflops = 2.0 * cfg.macs_per_voxel() as f64 * f.voxels_per_s / 1e9;
            println!(
                "| inference, PyTorch ({}) | {} | {:.0} | {:.1} | {:.1} |{}",
                f.line,
                preset.name(),
                f.voxels_per_s,
                (1.0 / f.voxels_per_s) / (cubic / voxels),
                gflops,
                peak(gflops)
            );
            peers.push((preset.name(), f));
        }
    }

    // Training: samples (blocks) per second, MSE and MSE + VGG16 perceptual.
    let named = vec![Named {
        name: "bench".into(),
        subject: "bench".into(),
        volume: crop.clone(),
    }];
    let pairs = make_pairs(&named, &deg, args.block);
    anyhow::ensure!(
        !pairs.is_empty(),
        "{}: no {}³ block of tissue in the {:?}-voxel crop",
        args.volume.display(),
        args.block,
        crop.dims
    );
    let ad = device.clone().autodiff();
    let vgg = if args.losses.contains(&Loss::Perceptual) {
        Some(Vgg16Features::load(&ad)?)
    } else {
        None
    };
    for preset in &args.presets {
        for &loss in &args.losses {
            let loss_kind = loss.kind(PERCEPTUAL_WEIGHT);
            let cfg = preset.config();
            let mut net = cfg.init_with(&ad, false);
            let mut optim = AdamConfig::new().init();
            let mut rng = StdRng::seed_from_u64(7);
            let mut t0 = Instant::now();
            for step in 0..args.train_steps + 2 {
                if step == 2 {
                    t0 = Instant::now();
                }
                let (x, y) = batch(&pairs, args.block, args.batch, &mut rng, false, &ad);
                let loss = training_loss(&net, x, y, &loss_kind, vgg.as_ref());
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                net = optim.step(1e-4, net, grads);
                // Reading the loss back waits for the device, so each step is timed in full.
                std::hint::black_box(loss.into_scalar::<f32>());
            }
            let t = t0.elapsed().as_secs_f64();
            let samples = (args.train_steps * args.batch) as f64 / t;
            let block_voxels = args.block.pow(3) as f64;
            // Forward + backward of the network is about three forwards (VGG not counted).
            let gflops = 6.0 * cfg.macs_per_voxel() as f64 * block_voxels * samples / 1e9;
            println!(
                "| training, {}, {} ({}³ blocks, batch {}) | {} | {:.0} ({:.2} samples/s) | {:.1} | {:.1} |{}",
                loss.name(),
                convolutions(&device, cfg),
                args.block,
                args.batch,
                preset.name(),
                samples * block_voxels,
                samples,
                (1.0 / (samples * block_voxels)) / (cubic / voxels),
                gflops,
                peak(gflops)
            );
            if loss == Loss::Mse {
                train_rates.push((preset.name(), samples));
            }
        }
    }
    if !peers.is_empty() {
        println!(
            "\n| preset | inference: mrisr CPU engine / PyTorch | training (MSE): mrisr / PyTorch |"
        );
        println!("| --- | --- | --- |");
        for (name, f) in &peers {
            let inf = engine_rates
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, r)| r / f.voxels_per_s);
            let tr = train_rates
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, r)| r / f.samples_per_s);
            let cell = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.2}"));
            println!("| {name} | {} | {} |", cell(inf), cell(tr));
        }
    }
    Ok(())
}
