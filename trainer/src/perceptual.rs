//! Perceptual loss: distances between VGG16 feature maps (torchvision `features[0..7]`:
//! relu1_2 and relu2_1) of predicted and target 2D slices, taken along all three axes of a
//! 3D block. The seed experiment used VGG16's first conv layers on 2D slices; looking along all
//! three axes keeps the loss from favouring one orientation.

use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;
use burn::tensor::ops::MaxPoolOptions;
use burn::tensor::{Device, Tensor};

/// torchvision VGG16 features.0 / .2 / .5 (ImageNet weights, BSD-3-Clause; see assets/README.md).
pub const VGG16_WEIGHTS: &[u8] = include_bytes!("../assets/vgg16_features_0_2_5.safetensors");

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The first three convolutions of VGG16, frozen.
#[derive(Module, Debug)]
pub struct Vgg16Features {
    conv0: Conv2d,
    conv2: Conv2d,
    conv5: Conv2d,
}

/// The two feature maps the loss compares.
pub struct Features {
    pub relu1_2: Tensor<4>,
    pub relu2_1: Tensor<4>,
}

impl Vgg16Features {
    /// Loads the embedded torchvision weights onto `device`, with gradients off.
    pub fn load(device: &Device) -> anyhow::Result<Self> {
        let conv = |cin: usize, cout: usize| {
            Conv2dConfig::new([cin, cout], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        let mut net = Self {
            conv0: conv(3, 64),
            conv2: conv(64, 64),
            conv5: conv(64, 128),
        };
        let mut store = SafetensorsStore::from_bytes(Some(VGG16_WEIGHTS.to_vec()))
            .with_key_remapping(r"^features\.(\d+)\.", "conv$1.")
            .validate(true);
        let result = net
            .load_from(&mut store)
            .map_err(|e| anyhow::anyhow!("VGG16 weights: {e}"))?;
        anyhow::ensure!(
            result.missing.is_empty() && result.errors.is_empty() && result.applied.len() == 6,
            "VGG16 weights did not load completely: {result:?}"
        );
        Ok(net.no_grad())
    }

    /// `x`: `[n, 3, h, w]` already normalised with the ImageNet mean/std.
    pub fn forward(&self, x: Tensor<4>) -> Features {
        let relu1_1 = relu(self.conv0.forward(x));
        let relu1_2 = relu(self.conv2.forward(relu1_1));
        let pooled = max_pool2d(
            relu1_2.clone(),
            MaxPoolOptions::new([2, 2]).with_stride([2, 2]),
        );
        let relu2_1 = relu(self.conv5.forward(pooled));
        Features { relu1_2, relu2_1 }
    }

    /// Grey slices `[n, 1, h, w]` with intensities in about [0, 1] -> normalised RGB, as
    /// torchvision expects (the grey value copied to R, G and B).
    pub fn grey_to_input(x: Tensor<4>) -> Tensor<4> {
        let device = x.device();
        let mean = Tensor::<1>::from_floats(MEAN, &device).reshape([1, 3, 1, 1]);
        let std = Tensor::<1>::from_floats(STD, &device).reshape([1, 3, 1, 1]);
        let [n, _, h, w] = x.dims();
        (x.expand([n, 3, h, w]) - mean) / std
    }
}

/// MSE between VGG features of `pred` and `target` blocks (`[b, 1, d, h, w]`), over the 2D slices
/// along each of the three axes; relu1_2 and relu2_1 weigh equally.
pub fn perceptual_distance(vgg: &Vgg16Features, pred: Tensor<5>, target: Tensor<5>) -> Tensor<1> {
    let [b, _, d, h, w] = pred.dims();
    let mut total: Option<Tensor<1>> = None;
    // Each view moves one spatial axis next to the batch so it becomes a stack of 2D slices.
    let views: [([usize; 5], [usize; 4]); 3] = [
        ([0, 2, 1, 3, 4], [b * d, 1, h, w]),
        ([0, 3, 1, 2, 4], [b * h, 1, d, w]),
        ([0, 4, 1, 2, 3], [b * w, 1, d, h]),
    ];
    for (perm, shape) in views {
        let slices = |t: Tensor<5>| Vgg16Features::grey_to_input(t.permute(perm).reshape(shape));
        let (fp, ft) = (
            vgg.forward(slices(pred.clone())),
            vgg.forward(slices(target.clone())),
        );
        let term = (fp.relu1_2 - ft.relu1_2).powi_scalar(2).mean()
            + (fp.relu2_1 - ft.relu2_1).powi_scalar(2).mean();
        total = Some(match total {
            Some(t) => t + term,
            None => term,
        });
    }
    total.expect("three views").div_scalar(6.0)
}
