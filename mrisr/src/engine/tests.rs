//! The engine against a plain whole-volume convolution written for clarity (f64, zero
//! padding), on random weights read back from a real weight file.

use super::*;
use crate::degrade::Degradation;
use crate::model::card::{CARD_KEY, ModelCard, Preset, SrNetConfig};

/// A small deterministic generator (no dependency just for tests).
pub(super) struct Lcg(pub(super) u64);
impl Lcg {
    pub(super) fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

type Tensors = Vec<(String, Vec<usize>, Vec<f32>)>;

fn random_tensors(cfg: SrNetConfig, seed: u64) -> Tensors {
    let mut rng = Lcg(seed);
    let c = cfg.channels;
    let mut out = Tensors::new();
    let mut conv = |name: String, cin: usize, cout: usize| {
        // Scaled like a trained network's weights, so activations stay O(1) through the depth.
        let s = 1.5 / ((cin * 27) as f32).sqrt();
        let w = (0..cout * cin * 27).map(|_| rng.next() * s).collect();
        let b = (0..cout).map(|_| rng.next() * 0.1).collect();
        out.push((format!("{name}.weight"), vec![cout, cin, 3, 3, 3], w));
        out.push((format!("{name}.bias"), vec![cout], b));
    };
    conv("head".into(), 1, c);
    for b in 0..cfg.blocks {
        conv(format!("blocks.{b}.conv1"), c, c);
        conv(format!("blocks.{b}.conv2"), c, c);
    }
    conv("body".into(), c, c);
    conv("tail".into(), c, 1);
    out
}

fn weight_file(cfg: SrNetConfig, tensors: &Tensors) -> Vec<u8> {
    let card = ModelCard::new(
        "test",
        cfg,
        Degradation::ThickSlices {
            factor: [1, 1, 2],
            profile: Default::default(),
        },
    );
    let bytes: Vec<(String, Vec<u8>)> = tensors
        .iter()
        .map(|(n, _, v)| (n.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((n, shape, _), (_, b))| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                    .unwrap();
            (n.clone(), view)
        })
        .collect();
    let meta = std::collections::HashMap::from([(
        CARD_KEY.to_string(),
        serde_json::to_string(&card).unwrap(),
    )]);
    safetensors::serialize(views, Some(meta)).unwrap()
}

/// A network of shape `cfg` with random weights, through a real weight file.
fn random_net(cfg: SrNetConfig) -> CpuNet {
    CpuNet::from_weight_file("t", &weight_file(cfg, &random_tensors(cfg, 1)))
        .unwrap()
        .0
}

/// One "same"-padded 3x3x3 convolution over a whole volume, channels first, i fastest.
fn conv_ref(x: &[Vec<f64>], dims: [usize; 3], w: &[f32], b: &[f32], cout: usize) -> Vec<Vec<f64>> {
    let cin = x.len();
    let [ni, nj, nk] = dims;
    let mut out = vec![vec![0.0; ni * nj * nk]; cout];
    for co in 0..cout {
        for k in 0..nk {
            for j in 0..nj {
                for i in 0..ni {
                    let mut acc = b[co] as f64;
                    for ci in 0..cin {
                        for dz in 0..3 {
                            for dy in 0..3 {
                                for dx in 0..3 {
                                    let (ii, jj, kk) = (i + dx, j + dy, k + dz);
                                    if ii < 1 || jj < 1 || kk < 1 || ii > ni || jj > nj || kk > nk {
                                        continue;
                                    }
                                    let v = x[ci][(ii - 1) + ni * ((jj - 1) + nj * (kk - 1))];
                                    acc +=
                                        v * w[(co * cin + ci) * 27 + (dz * 3 + dy) * 3 + dx] as f64;
                                }
                            }
                        }
                    }
                    out[co][i + ni * (j + nj * k)] = acc;
                }
            }
        }
    }
    out
}

/// `model::SrNet::forward`, written out.
fn forward_ref(cfg: SrNetConfig, t: &Tensors, x: &[f32], dims: [usize; 3]) -> Vec<f64> {
    let get = |name: &str| &t.iter().find(|(n, _, _)| n == name).unwrap().2;
    let conv = |x: &[Vec<f64>], name: &str, cout: usize| {
        conv_ref(
            x,
            dims,
            get(&format!("{name}.weight")),
            get(&format!("{name}.bias")),
            cout,
        )
    };
    let add = |a: &[Vec<f64>], b: &[Vec<f64>], s: f64| -> Vec<Vec<f64>> {
        a.iter()
            .zip(b)
            .map(|(a, b)| a.iter().zip(b).map(|(a, b)| a + s * b).collect())
            .collect()
    };
    let c = cfg.channels;
    let input = vec![x.iter().map(|&v| v as f64).collect::<Vec<_>>()];
    let features = conv(&input, "head", c);
    let mut h = features.clone();
    for b in 0..cfg.blocks {
        let mut a = conv(&h, &format!("blocks.{b}.conv1"), c);
        a.iter_mut().flatten().for_each(|v| *v = v.max(0.0));
        let r = conv(&a, &format!("blocks.{b}.conv2"), c);
        h = add(&h, &r, cfg.residual_scale as f64);
    }
    let g = add(&conv(&h, "body", c), &features, 1.0);
    add(&input, &conv(&g, "tail", 1), 1.0).remove(0)
}

fn check(cfg: SrNetConfig, dims: [usize; 3], core: usize) {
    let tensors = random_tensors(cfg, 7);
    let bytes = weight_file(cfg, &tensors);
    let (net, card) = CpuNet::from_weight_file("test.safetensors", &bytes).unwrap();
    assert_eq!(card.net, cfg);
    let mut rng = Lcg(3);
    let data: Vec<f32> = (0..dims.iter().product()).map(|_| rng.next()).collect();
    let input = Volume::from_data(dims, [1.0; 3], data.clone());
    let plan = ColumnPlan {
        core,
        halo: cfg.receptive_radius(),
    };
    let mut calls = 0;
    let out = run(&net, &input, plan, &mut |_| {
        calls += 1;
        true
    })
    .unwrap();
    let expected = forward_ref(cfg, &tensors, &data, dims);
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = out
        .data
        .iter()
        .zip(&expected)
        .map(|(a, b)| (*a as f64 - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst <= 1e-4 * scale.max(1.0),
        "{cfg:?} {dims:?} core {core}: worst error {worst} (scale {scale})"
    );
    // The output differs from the input: the network did something.
    assert!(
        out.data
            .iter()
            .zip(&data)
            .any(|(a, b)| (a - b).abs() > 1e-3)
    );
    assert!(calls >= dims[2]);
    let work = plan.work(&net, dims);
    assert!(work.computed >= work.needed && work.needed > 0);
}

#[test]
fn matches_plain_convolution_in_one_column() {
    check(
        SrNetConfig {
            blocks: 2,
            channels: 16,
            residual_scale: 0.2,
            planar: false,
        },
        [14, 9, 7],
        64,
    );
}

#[test]
fn matches_plain_convolution_across_columns_and_edges() {
    // Cores of 4 with a halo of 7: columns clipped at every edge of the volume.
    check(
        SrNetConfig {
            blocks: 2,
            channels: 16,
            residual_scale: 0.2,
            planar: false,
        },
        [13, 11, 5],
        4,
    );
}

#[test]
fn channels_that_are_not_a_multiple_of_the_simd_width() {
    check(
        SrNetConfig {
            blocks: 1,
            channels: 4,
            residual_scale: 1.0,
            planar: false,
        },
        [9, 8, 6],
        3,
    );
    check(
        SrNetConfig {
            blocks: 1,
            channels: 20,
            residual_scale: 0.5,
            planar: false,
        },
        [30, 5, 4],
        64,
    );
}

#[test]
fn a_single_slice_and_a_single_row() {
    check(
        SrNetConfig {
            blocks: 1,
            channels: 16,
            residual_scale: 0.2,
            planar: false,
        },
        [17, 1, 1],
        64,
    );
    check(
        SrNetConfig {
            blocks: 1,
            channels: 16,
            residual_scale: 0.2,
            planar: false,
        },
        [1, 5, 3],
        2,
    );
}

#[test]
fn cancel_stops_with_cancelled() {
    let net = random_net(Preset::Tiny.config());
    let input = Volume::zeros([8, 8, 8], [1.0; 3]);
    let plan = ColumnPlan { core: 4, halo: 5 };
    let mut n = 0;
    let r = run(&net, &input, plan, &mut |_| {
        n += 1;
        n < 3
    });
    assert!(matches!(r, Err(Error::Cancelled)));
    assert_eq!(n, 3);
}

#[test]
fn wrong_weight_files_are_refused_with_the_tensor_named() {
    let cfg = SrNetConfig {
        blocks: 1,
        channels: 4,
        residual_scale: 1.0,
        planar: false,
    };
    let mut t = random_tensors(cfg, 1);
    t.retain(|(n, _, _)| n != "body.bias");
    let e = CpuNet::from_weight_file("w.safetensors", &weight_file(cfg, &t))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("w.safetensors") && e.contains("missing body.bias"),
        "{e}"
    );

    let mut t = random_tensors(cfg, 1);
    t[0].1 = vec![4, 1, 3, 3, 1];
    t[0].2.truncate(36);
    let e = CpuNet::from_weight_file("w", &weight_file(cfg, &t))
        .unwrap_err()
        .to_string();
    assert!(e.contains("head.weight has shape [4, 1, 3, 3, 1]"), "{e}");

    let mut t = random_tensors(cfg, 1);
    t.push(("extra".into(), vec![1], vec![0.0]));
    let e = CpuNet::from_weight_file("w", &weight_file(cfg, &t))
        .unwrap_err()
        .to_string();
    assert!(e.contains("unexpected [\"extra\"]"), "{e}");

    let e = CpuNet::from_weight_file("w", b"hello")
        .unwrap_err()
        .to_string();
    assert!(e.contains("not an mrisr weight file"), "{e}");
}

#[test]
fn budget_sets_the_column_width() {
    let cfg = Preset::Fast.config();
    let net = random_net(cfg);
    let dims = [512, 512, 160];
    let small = ColumnPlan::for_budget(&net, dims, 64 << 20);
    let big = ColumnPlan::for_budget(&net, dims, 1 << 30);
    assert!(small.core < big.core);
    assert_eq!(big.halo, cfg.receptive_radius());
    assert!(small.column_bytes(&net, dims) <= 64 << 20);
    assert!(big.column_bytes(&net, dims) <= 1 << 30);
}

#[test]
fn a_whole_knee_recomputes_little_within_the_default_budget() {
    // The knee series super-resolved x2 along its slices: 512 x 512 x 160. Both presets stay
    // at or under 1.3 computed voxel-convolutions per needed one, within 1 GiB of planes.
    let dims = [512, 512, 160];
    for cfg in [Preset::Fast.config(), Preset::Seed.config()] {
        let net = random_net(cfg);
        let plan = ColumnPlan::for_budget(&net, dims, DEFAULT_MEMORY_BUDGET);
        let w = plan.work(&net, dims);
        let ratio = w.computed as f64 / w.needed as f64;
        println!("{cfg:?}: {ratio:.3} with columns of {}", plan.core);
        assert!(
            ratio <= 1.3,
            "{cfg:?}: {ratio:.3} with columns of {}",
            plan.core
        );
        assert!(plan.column_bytes(&net, dims) <= DEFAULT_MEMORY_BUDGET);
    }
}

#[test]
fn wanted_planes_equal_the_whole_run_there_for_less_work() {
    // A slab of a volume split among workers: only planes k0..k1 are wanted. They must come out
    // as a whole run gives them (the same arithmetic), the others as zeros, with less computed.
    let cfg = SrNetConfig {
        blocks: 2,
        channels: 16,
        residual_scale: 0.2,
        planar: false,
    };
    let net = random_net(cfg);
    let dims = [11, 9, 23];
    let mut rng = Lcg(5);
    let data: Vec<f32> = (0..dims.iter().product()).map(|_| rng.next()).collect();
    let input = Volume::from_data(dims, [1.0; 3], data);
    for core in [64, 4] {
        let plan = ColumnPlan {
            core,
            halo: cfg.receptive_radius(),
        };
        let whole = run(&net, &input, plan, &mut |_| true).unwrap();
        let plane = dims[0] * dims[1];
        for [k0, k1] in [[7, 16], [0, 5], [20, 23], [0, 23]] {
            let part = run_planes(&net, &input, plan, [k0, k1], &mut |_| true).unwrap();
            for k in 0..dims[2] {
                let (a, b) = (
                    &part.data[k * plane..][..plane],
                    &whole.data[k * plane..][..plane],
                );
                if (k0..k1).contains(&k) {
                    assert_eq!(a, b, "plane {k} of {k0}..{k1}, core {core}");
                } else {
                    assert!(a.iter().all(|&v| v == 0.0), "plane {k} outside {k0}..{k1}");
                }
            }
        }
    }
    // The work a slab saves: its context planes are computed only as far as needed.
    let plan = ColumnPlan {
        core: 64,
        halo: cfg.receptive_radius(),
    };
    let col = |z| stream::Column {
        dims,
        core: [[0, dims[0]], [0, dims[1]], z],
    };
    let whole = stream::planned_work(&net, col([0, 23]));
    let part = stream::planned_work(&net, col([7, 16]));
    assert_eq!(part.needed * 23, whole.needed * 9);
    assert!(part.computed < whole.computed && part.computed > part.needed);
    // Planes that are not in the volume are refused, not a panic.
    assert!(run_planes(&net, &input, plan, [5, 24], &mut |_| true).is_err());
    assert!(run_planes(&net, &input, plan, [5, 5], &mut |_| true).is_err());
}
