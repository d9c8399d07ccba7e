//! EDSR-style 3D residual network (Lim et al. 2017, made 3D as in the seed experiment).
//!
//! The network works on one grid: its input is the low-resolution volume already upsampled to
//! the target grid (cubic or k-space zero-fill, see `resample`), and it predicts the missing
//! detail as a residual added back to that input. Fully convolutional, so it runs on blocks of
//! any size: trained on 32^3 blocks, applied to whole volumes in tiles (see `infer`).
//!
//! ```text
//! x ─ head conv ─┬─ [conv ReLU conv (+)] x blocks ─ conv ─(+)─ tail conv ─(+)─ y
//! │              └──────────── long skip ──────────────────┘               │
//! └─────────────────────────────── global skip ────────────────────────────┘
//! ```

use burn::module::Module;
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{Initializer, PaddingConfig3d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

pub use super::card::SrNetConfig;

impl SrNetConfig {
    /// A fresh network whose output equals its input (zero tail; see below).
    pub fn init(&self, device: &Device) -> SrNet {
        self.init_with(device, true)
    }

    /// A fresh network; `zero_tail = false` gives random output weights too (tests that need
    /// a network which is not the identity).
    pub fn init_with(&self, device: &Device, zero_tail: bool) -> SrNet {
        let kernel = self.kernel();
        let conv = |cin: usize, cout: usize| {
            Conv3dConfig::new([cin, cout], kernel)
                .with_padding(PaddingConfig3d::Same)
                .init(device)
        };
        SrNet {
            head: conv(1, self.channels),
            blocks: (0..self.blocks)
                .map(|_| ResBlock {
                    conv1: conv(self.channels, self.channels),
                    conv2: conv(self.channels, self.channels),
                })
                .collect(),
            body: conv(self.channels, self.channels),
            // Zero tail: the untrained network returns its input (the cubic baseline) unchanged,
            // so training starts from the baseline instead of from noise.
            tail: Conv3dConfig::new([self.channels, 1], kernel)
                .with_padding(PaddingConfig3d::Same)
                .with_initializer(if zero_tail {
                    Initializer::Zeros
                } else {
                    Initializer::KaimingUniform {
                        gain: 1.0 / 3f64.sqrt(),
                        fan_out_only: false,
                    }
                })
                .init(device),
            residual_scale: self.residual_scale,
        }
    }
}

#[derive(Module, Debug)]
pub struct ResBlock {
    pub(crate) conv1: Conv3d,
    pub(crate) conv2: Conv3d,
}

/// The network. Input and output: `[batch, 1, depth, height, width]`, normalised intensities.
#[derive(Module, Debug)]
pub struct SrNet {
    pub(crate) head: Conv3d,
    pub(crate) blocks: Vec<ResBlock>,
    pub(crate) body: Conv3d,
    pub(crate) tail: Conv3d,
    pub(crate) residual_scale: f32,
}

impl SrNet {
    pub fn forward(&self, x: Tensor<5>) -> Tensor<5> {
        // On the CPU, the same network on mrisr's kernels (see `cpu_conv`).
        if let Some(y) = super::cpu_conv::forward(self, &x) {
            return y;
        }
        self.forward_burn(x)
    }

    /// [`Self::forward`] on burn's own convolutions, whatever the backend (the reference the
    /// kernels' path is tested against).
    pub fn forward_burn(&self, x: Tensor<5>) -> Tensor<5> {
        let features = self.head.forward(x.clone());
        let mut h = features.clone();
        for block in &self.blocks {
            let r = block.conv2.forward(relu(block.conv1.forward(h.clone())));
            h = h + r.mul_scalar(self.residual_scale);
        }
        let h = self.body.forward(h) + features;
        x + self.tail.forward(h)
    }
}
