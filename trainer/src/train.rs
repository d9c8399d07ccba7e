//! The training loop: Adam on MSE (+ perceptual), validation against the cubic baseline every
//! epoch, checkpoints for resume, Ctrl-C that saves, and export of the best weights.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::Context;
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Tensor, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use mrisr::model::card::{CardMetrics, LossKind, ModelCard};
use mrisr::model::{SrNet, SrNetConfig, weights};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use crate::data::{Pair, choose_pair};
use crate::perceptual::{Vgg16Features, perceptual_distance};

/// Everything that shapes a run (saved with checkpoints so `--resume` continues the same run).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunConfig {
    pub name: String,
    pub net: SrNetConfig,
    pub loss: LossKind,
    pub block: usize,
    pub batch: usize,
    pub steps_per_epoch: usize,
    pub epochs: usize,
    pub lr: f64,
    pub seed: u64,
}

/// Where a run stands; written next to each checkpoint.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunState {
    pub epoch: usize,
    pub step: u64,
    pub best_val_psnr: Option<f64>,
    /// The baseline's validation PSNR (the same every epoch: fixed blocks).
    #[serde(default)]
    pub baseline_val_psnr: Option<f64>,
}

/// One line of the training log (`log.jsonl` in the run folder).
#[derive(Debug, Serialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub step: u64,
    pub train_loss: f64,
    pub val_psnr_db: f64,
    pub val_ssim: f64,
    pub baseline_psnr_db: f64,
    pub baseline_ssim: f64,
    pub seconds: f64,
    pub samples_per_second: f64,
}

/// Fixed validation blocks, so epochs are compared on the same data.
pub struct ValSet {
    pub inputs: Vec<Vec<f32>>,
    pub targets: Vec<Vec<f32>>,
}

impl ValSet {
    pub fn new(pairs: &[Pair], block: usize, count: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut inputs, mut targets) = (Vec::new(), Vec::new());
        for _ in 0..count {
            let (x, y) = choose_pair(pairs, &mut rng).sample(block, &mut rng, false);
            inputs.push(x);
            targets.push(y);
        }
        Self { inputs, targets }
    }
}

pub struct Trainer {
    pub cfg: RunConfig,
    pub device: Device,
    pub dir: PathBuf,
    pub card_template: ModelCard,
    /// Weight file the best model is exported to.
    pub export: Option<PathBuf>,
    /// Weights to start from instead of a fresh network (ignored when resuming: the
    /// checkpoint already holds where the run got to).
    pub init: Option<InitWeights>,
}

/// A weight file a run starts from (`--init`), read once: the run loads its tensors and the
/// card of the result names it.
pub struct InitWeights {
    pub name: String,
    pub bytes: Vec<u8>,
    pub card: ModelCard,
}

impl InitWeights {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).with_context(|| format!("reading {name}"))?;
        let card = mrisr::model::card::read_card(&name, &bytes)?;
        Ok(Self { name, bytes, card })
    }

    /// What the card of the result says it started from.
    pub fn describe(&self) -> String {
        format!("{} ({} steps)", self.card.name, self.card.steps)
    }
}

impl Trainer {
    pub fn run(
        &self,
        train: &[Pair],
        val: &ValSet,
        resume: bool,
        stop: Arc<AtomicBool>,
    ) -> anyhow::Result<RunState> {
        let cfg = &self.cfg;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let device = self.device.clone().autodiff();
        let mut net = cfg.net.init(&device);
        let mut optim: ModuleOptimizer = AdamConfig::new().init();
        let mut state = RunState::default();
        if let (Some(init), false) = (&self.init, resume) {
            net = self.load_init(init, net)?;
        }
        if resume {
            (net, optim, state) = self.load_checkpoint(net, optim)?;
            eprintln!(
                "resumed {} at epoch {} (step {})",
                self.dir.display(),
                state.epoch,
                state.step
            );
        }
        let vgg = match cfg.loss {
            LossKind::Perceptual { .. } => Some(Vgg16Features::load(&device)?),
            LossKind::Mse => None,
        };
        let mut rng = StdRng::seed_from_u64(cfg.seed ^ state.step);
        let swap_ok = self.card_template.degradation.allows_in_plane_swap();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("log.jsonl"))?;

        while state.epoch < cfg.epochs {
            let bar = ProgressBar::new(cfg.steps_per_epoch as u64).with_style(
                ProgressStyle::with_template(
                    "epoch {msg} [{bar:30}] {pos}/{len} steps, {per_sec}, eta {eta}",
                )
                .expect("static template")
                .progress_chars("=> "),
            );
            bar.set_message(format!("{}/{}", state.epoch + 1, cfg.epochs));
            let t0 = Instant::now();
            // Reading the loss back syncs the device, so only every 10th step is read.
            let (mut loss_sum, mut loss_n) = (0.0, 0usize);
            for s in 0..cfg.steps_per_epoch {
                if stop.load(Ordering::SeqCst) {
                    bar.abandon_with_message("interrupted");
                    self.save_checkpoint(&net, &optim, &state)?;
                    eprintln!(
                        "saved checkpoint to {} (resume with --resume)",
                        self.dir.display()
                    );
                    return Ok(state);
                }
                let (x, y) = batch(train, cfg.block, cfg.batch, &mut rng, swap_ok, &device);
                let loss = training_loss(&net, x, y, &cfg.loss, vgg.as_ref());
                let grads = GradientsParams::from_grads(loss.backward(), &net);
                let lr = cosine_lr(
                    cfg.lr,
                    state.step,
                    (cfg.epochs * cfg.steps_per_epoch) as u64,
                );
                net = optim.step(lr, net, grads);
                state.step += 1;
                if s % 10 == 0 {
                    loss_sum += loss.into_scalar::<f32>() as f64;
                    loss_n += 1;
                }
                bar.inc(1);
            }
            let seconds = t0.elapsed().as_secs_f64();
            bar.finish_and_clear();
            state.epoch += 1;
            let (v, b) = validate(&net.valid(), val, cfg.block, &self.device);
            let entry = EpochLog {
                epoch: state.epoch,
                step: state.step,
                train_loss: loss_sum / loss_n.max(1) as f64,
                val_psnr_db: v.0,
                val_ssim: v.1,
                baseline_psnr_db: b.0,
                baseline_ssim: b.1,
                seconds,
                samples_per_second: (cfg.steps_per_epoch * cfg.batch) as f64 / seconds,
            };
            eprintln!(
                "epoch {:>3}/{}  loss {:.5}  val PSNR {:.2} dB (cubic {:.2})  SSIM {:.4} (cubic {:.4})  {:.1} samples/s",
                entry.epoch,
                cfg.epochs,
                entry.train_loss,
                entry.val_psnr_db,
                entry.baseline_psnr_db,
                entry.val_ssim,
                entry.baseline_ssim,
                entry.samples_per_second
            );
            use std::io::Write;
            writeln!(log, "{}", serde_json::to_string(&entry)?)?;
            // MSE runs keep the epoch with the best validation PSNR. A perceptual run trades some
            // PSNR for sharpness on purpose, so picking by PSNR would undo it: it keeps the last.
            state.baseline_val_psnr = Some(b.0);
            let improved = state.best_val_psnr.is_none_or(|best| v.0 > best);
            if improved {
                state.best_val_psnr = Some(v.0);
            }
            if improved || matches!(cfg.loss, LossKind::Perceptual { .. }) {
                self.export_best(&net.valid(), &state, v, b)?;
            }
            self.save_checkpoint(&net, &optim, &state)?;
        }
        Ok(state)
    }

    fn export_best(
        &self,
        net: &SrNet,
        state: &RunState,
        v: (f64, f64),
        b: (f64, f64),
    ) -> anyhow::Result<()> {
        let mut card = self.card_template.clone();
        card.steps = state.step;
        card.metrics = Some(CardMetrics {
            psnr_db: v.0,
            ssim: v.1,
            baseline_psnr_db: b.0,
            baseline_ssim: b.1,
            on: "validation blocks (held-out subjects)".into(),
        });
        let bytes = weights::save(net, &card)?;
        let best = self.dir.join("best.safetensors");
        std::fs::write(&best, &bytes).with_context(|| format!("writing {}", best.display()))?;
        if let Some(out) = &self.export {
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(out, &bytes).with_context(|| format!("writing {}", out.display()))?;
            // Weights exported into a folder the page serves are listed for it.
            if let (Some(dir), Some(name)) =
                (out.parent(), out.file_name().and_then(|n| n.to_str()))
                && dir.ends_with("www/weights")
            {
                crate::publish::update_index(dir, name, &card, &bytes)?;
            }
        }
        Ok(())
    }

    fn save_checkpoint(
        &self,
        net: &SrNet,
        optim: &ModuleOptimizer,
        state: &RunState,
    ) -> anyhow::Result<()> {
        // Write to temporary names first so an interrupted save never leaves a broken checkpoint.
        let tmp = |n: &str| self.dir.join(format!("{n}.tmp"));
        let mut store = SafetensorsStore::from_file(tmp("model.safetensors")).overwrite(true);
        net.save_into(&mut store)
            .map_err(|e| anyhow::anyhow!("saving checkpoint: {e}"))?;
        optim
            .save(tmp("optimizer.bin"))
            .map_err(|e| anyhow::anyhow!("saving optimizer: {e:?}"))?;
        std::fs::write(
            tmp("state.json"),
            serde_json::to_string_pretty(&(state, &self.cfg))?,
        )?;
        for n in ["model.safetensors", "optimizer.bin", "state.json"] {
            std::fs::rename(tmp(n), self.dir.join(n))?;
        }
        Ok(())
    }

    /// The network with the weights of `init` (`--init`), which must be the same network.
    fn load_init(&self, init: &InitWeights, net: SrNet) -> anyhow::Result<SrNet> {
        let (name, card) = (&init.name, &init.card);
        anyhow::ensure!(
            card.net == self.cfg.net,
            "{name}: a {} blocks x {} channels network; this run trains {} x {} (pick the \
             matching --preset)",
            card.net.blocks,
            card.net.channels,
            self.cfg.net.blocks,
            self.cfg.net.channels
        );
        if card.degradation != self.card_template.degradation {
            eprintln!(
                "note: {name} was trained to undo {}; this run undoes {}",
                card.degradation, self.card_template.degradation
            );
        }
        let net = weights::load_into(name, &init.bytes, card, net)?;
        eprintln!("starting from {name} ({}, {} steps)", card.name, card.steps);
        Ok(net)
    }

    fn load_checkpoint(
        &self,
        mut net: SrNet,
        optim: ModuleOptimizer,
    ) -> anyhow::Result<(SrNet, ModuleOptimizer, RunState)> {
        let dir = &self.dir;
        let text = std::fs::read_to_string(dir.join("state.json"))
            .with_context(|| format!("no checkpoint in {} to resume", dir.display()))?;
        let (state, saved): (RunState, RunConfig) = serde_json::from_str(&text)?;
        anyhow::ensure!(
            saved.net == self.cfg.net,
            "the checkpoint is a {:?} network, not {:?}",
            saved.net,
            self.cfg.net
        );
        let mut store = SafetensorsStore::from_file(dir.join("model.safetensors"));
        net.load_from(&mut store)
            .map_err(|e| anyhow::anyhow!("loading checkpoint: {e}"))?;
        let optim = optim
            .load(dir.join("optimizer.bin"))
            .map_err(|e| anyhow::anyhow!("loading optimizer state: {e:?}"))?;
        Ok((net, optim, state))
    }
}

/// Default weight of the perceptual term (`--perceptual-weight`).
pub const PERCEPTUAL_WEIGHT: f32 = 0.01;

/// The loss of one batch: MSE, plus the weighted VGG16 feature distance for a perceptual run
/// (`vgg` must then be given).
pub fn training_loss(
    net: &SrNet,
    x: Tensor<5>,
    y: Tensor<5>,
    kind: &LossKind,
    vgg: Option<&Vgg16Features>,
) -> Tensor<1> {
    let pred = net.forward(x);
    let mse = (pred.clone() - y.clone()).powi_scalar(2).mean();
    match (kind, vgg) {
        (LossKind::Perceptual { weight }, Some(vgg)) => {
            mse + perceptual_distance(vgg, pred, y).mul_scalar(*weight)
        }
        _ => mse,
    }
}

/// Learning rate decaying from `lr` to `lr / 10` along a half cosine.
pub fn cosine_lr(lr: f64, step: u64, total: u64) -> f64 {
    let t = (step as f64 / total.max(1) as f64).min(1.0);
    lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

/// `n` random blocks as `[n, 1, b, b, b]` input and target tensors.
pub fn batch(
    pairs: &[Pair],
    block: usize,
    n: usize,
    rng: &mut StdRng,
    swap_ok: bool,
    device: &Device,
) -> (Tensor<5>, Tensor<5>) {
    let (mut xs, mut ys) = (
        Vec::with_capacity(n * block.pow(3)),
        Vec::with_capacity(n * block.pow(3)),
    );
    for _ in 0..n {
        let (x, y) = choose_pair(pairs, rng).sample(block, rng, swap_ok);
        xs.extend(x);
        ys.extend(y);
    }
    let shape = [n, 1, block, block, block];
    (
        Tensor::from_data(TensorData::new(xs, shape), device),
        Tensor::from_data(TensorData::new(ys, shape), device),
    )
}

/// Mean PSNR (data range 1: intensities are normalised) and SSIM of the network and of its
/// input (the cubic / zero-fill baseline) on the validation blocks.
pub fn validate(
    net: &SrNet,
    val: &ValSet,
    block: usize,
    device: &Device,
) -> ((f64, f64), (f64, f64)) {
    let n = val.inputs.len().max(1) as f64;
    let (mut net_m, mut base_m) = ((0.0, 0.0), (0.0, 0.0));
    for (x, y) in val.inputs.iter().zip(&val.targets) {
        let out = mrisr::infer::block_on(mrisr::infer::run_tile(net, x, [block; 3], device))
            .expect("validation forward pass");
        let (p, s) = block_metrics(&out, y, block);
        let (bp, bs) = block_metrics(x, y, block);
        net_m = (net_m.0 + p, net_m.1 + s);
        base_m = (base_m.0 + bp, base_m.1 + bs);
    }
    ((net_m.0 / n, net_m.1 / n), (base_m.0 / n, base_m.1 / n))
}

fn block_metrics(x: &[f32], y: &[f32], block: usize) -> (f64, f64) {
    let vx = mrisr::Volume::from_data([block; 3], [1.0; 3], x.to_vec());
    let vy = mrisr::Volume::from_data([block; 3], [1.0; 3], y.to_vec());
    (
        mrisr::metrics::psnr(&vx, &vy, 1.0, None),
        mrisr::metrics::ssim(&vx, &vy, 1.0, None),
    )
}

/// Where checkpoints of a run named `name` live.
pub fn run_dir(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}
