//! The network on burn's CPU backend (flex) with mrisr's convolution kernels, forward and
//! backward, so that training on the CPU (the trainer, learning from a scan natively and in the
//! page) runs at the kernels' speed instead of im2col + gemm.
//!
//! burn lets a model call an operation of its own on a backend it names (its "backend
//! extension" API): here [`SrNet::forward`] hands the whole network to [`forward`] when its
//! tensors live on flex, plain or under autodiff. Activations are then kept in the layers'
//! layout (padded channels-last, see `engine::layer`), so no layer transposes anything; ReLU,
//! the residual adds and the loss stay burn's own operations. Each convolution registers its
//! backward step with burn's autodiff graph: the input gradient on the forward kernel with
//! flipped weights, the weight and bias gradients on the weight-gradient kernel. Networks the
//! kernels do not take (channels not a multiple of 16) and every other backend keep burn's
//! convolutions. `MRISR_BURN_CONV=1` forces burn's convolutions (benchmarks, tests).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::conv::Conv3d;
use burn::tensor::activation::relu;
use burn::tensor::{DType, Tensor, TensorData};

use super::net::SrNet;
use crate::engine::layer::{self, ConvWeights, Grid};

type Ad = Autodiff<Flex>;

/// Whether a network of `channels` features runs on the kernels when its tensors are on flex:
/// the kernels take its layers and `MRISR_BURN_CONV=1` does not ask for burn's convolutions.
pub fn takes(channels: usize) -> bool {
    let burn_only = std::env::var_os("MRISR_BURN_CONV").is_some_and(|v| v != "0");
    !burn_only && layer::supports_network(channels)
}

/// The network's output for `x` (`[n, 1, d, h, w]`) on the kernels, or `None` where they do
/// not apply (another backend, channels they do not take, `MRISR_BURN_CONV=1`).
pub(crate) fn forward(net: &SrNet, x: &Tensor<5>) -> Option<Tensor<5>> {
    let [n, c1, d, h, w] = x.dims();
    if c1 != 1 || !takes(net.head.weight.dims()[0]) {
        return None;
    }
    // Training (weights under autodiff) or inference on flex; both or neither.
    let weight = net.head.weight.val();
    // f32 only: the kernels read the tensors' memory as f32.
    let on = |t: &Tensor<5>, ad: bool| {
        t.dtype() == DType::F32
            && match ad {
                true => t.clone().try_into_primitive::<Ad>().is_ok(),
                false => t.clone().try_into_primitive::<Flex>().is_ok(),
            }
    };
    let ad = on(&weight, true);
    if !(on(&weight, ad) && on(x, ad)) {
        return None;
    }
    let grid = Grid { n, d, h, w };
    let device = x.device();
    let padded = Tensor::<5>::zeros([n, d, h + 2, w + 2, 1], &device).slice_assign(
        [0..n, 0..d, 1..h + 1, 1..w + 1, 0..1],
        x.clone().reshape([n, d, h, w, 1]),
    );
    let conv = |layer: &Conv3d, t: Tensor<5>| conv(layer, t, grid, ad);
    let features = conv(&net.head, padded.clone());
    let mut h_ = features.clone();
    for block in &net.blocks {
        let r = conv(&block.conv2, relu(conv(&block.conv1, h_.clone())));
        h_ = h_ + r.mul_scalar(net.residual_scale);
    }
    let body = conv(&net.body, h_) + features;
    let detail = conv(&net.tail, body)
        .slice([0..n, 0..d, 1..h + 1, 1..w + 1, 0..1])
        .reshape([n, 1, d, h, w]);
    Some(x.clone() + detail)
}

/// One convolution of a padded channels-last batch.
fn conv(layer: &Conv3d, x: Tensor<5>, grid: Grid, ad: bool) -> Tensor<5> {
    let weight = layer.weight.val();
    let bias = layer
        .bias
        .as_ref()
        .map(|b| b.val())
        .unwrap_or_else(|| Tensor::zeros([weight.dims()[0]], &weight.device()));
    let [cout, cin, ..] = weight.dims();
    let shape = Shape { grid, cin, cout };
    // The checks in `forward` put every tensor on flex (under autodiff where `ad`).
    const ON_FLEX: &str = "checked by cpu_conv::forward";
    if ad {
        let prim = |t: Tensor<5>| t.try_into_primitive::<Ad>().expect(ON_FLEX);
        let b = bias.try_into_primitive::<Ad>().expect(ON_FLEX);
        Tensor::from_primitive::<Ad>(conv_autodiff(prim(x), prim(weight), b, shape))
    } else {
        let prim = |t: Tensor<5>| t.try_into_primitive::<Flex>().expect(ON_FLEX);
        let b = bias.try_into_primitive::<Flex>().expect(ON_FLEX);
        Tensor::from_primitive::<Flex>(conv_flex(&prim(x), &prim(weight), &b, shape))
    }
}

#[derive(Clone, Copy, Debug)]
struct Shape {
    grid: Grid,
    cin: usize,
    cout: usize,
}

impl Shape {
    fn dims(&self, c: usize) -> [usize; 5] {
        let g = self.grid;
        [g.n, g.d, g.h + 2, g.w + 2, c]
    }
}

fn floats(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) => s.into(),
        None => t
            .to_contiguous()
            .as_slice::<f32>()
            .expect("f32")
            .to_vec()
            .into(),
    }
}

fn flex(data: Vec<f32>, dims: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, dims.to_vec()))
}

fn conv_flex(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor, s: Shape) -> FlexTensor {
    let (w, b) = (floats(weight), floats(bias));
    let weights = ConvWeights {
        cin: s.cin,
        cout: s.cout,
        weight: &w,
        bias: &b,
    };
    let mut out = vec![0.0; s.grid.floats(s.cout)];
    layer::forward(&floats(x), s.grid, weights, &mut out);
    flex(out, &s.dims(s.cout))
}

/// [`conv_flex`] recorded in burn's autodiff graph with [`ConvBackward`] as its backward step.
fn conv_autodiff(
    x: FloatTensor<Ad>,
    weight: FloatTensor<Ad>,
    bias: FloatTensor<Ad>,
    s: Shape,
) -> FloatTensor<Ad> {
    let out = conv_flex(x.primitive(), weight.primitive(), bias.primitive(), s);
    match ConvBackward
        .prepare::<NoCheckpointing>([x.node(), weight.node(), bias.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(
            ConvState {
                x: x.primitive().clone(),
                weight: weight.primitive().clone(),
                shape: s,
            },
            out,
        ),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

#[derive(Debug)]
struct ConvBackward;

#[derive(Clone, Debug)]
struct ConvState {
    x: FlexTensor,
    weight: FlexTensor,
    shape: Shape,
}

impl Backward<Flex, 3> for ConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let ConvState { x, weight, shape } = ops.state;
        let (grid, cin, cout) = (shape.grid, shape.cin, shape.cout);
        let mut g = floats(&grad);
        // The kernels read the border as the zero padding: a gradient from outside this module
        // (none today: slices, adds and ReLU keep it zero) gets its border cleared first.
        if !layer::border_is_zero(&g, grid, cout) {
            layer::zero_border(g.to_mut(), grid, cout);
        }
        let w = floats(&weight);
        let conv = ConvWeights {
            cin,
            cout,
            weight: &w,
            bias: &[],
        };
        if let Some(node) = node_x {
            let mut gx = vec![0.0; grid.floats(cin)];
            layer::input_grad(&g, grid, conv, &mut gx);
            grads.register::<Flex>(node.id, flex(gx, &shape.dims(cin)));
        }
        if node_weight.is_some() || node_bias.is_some() {
            let (gw, gb) = layer::weight_grad(&floats(&x), &g, grid, conv);
            if let Some(node) = node_weight {
                let kd = gw.len() / (cout * cin * 9);
                grads.register::<Flex>(node.id, flex(gw, &[cout, cin, kd, 3, 3]));
            }
            if let Some(node) = node_bias {
                grads.register::<Flex>(node.id, flex(gb, &[cout]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SrNetConfig;
    use burn::tensor::Device;

    fn random(shape: [usize; 5], seed: u64, device: &Device) -> Tensor<5> {
        let mut s = seed;
        let data = (0..shape.iter().product::<usize>())
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect::<Vec<f32>>();
        Tensor::from_data(TensorData::new(data, shape), device)
    }

    fn max_diff(a: Tensor<5>, b: Tensor<5>) -> (f32, f32) {
        let scale = b.clone().abs().max().into_scalar::<f32>();
        ((a - b).abs().max().into_scalar::<f32>(), scale)
    }

    /// Output and every parameter's gradient of a network on the kernels equal burn's own, on
    /// a batch of two odd-sized volumes, for a 3D and a planar network.
    #[test]
    fn kernels_give_burns_outputs_and_gradients() {
        let device = Device::flex().autodiff();
        for planar in [false, true] {
            let cfg = SrNetConfig {
                blocks: 2,
                channels: 16,
                residual_scale: 0.2,
                planar,
            };
            let net = cfg.init_with(&device, false);
            let x = random([2, 1, 5, 6, 9], 1, &device);
            let target = random([2, 1, 5, 6, 9], 2, &device);
            let ours = forward(&net, &x).expect("the kernels take this network under autodiff");
            let burns = net.forward_burn(x.clone());
            let (d, s) = max_diff(ours.clone(), burns.clone());
            assert!(
                d <= 1e-5 * s.max(1.0),
                "planar {planar}: outputs differ by {d}"
            );
            assert!(d < s, "the network is not the identity");
            let grads_ours = (ours - target.clone()).powi_scalar(2).mean().backward();
            let grads_burn = (burns - target).powi_scalar(2).mean().backward();
            let convs = [
                &net.head,
                &net.blocks[0].conv1,
                &net.blocks[1].conv2,
                &net.body,
                &net.tail,
            ];
            for (i, conv) in convs.into_iter().enumerate() {
                let w = conv.weight.val();
                let (gw, rw) = (w.grad(&grads_ours).unwrap(), w.grad(&grads_burn).unwrap());
                let (d, s) = max_diff(gw, rw);
                assert!(
                    s > 0.0 && d <= 1e-4 * s,
                    "planar {planar}, conv {i}: weight gradients differ by {d} (of {s})"
                );
                let b = conv.bias.as_ref().unwrap().val();
                let (gb, rb) = (b.grad(&grads_ours).unwrap(), b.grad(&grads_burn).unwrap());
                let scale = rb.clone().abs().max().into_scalar::<f32>();
                let d = (gb - rb).abs().max().into_scalar::<f32>();
                assert!(
                    d <= 1e-4 * scale.max(1e-6),
                    "planar {planar}, conv {i}: bias gradients differ by {d}"
                );
            }
        }
    }

    /// The kernels only take channel counts they were written for: the tiny preset keeps burn.
    #[test]
    fn networks_the_kernels_do_not_take_stay_on_burn() {
        let device = Device::flex();
        let net = crate::model::Preset::Tiny
            .config()
            .init_with(&device, false);
        let x = random([1, 1, 4, 4, 4], 3, &device);
        assert!(forward(&net, &x).is_none());
        let fast = crate::model::Preset::Fast
            .config()
            .init_with(&device, false);
        assert!(forward(&fast, &x).is_some());
    }
}
