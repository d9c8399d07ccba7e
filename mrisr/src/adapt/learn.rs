//! The learning itself (burn, any device): Adam on the MSE of pairs cut from the scan, from scratch (a zero
//! tail: the network starts as its baseline) or from the generic weights made planar.

use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};

use super::pairs::{PairSampler, Rng};
use super::{Adaptation, Task};
use crate::model::card::SrNetConfig;
use crate::model::{SrNet, weights};
use crate::normalize::Normalization;
use crate::{Error, Result, Volume};

/// How long and on what the network learns.
#[derive(Clone, Debug)]
pub struct Settings {
    pub steps: u64,
    /// Patches per step.
    pub batch: usize,
    /// Patch size `[along the imitated thick axis, along the other in-plane axis]`.
    pub patch: [usize; 2],
    /// Peak learning rate (Adam), decayed along a half cosine to a tenth.
    pub lr: f64,
    pub seed: u64,
    /// The network's shape (planar; see [`super::network`]).
    pub net: SrNetConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            steps: 8000,
            batch: 8,
            patch: [48, 48],
            lr: 2e-3,
            seed: 1,
            net: super::network(),
        }
    }
}

/// Where the learning stands, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    pub step: u64,
    pub steps: u64,
    /// Training loss (MSE) of the latest batch that was read back.
    pub loss: f64,
    /// MSE on the held-aside pairs, measured every [`PROBE_EVERY`] steps (latest value).
    pub probe: f64,
}

/// Steps between measurements on the held-aside pairs.
pub const PROBE_EVERY: u64 = 100;

/// Pairs held aside to report the loss before and after (the same ones both times).
const PROBE_PAIRS: usize = 16;

/// Learns `task` from `scan` on `device`, starting from `init` (a planar weight file, e.g.
/// [`super::planar_from_generic`]) or from scratch. `progress` is called after every step;
/// returning `false` cancels with [`Error::Cancelled`]. Returns the network (on `device`,
/// without autodiff) and what to record of the run (`seconds` left at 0 for the caller).
/// Blocks; a browser's WebGPU can only be read back asynchronously: [`learn_async`].
pub fn learn(
    scan: &Volume,
    task: &Task,
    settings: &Settings,
    init: Option<(&str, &[u8])>,
    device: &Device,
    progress: &mut dyn FnMut(Step) -> bool,
) -> Result<(SrNet, Adaptation)> {
    futures_lite::future::block_on(learn_async(scan, task, settings, init, device, progress))
}

/// [`learn`], reading the loss back asynchronously (what WebGPU in a browser needs).
pub async fn learn_async(
    scan: &Volume,
    task: &Task,
    settings: &Settings,
    init: Option<(&str, &[u8])>,
    device: &Device,
    progress: &mut dyn FnMut(Step) -> bool,
) -> Result<(SrNet, Adaptation)> {
    let norm = Normalization::for_network(scan);
    let vol = norm.apply(scan);
    let patch = PairSampler::fitting_patch(&vol, task, settings.patch);
    let sampler = PairSampler::new(&vol, task, patch)?;
    let cfg = settings.net;
    if !cfg.planar {
        return Err(Error::Invalid(
            "a network learned from a scan must be planar".into(),
        ));
    }
    let ad = device.clone().autodiff();
    let mut started_from = None;
    let mut net = cfg.init(&ad);
    if let Some((name, bytes)) = init {
        let card = crate::model::card::read_card(name, bytes)?;
        if card.net != cfg {
            return Err(Error::Weights {
                path: name.into(),
                reason: format!(
                    "a {} network, expected {}",
                    card.net.describe(),
                    cfg.describe()
                ),
            });
        }
        net = weights::load_into(name, bytes, &card, net)?;
        started_from = Some(card.name.clone());
    }
    let [p0, p1] = patch;
    let batch = |n: usize, rng: &mut Rng, device: &Device| {
        let len = p0 * p1;
        let (mut xs, mut ys) = (vec![0f32; n * len], vec![0f32; n * len]);
        for (x, y) in xs.chunks_exact_mut(len).zip(ys.chunks_exact_mut(len)) {
            sampler.sample(rng, x, y);
        }
        // Patches stacked along the network's axis 2: planar kernels keep them apart.
        let shape = [1, 1, n, p1, p0];
        (
            Tensor::<5>::from_data(TensorData::new(xs, shape), device),
            Tensor::<5>::from_data(TensorData::new(ys, shape), device),
        )
    };
    let (probe_x, probe_y) = batch(PROBE_PAIRS, &mut Rng::new(settings.seed ^ 0xA5A5), device);
    let probe = async |net: &SrNet| -> Result<f64> {
        let pred = net.forward(probe_x.clone());
        let mse = (pred - probe_y.clone()).powi_scalar(2).mean();
        read(mse).await
    };
    let before = probe(&net.valid()).await?;
    let mut probed = before;
    let mut optim: ModuleOptimizer = AdamConfig::new().with_epsilon(1e-8).init();
    let mut rng = Rng::new(settings.seed);
    let mut last = f64::NAN;
    for step in 0..settings.steps {
        let (x, y) = batch(settings.batch, &mut rng, &ad);
        // MSE: the mean of what the thin slices could be, which is what PSNR rewards (L1 gave
        // 0.4 dB less on a brain at x4, same steps).
        let loss = (net.forward(x) - y).powi_scalar(2).mean();
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        let t = step as f64 / settings.steps.max(1) as f64;
        let lr = settings.lr * (0.1 + 0.45 * (1.0 + (std::f64::consts::PI * t).cos()));
        net = optim.step(lr, net, grads);
        // Reading the loss back waits for the device: every 10th step only.
        if step % 10 == 0 || step + 1 == settings.steps {
            last = read(loss).await?;
        }
        if (step + 1) % PROBE_EVERY == 0 {
            probed = probe(&net.valid()).await?;
        }
        let go_on = progress(Step {
            step: step + 1,
            steps: settings.steps,
            loss: last,
            probe: probed,
        });
        if !go_on {
            return Err(Error::Cancelled);
        }
    }
    let net = net.valid();
    let after = probe(&net).await?;
    Ok((
        net,
        Adaptation {
            series: describe_series(scan),
            task: task.clone(),
            steps: settings.steps,
            pair_loss_before: before,
            pair_loss_after: after,
            started_from,
            seconds: 0.0,
        },
    ))
}

/// A one-element tensor's value, read back from the device.
async fn read(t: Tensor<1>) -> Result<f64> {
    t.into_scalar_async::<f32>()
        .await
        .map(|v| v as f64)
        .map_err(|e| Error::Invalid(format!("reading the loss back from the device: {e:?}")))
}

/// The weight file of a network (of shape `cfg`) learned per `adaptation`.
pub fn weight_file(net: &SrNet, cfg: SrNetConfig, adaptation: Adaptation) -> Result<Vec<u8>> {
    weights::save(net, &super::card(cfg, adaptation))
}

/// "Sag DESS (dicom/knee)" from a volume's metadata.
fn describe_series(v: &Volume) -> String {
    let d = v.meta.description.trim();
    let s = v.meta.source.trim();
    match (d.is_empty(), s.is_empty()) {
        (false, false) => format!("{d} ({s})"),
        (false, true) => d.to_string(),
        (true, false) => s.to_string(),
        (true, true) => "an unnamed series".to_string(),
    }
}
