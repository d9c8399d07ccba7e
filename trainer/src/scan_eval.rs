//! `trainer eval-scan`: learning from the scan itself against Keys cubic, cubic B-spline and
//! the generic model, on high-resolution volumes whose thick slices are simulated (box, x2,
//! x4, ...), plus figures of real thick-slice series that have no ground truth.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use mrisr::Volume;
use mrisr::adapt::{self, Adaptation, Task, learn::Settings};
use mrisr::degrade::{SliceProfile, thick_slices};
use mrisr::normalize::Normalization;
use mrisr::pipeline::Network;
use mrisr::resample::{Method, resample};

use crate::data;
use crate::device::DeviceArgs;

#[derive(Args, Clone)]
pub struct ScanEvalArgs {
    /// High-resolution NIfTI files or folders: thick slices are simulated from them.
    #[arg(long, required_unless_present = "real")]
    data: Vec<PathBuf>,
    /// Thick-slice factors to simulate (box profile, contiguous slices).
    #[arg(long, value_delimiter = ',', default_value = "2,4")]
    factors: Vec<usize>,
    /// The slice axis of (nearly) isotropic volumes; anisotropic ones use their thickest.
    #[arg(long, default_value_t = 2)]
    axis: usize,
    /// Learning steps per volume and factor.
    #[arg(long, default_value_t = Settings::default().steps)]
    steps: u64,
    /// Patches per step.
    #[arg(long, default_value_t = Settings::default().batch)]
    batch: usize,
    /// Patch edge (output samples along the imitated thick axis, and voxels along the other).
    #[arg(long, default_value_t = Settings::default().patch[0])]
    patch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = Settings::default().lr)]
    lr: f64,
    /// Learn from scratch instead of from the generic weights.
    #[arg(long)]
    from_scratch: bool,
    /// Size of the network learned: fast (CPU) or seed (GPU; from scratch).
    #[arg(long, default_value = "fast")]
    net: mrisr::model::card::Preset,
    /// The generic model (the page's and the CLI's default).
    #[arg(long, default_value = "www/weights/fast-mse-slicesx2.safetensors")]
    generic: PathBuf,
    /// Real thick-slice series (no ground truth): a figure of each, learned at its own factor.
    #[arg(long)]
    real: Vec<PathBuf>,
    /// Folder for scan-report.md and the figures.
    #[arg(long, default_value = "report-scan")]
    out: PathBuf,
    // The device for the learning (the CPU engine runs the networks on the CPU).
    #[command(flatten)]
    device: DeviceArgs,
}

/// One row of the report.
#[derive(Clone, Debug, serde::Serialize)]
struct Row {
    volume: String,
    factor: usize,
    method: String,
    psnr_db: f64,
    ssim: f64,
    hfen: f64,
}

pub fn run(args: ScanEvalArgs) -> anyhow::Result<()> {
    let (device, line) = args.device.select()?;
    eprintln!("device for learning: {line}");
    let generic = std::fs::read(&args.generic)
        .with_context(|| format!("reading {}", args.generic.display()))?;
    let budget = mrisr::engine::DEFAULT_MEMORY_BUDGET;
    let (generic_net, generic_card) = Network::load("generic", &generic, None, budget, 0)?;
    let net = adapt::network_for(args.net);
    let init = (!args.from_scratch && net == adapt::network())
        .then(|| adapt::planar_from_generic("generic", &generic))
        .transpose()?;
    let settings = Settings {
        steps: args.steps,
        batch: args.batch,
        lr: args.lr,
        patch: [args.patch; 2],
        net,
        ..Settings::default()
    };
    let learner = Learner {
        settings,
        init,
        device,
        budget,
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut rows: Vec<Row> = Vec::new();
    let mut notes = String::new();
    let simulated = if args.data.is_empty() {
        Vec::new()
    } else {
        data::load_all(&args.data)?
    };
    for named in simulated {
        let hr = named.volume;
        let s = hr.spacing;
        let axis = if s.iter().cloned().fold(0.0, f64::max)
            / s.iter().cloned().fold(f64::MAX, f64::min)
            > 1.2
        {
            (0..3).max_by(|&a, &b| s[a].total_cmp(&s[b])).unwrap_or(2)
        } else {
            args.axis
        };
        for &k in &args.factors {
            anyhow::ensure!(k >= 2, "factor {k}: at least 2");
            let mut size = hr.dims;
            size[axis] = size[axis] / k * k;
            let target = mrisr::volume::crop(&hr, [0; 3], size);
            let mut f = [1; 3];
            f[axis] = k;
            let mut scan = thick_slices(&target, f, SliceProfile::Box);
            scan.meta.description = format!("{} with x{k} slices", named.name);
            let norm = Normalization::for_network(&target);
            let t = norm.apply(&target);
            let mask = data::tissue_mask(&t);
            let range = {
                let (lo, hi) = t.min_max();
                (hi - lo) as f64
            };
            let mut outputs: Vec<(String, Volume)> = Vec::new();
            for m in [Method::Cubic, Method::BSpline] {
                outputs.push((m.name().to_string(), resample(&scan, target.dims, m)));
            }
            // The generic model knows x2: twice for x4, and so on (powers of 2 only).
            if k.is_power_of_two() {
                let mut v = scan.clone();
                for _ in 0..k.trailing_zeros() {
                    v = mrisr::infer::block_on(generic_net.upscale(
                        &generic_card,
                        &v,
                        Some(axis),
                        &mut |_| true,
                    ))?;
                }
                outputs.push(("generic model".into(), v));
            }
            let task = Task::for_scan(&scan, Some(k as f64), None, SliceProfile::Box)?;
            let (out, adaptation, apply_seconds) = learner.learn_and_apply(&scan, &task)?;
            writeln!(
                notes,
                "- {} x{k}: learned in {:.0} s ({} steps, pair MSE {:.5} -> {:.5}), applied in \
                 {:.0} s",
                named.name,
                adaptation.seconds,
                adaptation.steps,
                adaptation.pair_loss_before,
                adaptation.pair_loss_after,
                apply_seconds
            )?;
            eprintln!("{}", notes.lines().last().unwrap_or_default());
            outputs.push(("learned from the scan".into(), out));
            for (method, out) in &outputs {
                anyhow::ensure!(
                    out.dims == target.dims,
                    "{method}: {:?} voxels, the target has {:?}",
                    out.dims,
                    target.dims
                );
                let o = norm.apply(out);
                let row = Row {
                    volume: named.name.clone(),
                    factor: k,
                    method: method.clone(),
                    psnr_db: mrisr::metrics::psnr(&o, &t, range, Some(&mask)),
                    ssim: mrisr::metrics::ssim(&o, &t, range, Some(&mask)),
                    hfen: mrisr::metrics::hfen(&o, &t, Some(&mask)),
                };
                eprintln!(
                    "{:<36} x{k} {:<24} PSNR {:.2} dB  SSIM {:.4}  HFEN {:.4}",
                    row.volume, row.method, row.psnr_db, row.ssim, row.hfen
                );
                rows.push(row);
            }
            let order = slice_axis_last(axis);
            let mut panels: Vec<Volume> = outputs
                .iter()
                .map(|(_, v)| norm.apply(v).permuted(order))
                .collect();
            panels.push(t.permuted(order));
            let refs: Vec<&Volume> = panels.iter().collect();
            let stem = mrisr::io::file_stem(&format!("{}_x{k}", named.name));
            crate::eval::write_figure(&refs, &args.out.join(format!("{stem}.png")))?;
        }
    }
    let real = if args.real.is_empty() {
        Vec::new()
    } else {
        data::load_all(&args.real)?
    };
    for named in real {
        let scan = named.volume;
        let task = Task::for_scan(&scan, None, None, SliceProfile::Box)?;
        let (out, _, _) = learner.learn_and_apply(&scan, &task)?;
        let dims = out.dims;
        let spline = resample(&scan, dims, Method::BSpline);
        let norm = Normalization::for_network(&spline);
        let order = slice_axis_last(task.geometry.thick_axis);
        let panels = [
            norm.apply(&spline).permuted(order),
            norm.apply(&out).permuted(order),
        ];
        let refs: Vec<&Volume> = panels.iter().collect();
        let stem = mrisr::io::file_stem(&format!("{}_real_x{:.0}", named.name, task.factor));
        crate::eval::write_figure(&refs, &args.out.join(format!("{stem}.png")))?;
        writeln!(
            notes,
            "- {} (real, {}): x{:.0}; figure {stem}.png: cubic B-spline, learned",
            named.name,
            task.geometry.describe(),
            task.factor
        )?;
    }
    let mut md = String::from(
        "| volume | factor | method | PSNR (dB) | SSIM | HFEN |\n|---|---:|---|---:|---:|---:|\n",
    );
    for r in &rows {
        writeln!(
            md,
            "| {} | x{} | {} | {:.2} | {:.4} | {:.4} |",
            r.volume, r.factor, r.method, r.psnr_db, r.ssim, r.hfen
        )?;
    }
    md.push_str("\nGain of the learned model over the stronger cubic baseline (PSNR):\n\n");
    let mut keys: Vec<(String, usize)> =
        rows.iter().map(|r| (r.volume.clone(), r.factor)).collect();
    keys.dedup();
    for (v, k) in keys {
        let of = |m: &str| {
            rows.iter()
                .find(|r| r.volume == v && r.factor == k && r.method == m)
                .map(|r| r.psnr_db)
        };
        let base = of(Method::Cubic.name())
            .unwrap_or(f64::NAN)
            .max(of(Method::BSpline.name()).unwrap_or(f64::NAN));
        let learned = of("learned from the scan").unwrap_or(f64::NAN);
        let generic = of("generic model")
            .map(|g| format!(", {:+.2} dB over the generic model", learned - g))
            .unwrap_or_default();
        writeln!(md, "- {v} x{k}: {:+.2} dB{generic}", learned - base)?;
    }
    writeln!(md, "\n{notes}")?;
    std::fs::write(args.out.join("scan-report.md"), &md)?;
    println!("{md}");
    Ok(())
}

/// What every learning run of the evaluation shares.
struct Learner {
    settings: Settings,
    /// The generic weights made planar (none: from scratch).
    init: Option<Vec<u8>>,
    device: burn::tensor::Device,
    /// Memory of the CPU engine that applies the result.
    budget: usize,
}

impl Learner {
    /// Learns `task` from `scan`, then super-resolves `scan` with the result on the CPU engine.
    /// Returns the result, the run's record (its `seconds` set) and the seconds applying took.
    fn learn_and_apply(
        &self,
        scan: &Volume,
        task: &Task,
    ) -> anyhow::Result<(Volume, Adaptation, f64)> {
        let started = Instant::now();
        let (net, mut adaptation) = adapt::learn::learn(
            scan,
            task,
            &self.settings,
            self.init.as_deref().map(|b| ("generic (planar)", b)),
            &self.device,
            &mut |s| {
                if s.step % adapt::learn::PROBE_EVERY == 0 {
                    eprintln!(
                        "  step {}: batch MSE {:.6}, pair MSE {:.6}",
                        s.step, s.loss, s.probe
                    );
                }
                true
            },
        )?;
        adaptation.seconds = started.elapsed().as_secs_f64();
        let weights = adapt::learn::weight_file(&net, self.settings.net, adaptation.clone())?;
        let (learned, card) = Network::load("learned", &weights, None, self.budget, 0)?;
        let started = Instant::now();
        let out = mrisr::infer::block_on(learned.upscale(&card, scan, None, &mut |_| true))?;
        Ok((out, adaptation, started.elapsed().as_secs_f64()))
    }
}

/// An axis order that puts `axis` last (the figures show i-k planes).
fn slice_axis_last(axis: usize) -> [usize; 3] {
    match axis {
        0 => [1, 2, 0],
        1 => [2, 0, 1],
        _ => [0, 1, 2],
    }
}
