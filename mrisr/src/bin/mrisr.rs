//! `mrisr`: look at, convert and super-resolve MRI volumes from the command line.
//! The flags are documented where they are defined; `mrisr help <command>` is the manual.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use mrisr::Volume;
use mrisr::args::TileArgs;
use mrisr::io::dicom;
use mrisr::io::nifti;

#[derive(Parser)]
#[command(
    name = "mrisr",
    version,
    about = "3D MRI super-resolution that runs where the data is"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the DICOM series in a folder (or describe a NIfTI / DICOM file).
    Inspect {
        /// A folder (searched recursively), a DICOM file or a NIfTI file.
        input: PathBuf,
    },
    /// Convert a DICOM series or NIfTI file to NIfTI (.nii, .nii.gz) or to a DICOM series (a folder).
    Convert {
        /// A folder of DICOM files, a DICOM file or a NIfTI file.
        input: PathBuf,
        /// `name.nii` / `name.nii.gz` for NIfTI; anything else is a folder for a DICOM series.
        output: PathBuf,
        #[command(flatten)]
        pick: Pick,
    },
    /// List the models built into this command (the published ones, as on the web page).
    Models,
    /// Super-resolve a volume and write the result (NIfTI or DICOM); with --all, every series
    /// of a folder.
    Upscale {
        /// A folder of DICOM files, a DICOM file or a NIfTI file (a real low-resolution scan).
        input: PathBuf,
        /// `name.nii` / `name.nii.gz` for NIfTI; anything else is a folder for a DICOM series.
        /// With --all: a folder that receives one `NN_description.nii.gz` per volume.
        output: PathBuf,
        /// Every series of the input folder (and every volume of each): goes on past a series
        /// that fails, prints a table, and exits with 1 if any failed.
        #[arg(long, conflicts_with = "series")]
        all: bool,
        /// A weight file (from `cargo run -p trainer`); default: the built-in default model.
        #[arg(long, conflicts_with = "model")]
        weights: Option<PathBuf>,
        /// A built-in model by name (`mrisr models` lists them).
        #[arg(long)]
        model: Option<String>,
        #[command(flatten)]
        pick: Pick,
        /// Compute device.
        #[arg(long, value_enum, default_value = "cpu")]
        device: DeviceArg,
        #[command(flatten)]
        tiles: TileArgs,
        /// CPU engine: threads (default: one per CPU core).
        #[arg(long)]
        threads: Option<usize>,
        /// Axis (0, 1 or 2, in the volume's NIfTI order) to treat as the low-resolution one;
        /// default: the one with the largest voxel spacing.
        #[arg(long)]
        axis: Option<usize>,
        #[command(flatten)]
        adapt: AdaptArgs,
    },
}

/// Learning from the scan itself (`--adapt` and what shapes it).
#[derive(clap::Args)]
struct AdaptArgs {
    /// Learn a network from this scan's own in-plane detail first (self-supervised, as SMORE
    /// and ECLARE do), then super-resolve the scan with it at --factor.
    #[arg(long, conflicts_with_all = ["all", "weights", "model"])]
    adapt: bool,
    /// Output slices per input slice along the thick axis (any value above 1; default: the
    /// largest whole factor not finer than the in-plane spacing, at most 6).
    #[arg(long, requires = "adapt", conflicts_with = "spacing")]
    factor: Option<f64>,
    /// Output slice spacing in mm (instead of --factor).
    #[arg(long, requires = "adapt")]
    spacing: Option<f64>,
    /// Learning steps (batches of 8 pairs; about 0.02 s each on 2 quiet CPU cores).
    #[arg(long, requires = "adapt", default_value_t = mrisr::adapt::learn::Settings::default().steps)]
    steps: u64,
    /// Slice thickness in mm, when the series does not say or says wrong (default: the
    /// slice spacing, i.e. contiguous slices).
    #[arg(long, requires = "adapt")]
    slice_thickness: Option<f64>,
    /// The slices' profile across their thickness.
    #[arg(long, requires = "adapt", value_enum, default_value = "box")]
    profile: ProfileArg,
    /// Start from scratch instead of from the built-in generic weights.
    #[arg(long, requires = "adapt")]
    from_scratch: bool,
    /// Size of the network to learn: `fast` (4 blocks x 16 channels, for a CPU) or `seed`
    /// (9 x 64, for a GPU: --device wgpu; always from scratch).
    #[arg(long, requires = "adapt", default_value = "fast")]
    adapt_net: mrisr::model::card::Preset,
    /// Keep the learned weights in this file (use them again with --weights).
    #[arg(long, requires = "adapt")]
    save_weights: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ProfileArg {
    Box,
    Gaussian,
}

#[derive(clap::Args)]
struct Pick {
    /// Which series of the folder (number from `mrisr inspect`); needed when there are several.
    #[arg(long)]
    series: Option<usize>,
    /// Which volume of a multi-volume series or 4D NIfTI (0-based).
    #[arg(long, default_value_t = 0)]
    volume: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DeviceArg {
    /// mrisr's CPU engine: direct SIMD convolutions on every core (the fastest on a CPU).
    Cpu,
    /// burn's pure-Rust CPU backend (the trainer's; slower, kept for comparison).
    BurnCpu,
    /// The default GPU through wgpu (Vulkan, Metal, DX12).
    Wgpu,
}

fn main() {
    // Ctrl-C stops learning or super-resolving at the next step; nothing half-done is written.
    let _ = ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping (Ctrl-C again to quit at once)");
    });
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Inspect { input } => inspect(&input),
        Command::Convert {
            input,
            output,
            pick,
        } => {
            let volume = load(&input, &pick)?;
            save(&volume, &output, None)
        }
        Command::Models => {
            for m in mrisr::model::published::MODELS {
                let card = m.card()?;
                let mark = if m.default { " (default)" } else { "" };
                println!("{}{mark}", m.name);
                println!("    {}", mrisr::model::published::summary(&card));
            }
            Ok(())
        }
        Command::Upscale {
            input,
            output,
            all,
            weights,
            model,
            pick,
            device,
            tiles,
            threads,
            axis,
            adapt,
        } => {
            let (name, bytes) = match (&weights, &model) {
                (Some(w), _) => {
                    let name = w.display().to_string();
                    let bytes = std::fs::read(w).with_context(|| format!("reading {name}"))?;
                    (name, std::borrow::Cow::Owned(bytes))
                }
                (None, m) => {
                    let p = match m {
                        Some(n) => mrisr::model::published::find(n)?,
                        None => mrisr::model::published::default_model(),
                    };
                    (
                        format!("{} (built in)", p.name),
                        std::borrow::Cow::Borrowed(p.bytes),
                    )
                }
            };
            if let Some(n) = threads {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build_global()
                    .context("setting the number of threads")?;
            }
            if adapt.adapt {
                let volume = load(&input, &pick)?;
                let learned = learn(&volume, &adapt, &bytes, device, axis)?;
                if let Some(path) = &adapt.save_weights {
                    mrisr::io::write_atomically(path, &learned)?;
                    eprintln!("wrote the learned weights to {}", path.display());
                }
                let name = "the weights learned from this scan";
                let upscaler = Upscaler::new(name, &learned, device, tiles)?;
                let result = upscaler.run(&volume, axis)?;
                let done = mrisr::io::bids::what_was_done(&upscaler.card, &volume, &result);
                return save(&result, &output, Some(done));
            }
            let upscaler = Upscaler::new(&name, &bytes, device, tiles)?;
            if all {
                return upscale_all(&upscaler, &input, &output, axis);
            }
            let volume = load(&input, &pick)?;
            let result = upscaler.run(&volume, axis)?;
            let done = mrisr::io::bids::what_was_done(&upscaler.card, &volume, &result);
            save(&result, &output, Some(done))
        }
    }
}

/// Set by Ctrl-C: long work stops at the next step and nothing is written.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// `upscale --adapt`: learns a network from `volume` (starting from `generic`, the chosen
/// built-in model, unless --from-scratch) and returns its weight file.
fn learn(
    volume: &Volume,
    args: &AdaptArgs,
    generic: &[u8],
    device: DeviceArg,
    axis: Option<usize>,
) -> anyhow::Result<Vec<u8>> {
    use mrisr::adapt::{self, Task, learn::Settings};
    use mrisr::degrade::SliceProfile;
    let profile = match args.profile {
        ProfileArg::Box => SliceProfile::Box,
        ProfileArg::Gaussian => SliceProfile::Gaussian,
    };
    let mut task = Task::for_scan(volume, args.factor, args.slice_thickness, profile)?;
    if let Some(a) = axis {
        anyhow::ensure!(
            a == task.geometry.thick_axis,
            "--axis {a}: learning from the scan uses its thick axis ({}), the one with the \
             largest spacing",
            task.geometry.thick_axis
        );
    }
    if let Some(mm) = args.spacing {
        task.factor = task.geometry.factor_for_spacing(mm)?;
    }
    anyhow::ensure!(args.steps > 0, "--steps must be at least 1");
    eprintln!("scan: {}", task.geometry.describe());
    eprintln!(
        "learning x{:.2} (slices {:.2} -> {:.2} mm) from the scan's in-plane detail, {} steps",
        task.factor,
        task.geometry.slice_spacing(),
        task.output_spacing(volume.dims[task.geometry.thick_axis]),
        args.steps
    );
    let net = adapt::network_for(args.adapt_net);
    let init = if args.from_scratch || net != adapt::network() {
        None
    } else {
        Some(adapt::planar_from_generic("the generic model", generic)?)
    };
    let burn_device = match device {
        DeviceArg::Wgpu => burn::tensor::Device::wgpu(burn::tensor::DeviceKind::DefaultDevice),
        DeviceArg::Cpu | DeviceArg::BurnCpu => burn::tensor::Device::flex(),
    };
    let settings = Settings {
        steps: args.steps,
        net,
        ..Settings::default()
    };
    let bar = ProgressBar::new(args.steps).with_style(
        ProgressStyle::with_template(
            "learning [{bar:40}] {pos}/{len} steps, loss {msg}, eta {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let result = adapt::learn::learn(
        volume,
        &task,
        &settings,
        init.as_deref().map(|b| ("the generic model (planar)", b)),
        &burn_device,
        &mut |s| {
            bar.set_position(s.step);
            bar.set_message(format!("{:.4}", s.loss));
            !interrupted()
        },
    );
    bar.finish_and_clear();
    let (net, mut adaptation) = result?;
    adaptation.seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "learned in {:.1} s: pair MSE {:.5} -> {:.5}",
        adaptation.seconds, adaptation.pair_loss_before, adaptation.pair_loss_after
    );
    Ok(adapt::learn::weight_file(&net, settings.net, adaptation)?)
}

/// The BIDS sidecar beside a NIfTI file, as dcm2niix writes it.
fn write_sidecar(
    volume: &Volume,
    nifti: &Path,
    done: Option<serde_json::Value>,
) -> anyhow::Result<()> {
    let json = mrisr::io::bids::sidecar(volume, done);
    let text = serde_json::to_string_pretty(&json).expect("JSON values serialise");
    Ok(mrisr::io::write_atomically(
        &mrisr::io::bids::sidecar_path(nifti),
        text.as_bytes(),
    )?)
}

/// A model loaded onto the engine that runs it.
struct Upscaler {
    card: mrisr::model::ModelCard,
    net: mrisr::pipeline::Network,
}

impl Upscaler {
    fn new(name: &str, bytes: &[u8], device: DeviceArg, tiles: TileArgs) -> anyhow::Result<Self> {
        let device = match device {
            DeviceArg::Cpu => None,
            DeviceArg::BurnCpu => Some(burn::tensor::Device::flex()),
            DeviceArg::Wgpu => Some(burn::tensor::Device::wgpu(
                burn::tensor::DeviceKind::DefaultDevice,
            )),
        };
        let (net, card) = mrisr::pipeline::Network::load(
            name,
            bytes,
            device.as_ref(),
            tiles.memory_bytes(),
            tiles.max_tile_voxels,
        )?;
        eprintln!(
            "model: {} ({}), undoes {}",
            card.name,
            card.net.describe(),
            card.summary()
                .first()
                .map_or_else(|| card.degradation.to_string(), |(_, v)| v.clone())
        );
        if device.is_none() {
            eprintln!(
                "device: cpu (mrisr engine, {} threads)",
                rayon::current_num_threads()
            );
        }
        Ok(Self { card, net })
    }

    /// Super-resolves one volume with a progress bar and says what it did.
    fn run(&self, volume: &Volume, axis: Option<usize>) -> anyhow::Result<Volume> {
        let bar = ProgressBar::new(1).with_style(
            ProgressStyle::with_template("[{bar:40}] {percent}% {msg} eta {eta}")
                .expect("static template")
                .progress_chars("=> "),
        );
        let mut progress = |p: mrisr::tiles::Progress| {
            bar.set_length(p.voxels_total as u64);
            bar.set_position(p.voxels_done as u64);
            bar.set_message(format!("tile {}/{}", p.tiles_done, p.tiles_total));
            !interrupted()
        };
        let started = std::time::Instant::now();
        let result =
            mrisr::infer::block_on(self.net.upscale(&self.card, volume, axis, &mut progress));
        bar.finish_and_clear();
        let result = result?;
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "{:?} at {:?} mm -> {:?} at {:?} mm, super-resolved in {seconds:.2} s",
            volume.dims,
            round(volume.spacing),
            result.dims,
            round(result.spacing)
        );
        Ok(result)
    }
}

/// `upscale --all`: every volume of every series in `input` to `out/NN_description.nii.gz`,
/// past failures, then a table; an error when any failed.
fn upscale_all(
    upscaler: &Upscaler,
    input: &Path,
    out: &Path,
    axis: Option<usize>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        input.is_dir(),
        "--all needs a folder of DICOM series, not {}",
        input.display()
    );
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let report = scan(input)?;
    anyhow::ensure!(
        !report.series.is_empty(),
        "no DICOM series in {}",
        input.display()
    );
    // (series, description, what happened)
    let mut rows: Vec<(String, String, Result<String, String>)> = Vec::new();
    for (n, series) in report.series.iter().enumerate() {
        let label = format!("[{n}]");
        eprintln!("{label} {}", series.description);
        let volumes = match series.problem.as_ref() {
            Some(p) => Err(p.clone()),
            None => dicom::load_series(series).map_err(|e| e.to_string()),
        };
        let volumes = match volumes {
            Ok(v) => v,
            Err(e) => {
                rows.push((label, series.description.clone(), Err(e)));
                continue;
            }
        };
        let several = volumes.len() > 1;
        for (v, volume) in volumes.iter().enumerate() {
            let label = if several {
                format!("[{n}] volume {v}")
            } else {
                label.clone()
            };
            let stem = format!(
                "{n:02}{}_{}",
                if several {
                    format!("_v{v}")
                } else {
                    String::new()
                },
                mrisr::io::file_stem(&series.description)
            );
            let path = out.join(format!("{stem}.nii.gz"));
            let done = upscaler
                .run(volume, axis)
                .and_then(|r| {
                    nifti::write_nifti(&r, &path)?;
                    write_sidecar(
                        &r,
                        &path,
                        Some(mrisr::io::bids::what_was_done(&upscaler.card, volume, &r)),
                    )?;
                    Ok(format!("{:?} -> {}", r.dims, path.display()))
                })
                .map_err(|e| format!("{e:#}"));
            rows.push((label, series.description.clone(), done));
        }
    }
    println!("| series | description | result |");
    println!("| --- | --- | --- |");
    for (label, desc, r) in &rows {
        match r {
            Ok(what) => println!("| {label} | {desc} | {what} |"),
            Err(why) => println!("| {label} | {desc} | FAILED: {why} |"),
        }
    }
    let failed = rows.iter().filter(|r| r.2.is_err()).count();
    if !report.skipped.is_empty() {
        println!(
            "{} file(s) skipped (not DICOM or unreadable; `mrisr inspect` lists them)",
            report.skipped.len()
        );
    }
    if failed > 0 {
        bail!("{failed} of {} failed", rows.len());
    }
    Ok(())
}

fn round(s: [f64; 3]) -> [f64; 3] {
    s.map(|x| (x * 1e4).round() / 1e4)
}

fn is_nifti(p: &Path) -> bool {
    let n = p.to_string_lossy();
    n.ends_with(".nii") || n.ends_with(".nii.gz")
}

fn inspect(input: &Path) -> anyhow::Result<()> {
    if input.is_file() && is_nifti(input) {
        for (n, v) in nifti::read_nifti(input)?.iter().enumerate() {
            println!(
                "volume {n}: {:?} voxels, spacing {:?} mm, {}",
                v.dims,
                round(v.spacing),
                v.meta.description
            );
        }
        return Ok(());
    }
    let report = scan(input)?;
    println!("{} series in {}", report.series.len(), input.display());
    for (n, s) in report.series.iter().enumerate() {
        println!(
            "  [{n}] {:<40} {:<3} {:>4}x{:<4}x{:<4} {:.4}x{:.4}x{:.4} mm  {} volume(s), {} file(s){}",
            s.description,
            s.modality,
            s.dims[0],
            s.dims[1],
            s.dims[2],
            s.spacing[0],
            s.spacing[1],
            s.spacing[2],
            s.volumes,
            s.files.len(),
            s.echo.map(|e| format!(", echo {e}")).unwrap_or_default()
        );
        for w in &s.warnings {
            println!("        warning: {w}");
        }
        if let Some(p) = &s.problem {
            println!("        cannot be loaded: {p}");
        }
    }
    if !report.skipped.is_empty() {
        println!("{} file(s) skipped:", report.skipped.len());
        for s in &report.skipped {
            println!("  {}: {}", s.name, s.reason);
        }
    }
    Ok(())
}

fn scan(input: &Path) -> anyhow::Result<dicom::ScanReport> {
    if input.is_dir() {
        Ok(dicom::scan_dir(input)?)
    } else {
        Ok(dicom::scan_inputs(vec![dicom::DicomInput::Path(
            input.to_path_buf(),
        )]))
    }
}

fn load(input: &Path, pick: &Pick) -> anyhow::Result<Volume> {
    let mut volumes = if input.is_file() && is_nifti(input) {
        nifti::read_nifti(input)?
    } else {
        let report = scan(input)?;
        let series = match (report.series.len(), pick.series) {
            (0, _) => {
                let why = report
                    .skipped
                    .first()
                    .map(|s| format!(" (e.g. {}: {})", s.name, s.reason));
                bail!(
                    "no DICOM series in {}{}",
                    input.display(),
                    why.unwrap_or_default()
                )
            }
            (1, None) => &report.series[0],
            (n, None) => bail!(
                "{} holds {n} series: pick one with --series (see `mrisr inspect`)",
                input.display()
            ),
            (n, Some(i)) if i >= n => {
                bail!("--series {i}: {} holds only {n} series", input.display())
            }
            (_, Some(i)) => &report.series[i],
        };
        dicom::load_series(series)?
    };
    let count = volumes.len();
    if pick.volume >= count {
        bail!(
            "--volume {}: {} holds {count} volume(s)",
            pick.volume,
            input.display()
        );
    }
    Ok(volumes.swap_remove(pick.volume))
}

/// Writes `volume` as NIfTI (with its BIDS sidecar; `done`: what mrisr did, for a result) or
/// as a DICOM series.
fn save(volume: &Volume, output: &Path, done: Option<serde_json::Value>) -> anyhow::Result<()> {
    if is_nifti(output) {
        nifti::write_nifti(volume, output)?;
        write_sidecar(volume, output, done)?;
        eprintln!("wrote {}", output.display());
    } else {
        let files = dicom::write_series_to_dir(volume, &dicom::WriteOptions::default(), output)?;
        eprintln!("wrote {} DICOM files to {}", files.len(), output.display());
    }
    Ok(())
}
