//! Weight files and tiled inference: round trips, bad files, seamless tiles.

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::{Device, Distribution, Tensor};
use mrisr::Volume;
use mrisr::infer::{TileOptions, block_on, run_tile, run_tiled};
use mrisr::model::card::{CARD_KEY, ModelCard, Preset, read_card};
use mrisr::model::{SrNetConfig, weights};
use mrisr::pipeline::Network;

fn tiny_card(net: SrNetConfig) -> ModelCard {
    ModelCard::new("test", net, "slices:2".parse().unwrap())
}

fn random_volume(dims: [usize; 3], seed: u64) -> Volume {
    // A deterministic, smooth-ish pattern with some texture.
    let mut s = seed;
    let data = (0..dims.iter().product::<usize>())
        .map(|n| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((n % 7) as f32 * 0.1) + ((s >> 40) as f32 / (1u64 << 24) as f32) * 0.2
        })
        .collect();
    Volume::from_data(dims, [1.0, 1.0, 2.0], data)
}

#[test]
fn save_load_round_trip_gives_the_same_output() {
    let device = Device::flex();
    let cfg = Preset::Tiny.config();
    let net = cfg.init_with(&device, false);
    let card = tiny_card(cfg);
    let bytes = weights::save(&net, &card).unwrap();
    // f16 storage: 4 bytes per f32 parameter would be more than this.
    assert!(
        bytes.len() < cfg.parameters() * 3 + 4096,
        "{} bytes for {} params",
        bytes.len(),
        cfg.parameters()
    );
    let (loaded, card2) = weights::load("tiny.safetensors", &bytes, &device).unwrap();
    assert_eq!(card2, card);
    // A second trip loses nothing more: f16 -> f32 -> f16 is exact.
    let again = weights::save(&loaded, &card2).unwrap();
    let (reloaded, _) = weights::load("again.safetensors", &again, &device).unwrap();

    let x = Tensor::<5>::random([1, 1, 8, 9, 10], Distribution::Uniform(0.0, 1.0), &device);
    let a = net
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let b = loaded
        .forward(x.clone())
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    let c = reloaded.forward(x).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(b, c, "a second save/load changed the weights");
    let worst = a
        .iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 2e-3, "f16 weights changed the output by {worst}");
}

#[test]
fn bad_weight_files_are_refused_with_the_file_name() {
    let device = Device::flex();
    let err = weights::load("notes.txt", b"hello, this is not a weight file", &device).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("notes.txt") && msg.contains("not an mrisr weight file"),
        "{msg}"
    );

    // A real weight file whose card describes another network than its tensors.
    let cfg = Preset::Tiny.config();
    let wrong = SrNetConfig { blocks: 2, ..cfg };
    let mut store = SafetensorsStore::from_bytes(None)
        .metadata(CARD_KEY, serde_json::to_string(&tiny_card(wrong)).unwrap());
    cfg.init(&device).save_into(&mut store).unwrap();
    let spliced = store.get_bytes().unwrap();
    assert!(read_card("spliced.safetensors", &spliced).is_ok());
    let err = weights::load("spliced.safetensors", &spliced, &device)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spliced.safetensors") && err.contains("do not fit"),
        "{err}"
    );

    // A truncated file.
    let bytes = weights::save(&cfg.init(&device), &tiny_card(cfg)).unwrap();
    let err = weights::load("cut.safetensors", &bytes[..bytes.len() / 2], &device).unwrap_err();
    assert!(err.to_string().contains("cut.safetensors"), "{err}");
}

#[test]
fn tiles_with_a_receptive_halo_match_the_whole_volume() {
    let device = Device::flex();
    let cfg = Preset::Tiny.config();
    let net = cfg.init_with(&device, false);
    let vol = random_volume([21, 17, 13], 7);
    let whole = block_on(run_tile(&net, &vol.data, vol.dims, &device)).unwrap();
    let opts = TileOptions {
        core: 6,
        halo: cfg.receptive_radius(),
    };
    let mut calls = 0;
    let tiled = block_on(run_tiled(&net, &vol, opts, &device, &mut |p| {
        calls += 1;
        assert!(p.voxels_done <= p.voxels_total);
        true
    }))
    .unwrap();
    assert_eq!(calls, 4 * 3 * 3);
    let worst = whole
        .iter()
        .zip(&tiled.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst < 1e-4,
        "tiles differ from the whole volume by {worst}"
    );

    // Too small a halo shows seams: the check above is not vacuous.
    let thin = TileOptions { core: 6, halo: 1 };
    let seamy = block_on(run_tiled(&net, &vol, thin, &device, &mut |_| true)).unwrap();
    let worst = whole
        .iter()
        .zip(&seamy.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst > 1e-4, "a 1-voxel halo should change the result");
}

#[test]
fn cancel_stops_tiled_inference() {
    let device = Device::flex();
    let net = Preset::Tiny.config().init(&device);
    let vol = random_volume([12, 12, 12], 1);
    let opts = TileOptions { core: 4, halo: 2 };
    let mut seen = 0;
    let r = block_on(run_tiled(&net, &vol, opts, &device, &mut |_| {
        seen += 1;
        seen < 3
    }));
    assert!(matches!(r, Err(mrisr::Error::Cancelled)));
    assert_eq!(seen, 3);
}

#[test]
fn upscale_puts_the_result_on_the_refined_grid() {
    let device = Device::flex();
    let cfg = Preset::Tiny.config();
    let net = cfg.init(&device);
    let card = tiny_card(cfg);
    // Thick slices along i, as in the sagittal knee series.
    let mut vol = random_volume([6, 10, 12], 3);
    vol.spacing = [1.5, 0.5, 0.5];
    vol.affine = mrisr::volume::diagonal_affine(vol.spacing);
    vol.affine[0][3] = 12.0;
    let tiles = TileOptions::for_net(&cfg, 16 * 16 * 16);
    let net = Box::new(net);
    let network = Network::Burn { net, device, tiles };
    let out = block_on(network.upscale(&card, &vol, None, &mut |_| true)).unwrap();
    let expected = vol.refined_geometry([2, 1, 1]);
    assert_eq!(out.dims, [12, 10, 12]);
    assert_eq!(out.spacing, expected.spacing);
    for r in 0..3 {
        for c in 0..4 {
            assert!(
                (out.affine[r][c] - expected.affine[r][c]).abs() < 1e-9,
                "{:?}",
                out.affine
            );
        }
    }
    assert!(out.data.iter().all(|v| v.is_finite()));
}

#[test]
fn untrained_network_returns_its_input() {
    let device = Device::flex();
    let net = Preset::Fast.config().init(&device);
    let x = Tensor::<5>::random([1, 1, 6, 7, 8], Distribution::Uniform(0.0, 1.0), &device);
    let a = x.clone().into_data().try_to_vec::<f32>().unwrap();
    let b = net.forward(x).into_data().try_to_vec::<f32>().unwrap();
    assert_eq!(
        a, b,
        "the zero tail makes the untrained network the identity"
    );
}

/// The CPU engine (mrisr::engine) and burn give the same super-resolved volume: the shipped
/// `fast` weights on a crop of the real knee, through the whole pipeline (upsampling,
/// normalisation, network, and back).
#[test]
fn cpu_engine_matches_burn_on_the_real_knee() {
    use mrisr::engine::CpuNet;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let knee = root.join("../../shared/data/ref/knee_dess_echo1.nii.gz");
    let vols = mrisr::io::nifti::read_nifti(&knee).expect("the knee reference (../shared/data)");
    // The knee's thick axis (1.5 mm) is one of the crop's axes; the pipeline finds it.
    let input = mrisr::volume::center_crop(&vols[0], [48, 40, 12]);
    let path = root.join("../www/weights/fast-mse-slicesx2.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let name = path.display().to_string();
    let device = Device::flex();
    let (net, card) = weights::load(&name, &bytes, &device).unwrap();
    let (cpu, cpu_card) = CpuNet::from_weight_file(&name, &bytes).unwrap();
    assert_eq!(card, cpu_card);

    let tiles = TileOptions::for_net(&card.net, 40 * 40 * 40);
    let net = Box::new(net);
    let burn = Network::Burn { net, device, tiles };
    let burn_out = block_on(burn.upscale(&card, &input, None, &mut |_| true)).unwrap();
    // A small memory budget: several columns, so their seams are checked too.
    let cpu = Network::Cpu {
        net: cpu,
        memory: 2 << 20,
    };
    let cpu_out = block_on(cpu.upscale(&card, &input, None, &mut |_| true)).unwrap();
    assert_eq!(cpu_out.dims, burn_out.dims);
    assert_eq!(cpu_out.affine, burn_out.affine);
    let (lo, hi) = burn_out.min_max();
    let worst = max_abs_diff(&cpu_out.data, &burn_out.data);
    assert!(
        worst <= 1e-4 * (hi - lo),
        "largest difference {worst} of a range {}",
        hi - lo
    );
}

/// The `seed` shape (64 channels, 9 blocks) with random weights, on both engines.
#[test]
fn cpu_engine_matches_burn_on_the_seed_network() {
    use mrisr::engine::{ColumnPlan, CpuNet};
    let device = Device::flex();
    let cfg = Preset::Seed.config();
    let net = cfg.init_with(&device, false);
    let bytes = weights::save(&net, &tiny_card(cfg)).unwrap();
    // Read back, so both engines use the same f16-rounded weights.
    let (net, card) = weights::load("seed", &bytes, &device).unwrap();
    let (cpu, _) = CpuNet::from_weight_file("seed", &bytes).unwrap();
    let input = random_volume([20, 14, 9], 5);
    let opts = TileOptions::for_net(&card.net, 64 * 64 * 64);
    let expected = block_on(run_tiled(&net, &input, opts, &device, &mut |_| true)).unwrap();
    let plan = ColumnPlan {
        core: 12,
        halo: cfg.receptive_radius(),
    };
    let got = mrisr::engine::run(&cpu, &input, plan, &mut |_| true).unwrap();
    let scale = expected.data.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = max_abs_diff(&got.data, &expected.data);
    assert!(
        worst <= 1e-4 * scale,
        "largest difference {worst} of a scale {scale}"
    );
    assert!(
        got.data
            .iter()
            .zip(&input.data)
            .any(|(a, b)| (a - b).abs() > 1e-3)
    );
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}
