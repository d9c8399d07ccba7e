//! The network as the CPU engine runs it: a list of convolutions, each reading one tensor and
//! writing another, read from the same weight file as burn's `SrNet` (no burn here).

use super::kernel::PackedConv;
use super::stream::Schedule;
use crate::model::card::SrNetConfig;
use crate::model::card::{ModelCard, read_card};
use crate::{Error, Result};

/// Feature channels are stored padded to a multiple of this (the widest SIMD vector, AVX-512's
/// 16 floats), so every vector load is whole.
pub const CHANNEL_ALIGN: usize = 16;

/// One convolution's weights `[cout][cin][3][3][3]` and biases, as read from the file.
type ConvWeights = (Vec<f32>, Vec<f32>);

/// Index of a tensor of the network (0 = the input, the last = the output).
pub type TensorId = usize;

/// One convolution and what it reads and writes.
#[derive(Clone, Debug)]
pub struct Layer {
    pub conv: PackedConv,
    pub input: TensorId,
    pub output: TensorId,
    pub relu: bool,
    /// Residual add: `output = skip + scale * conv(input)`.
    pub skip: Option<(TensorId, f32)>,
}

/// The network, ready for the CPU engine. Same arithmetic as `model::SrNet::forward`.
#[derive(Clone, Debug)]
pub struct CpuNet {
    pub config: SrNetConfig,
    /// In an order where every tensor is written before it is read.
    pub layers: Vec<Layer>,
    /// Channel stride of each tensor (1 for the input and the output).
    pub strides: Vec<usize>,
    /// When each tensor is produced and how many planes it keeps (from `layers`).
    pub schedule: Schedule,
}

impl CpuNet {
    /// Reads a weight file (see `model::weights`): its card, and every tensor the card's
    /// network needs with the right shape, in f16 or f32. `name` is used in error messages.
    pub fn from_weight_file(name: &str, bytes: &[u8]) -> Result<(Self, ModelCard)> {
        let card = read_card(name, bytes)?;
        let bad = |reason: String| Error::Weights {
            path: name.into(),
            reason,
        };
        let file = safetensors::SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
        let cfg = card.net;
        let c = cfg.channels;
        let mut expected: Vec<String> = Vec::new();
        let [kd, kh, kw] = cfg.kernel();
        let mut conv = |prefix: &str, cin: usize, cout: usize| -> Result<ConvWeights> {
            let w = tensor(&file, &format!("{prefix}.weight"), &[cout, cin, kd, kh, kw]);
            let b = tensor(&file, &format!("{prefix}.bias"), &[cout]);
            expected.push(format!("{prefix}.weight"));
            expected.push(format!("{prefix}.bias"));
            let w = w.map_err(&bad)?;
            // A planar kernel is the middle plane of a 3x3x3 one (the kernels skip the rest).
            let w = if cfg.planar { middle_plane(&w) } else { w };
            Ok((w, b.map_err(&bad)?))
        };
        let head = conv("head", 1, c)?;
        let blocks = (0..cfg.blocks)
            .map(|b| {
                Ok((
                    conv(&format!("blocks.{b}.conv1"), c, c)?,
                    conv(&format!("blocks.{b}.conv2"), c, c)?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let body = conv("body", c, c)?;
        let tail = conv("tail", c, 1)?;
        let unexpected: Vec<_> = file
            .names()
            .into_iter()
            .filter(|n| !expected.iter().any(|e| e == *n))
            .collect();
        if !unexpected.is_empty() {
            return Err(bad(format!(
                "weights do not fit the network ({} blocks x {c} channels in the card): \
                 unexpected {unexpected:?}",
                cfg.blocks
            )));
        }
        Ok((Self::build(cfg, head, blocks, body, tail), card))
    }

    /// Assembles the layer list (see `model::net` for the diagram).
    fn build(
        config: SrNetConfig,
        head: ConvWeights,
        blocks: Vec<(ConvWeights, ConvWeights)>,
        body: ConvWeights,
        tail: ConvWeights,
    ) -> Self {
        let c = config.channels;
        let cp = c.div_ceil(CHANNEL_ALIGN) * CHANNEL_ALIGN;
        let pack =
            |cin, cout, cout_p, (w, b): ConvWeights| PackedConv::pack(cin, cout, cout_p, &w, &b);
        let mut strides = vec![1];
        let mut new_tensor = |stride: usize| {
            strides.push(stride);
            strides.len() - 1
        };
        let x = 0;
        let features = new_tensor(cp);
        let mut layers = vec![Layer {
            conv: pack(1, c, cp, head),
            input: x,
            output: features,
            relu: false,
            skip: None,
        }];
        let mut h = features;
        for (conv1, conv2) in blocks {
            let a = new_tensor(cp);
            let next = new_tensor(cp);
            layers.push(Layer {
                conv: pack(c, c, cp, conv1),
                input: h,
                output: a,
                relu: true,
                skip: None,
            });
            layers.push(Layer {
                conv: pack(c, c, cp, conv2),
                input: a,
                output: next,
                relu: false,
                skip: Some((h, config.residual_scale)),
            });
            h = next;
        }
        let g = new_tensor(cp);
        layers.push(Layer {
            conv: pack(c, c, cp, body),
            input: h,
            output: g,
            relu: false,
            skip: Some((features, 1.0)),
        });
        let y = new_tensor(1);
        // The tail reads whole SIMD vectors of input channels: its weights are padded to the
        // stored channels once here, so the kernel reads them as they are.
        layers.push(Layer {
            conv: pack(cp, 1, 1, pad_input_channels(tail, c, cp)),
            input: g,
            output: y,
            relu: false,
            skip: Some((x, 1.0)),
        });
        let schedule = Schedule::new(&layers, &strides);
        Self {
            config,
            layers,
            strides,
            schedule,
        }
    }

    /// The output tensor.
    pub fn output(&self) -> TensorId {
        self.strides.len() - 1
    }
}

/// `[n][9]` planar taps as `[n][27]` with zeros in the planes dz = 0 and 2.
pub(crate) fn middle_plane(w: &[f32]) -> Vec<f32> {
    let mut out = vec![0.0; w.len() * 3];
    for (o, i) in out.chunks_exact_mut(27).zip(w.chunks_exact(9)) {
        o[9..18].copy_from_slice(i);
    }
    out
}

/// `[cout][cin][27]` weights widened to `[cout][cin_p][27]` with zeros.
fn pad_input_channels((w, b): ConvWeights, cin: usize, cin_p: usize) -> ConvWeights {
    let cout = b.len();
    let mut padded = vec![0.0; cout * cin_p * 27];
    for co in 0..cout {
        padded[co * cin_p * 27..(co * cin_p + cin) * 27]
            .copy_from_slice(&w[co * cin * 27..(co + 1) * cin * 27]);
    }
    (padded, b)
}

/// Reads one tensor as f32, checking its shape.
pub(crate) fn tensor(
    file: &safetensors::SafeTensors,
    name: &str,
    shape: &[usize],
) -> Result<Vec<f32>, String> {
    let t = file
        .tensor(name)
        .map_err(|_| format!("weights do not fit the network in the card: missing {name}"))?;
    if t.shape() != shape {
        return Err(format!(
            "weights do not fit the network in the card: {name} has shape {:?}, expected {shape:?}",
            t.shape()
        ));
    }
    let data = t.data();
    let values: Vec<f32> = match t.dtype() {
        safetensors::Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        safetensors::Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        other => return Err(format!("{name} is {other:?}; expected F16 or F32")),
    };
    if values.iter().any(|v| !v.is_finite()) {
        return Err(format!("{name} holds values that are not finite numbers"));
    }
    Ok(values)
}
