//! The trainer on real data: the perceptual network against independent reference numbers,
//! and a tiny model whose loss falls on a crop of the knee.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use burn::tensor::{Device, Tensor, TensorData};
use mrisr::model::card::{LossKind, ModelCard, Preset};
use trainer::data::{Named, make_pairs};
use trainer::perceptual::Vgg16Features;
use trainer::train::{RunConfig, Trainer, ValSet, validate};

fn shared() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data");
    assert!(
        p.is_dir(),
        "test data expected at {} (see README)",
        p.display()
    );
    p
}

/// VGG16 relu1_2 / relu2_1 on the reference input of ../shared/data/vgg16/README.md, against
/// the float64 numbers computed there with numpy and jax.
#[test]
fn perceptual_features_match_the_reference() {
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(shared().join("vgg16/reference_features.json")).unwrap(),
    )
    .unwrap();
    let device = Device::flex();
    let vgg = Vgg16Features::load(&device).unwrap();
    // x[c,h,w] = sin(0.1 (h+1)(c+1)) cos(0.07 (w+2)), mapped to [0, 1], then ImageNet-normalised.
    let mut rgb = Vec::with_capacity(3 * 16 * 16);
    for c in 0..3 {
        for h in 0..16 {
            for w in 0..16 {
                let x =
                    (0.1 * (h + 1) as f64 * (c + 1) as f64).sin() * (0.07 * (w + 2) as f64).cos();
                rgb.push(((x + 1.0) / 2.0).clamp(0.0, 1.0) as f32);
            }
        }
    }
    let input = Tensor::<4>::from_data(TensorData::new(rgb, [1, 3, 16, 16]), &device);
    let mean = Tensor::<1>::from_floats([0.485, 0.456, 0.406], &device).reshape([1, 3, 1, 1]);
    let std = Tensor::<1>::from_floats([0.229, 0.224, 0.225], &device).reshape([1, 3, 1, 1]);
    let f = vgg.forward((input - mean) / std);
    assert_eq!(f.relu1_2.dims(), [1, 64, 16, 16]);
    assert_eq!(f.relu2_1.dims(), [1, 128, 8, 8]);
    let a = f.relu1_2.into_data().try_to_vec::<f32>().unwrap();
    let b = f.relu2_1.into_data().try_to_vec::<f32>().unwrap();

    // Sums, per-channel sums (catch a channel-order or transpose bug) and single values,
    // several of them on the border (zero padding), all read from the reference file.
    for (name, got, size) in [("relu1_2", &a, 16usize), ("relu2_1", &b, 8usize)] {
        let r = &reference[name];
        let want = r["sum"].as_f64().unwrap();
        let sum: f64 = got.iter().map(|&v| v as f64).sum();
        assert!(
            ((sum - want) / want).abs() < 1e-4,
            "{name}: sum {sum} vs reference {want}"
        );
        for (ch, want) in r["channel_sums"].as_array().unwrap().iter().enumerate() {
            let want = want.as_f64().unwrap();
            let s: f64 = got[ch * size * size..(ch + 1) * size * size]
                .iter()
                .map(|&v| v as f64)
                .sum();
            assert!(
                (s - want).abs() < 1e-4 * want.abs().max(1.0),
                "{name} channel {ch}: {s} vs {want}"
            );
        }
        let values = r["values"].as_array().unwrap();
        assert!(values.len() >= 5);
        for v in values {
            let idx: Vec<usize> = v["index_nchw"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            let want = v["value"].as_f64().unwrap();
            let g = got[(idx[1] * size + idx[2]) * size + idx[3]] as f64;
            assert!((g - want).abs() < 1e-4, "{name}{idx:?}: {g} vs {want}");
        }
    }
}

/// A tiny network, a few dozen steps on a crop of the real knee: validation error falls below
/// where it started, and the exported weights load and carry the card.
#[test]
fn tiny_model_learns_on_real_data() {
    let knee = shared().join("ref/knee_dess_echo1.nii.gz");
    let volume = mrisr::io::nifti::read_nifti_volume(&knee).unwrap();
    // A 48-voxel cube from the middle of the knee, where there is tissue.
    let crop = mrisr::volume::center_crop(&volume, [48, 48, 48]);
    let named = vec![Named {
        name: "knee".into(),
        subject: "s1".into(),
        volume: crop,
    }];
    let deg: mrisr::degrade::Degradation = "slices:2".parse().unwrap();
    let block = 16;
    let pairs = make_pairs(&named, &deg, block);
    assert_eq!(pairs.len(), 3, "one pair per axis rotation");
    let val = ValSet::new(&pairs, block, 8, 99);

    let device = Device::flex();
    let net_cfg = Preset::Tiny.config();
    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("tiny.safetensors");
    let mut card = ModelCard::new("tiny-test", net_cfg, deg.clone());
    card.block = block;
    let trainer = Trainer {
        cfg: RunConfig {
            name: "tiny-test".into(),
            net: net_cfg,
            loss: LossKind::Mse,
            block,
            batch: 8,
            steps_per_epoch: 100,
            epochs: 3,
            lr: 1e-3,
            seed: 1,
        },
        device: device.clone(),
        dir: dir.path().join("run"),
        card_template: card,
        export: Some(export.clone()),
        init: None,
    };
    // Before training: the untrained net returns its input, the cubic baseline.
    let untrained = net_cfg.init(&device);
    let ((before_psnr, _), (cubic_psnr, _)) = validate(&untrained, &val, block, &device);
    let state = trainer
        .run(&pairs, &val, false, Arc::new(AtomicBool::new(false)))
        .unwrap();
    assert_eq!(state.step, 300);
    let best = state.best_val_psnr.unwrap();
    // The state keeps the baseline, which the trainer's "never beat the baseline" warning uses.
    assert_eq!(state.baseline_val_psnr, Some(cubic_psnr));
    assert!(
        (before_psnr - cubic_psnr).abs() < 1e-3,
        "untrained {before_psnr} vs cubic {cubic_psnr}"
    );
    assert!(
        best > cubic_psnr + 0.05,
        "validation PSNR {best:.2} dB did not beat cubic ({cubic_psnr:.2} dB)"
    );

    // The log has one line per epoch, and the loss is finite.
    let log = std::fs::read_to_string(dir.path().join("run/log.jsonl")).unwrap();
    assert_eq!(log.lines().count(), 3);
    // The exported weights load, with the card saying what they are.
    let bytes = std::fs::read(&export).unwrap();
    let (_, card) = mrisr::model::weights::load("tiny.safetensors", &bytes, &device).unwrap();
    assert_eq!(card.net, net_cfg);
    // The card describes the best epoch of the log.
    let best_line = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .max_by(|a, b| {
            a["val_psnr_db"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["val_psnr_db"].as_f64().unwrap())
        })
        .unwrap();
    assert_eq!(card.steps, best_line["step"].as_u64().unwrap());
    // The card and the log went through serde_json, whose default float parsing is not always
    // exact (about 4.5% of values like these come back one ULP off): the card's PSNR equals
    // the log's exactly, and the run state's to within that ULP.
    let psnr = card.metrics.unwrap().psnr_db;
    assert_eq!(psnr, best_line["val_psnr_db"].as_f64().unwrap());
    assert!(
        (psnr - best).abs() <= f64::EPSILON * best.abs(),
        "{psnr} vs {best}"
    );

    // Resume continues from the checkpoint rather than starting over.
    let more = Trainer {
        cfg: RunConfig {
            epochs: 4,
            ..trainer.cfg.clone()
        },
        ..trainer
    };
    let state = more
        .run(&pairs, &val, true, Arc::new(AtomicBool::new(false)))
        .unwrap();
    assert_eq!(state.step, 400);

    // Ctrl-C (the flag its handler sets) stops the run within a step and leaves a checkpoint
    // of where it got to, which --resume reads.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let ctrl_c = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let longer = Trainer {
        cfg: RunConfig {
            epochs: 40,
            ..more.cfg.clone()
        },
        ..more
    };
    let stopped = longer.run(&pairs, &val, true, stop).unwrap();
    ctrl_c.join().unwrap();
    assert!(
        stopped.step >= 400 && stopped.step < 4000,
        "stopped at {}",
        stopped.step
    );
    let saved: (serde_json::Value, serde_json::Value) =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/state.json")).unwrap())
            .unwrap();
    assert_eq!(saved.0["step"].as_u64(), Some(stopped.step));

    // --init starts a new run from the exported weights: with a learning rate too small to move
    // them, its first validation is the one on their card (f16 rounding aside).
    let exported = mrisr::model::card::read_card("tiny", &std::fs::read(&export).unwrap())
        .unwrap()
        .metrics
        .unwrap()
        .psnr_db;
    let init_dir = dir.path().join("from-export");
    let card = longer.card_template.clone();
    let from_export = |net: mrisr::model::SrNetConfig| Trainer {
        cfg: RunConfig {
            name: "from-export".into(),
            net,
            epochs: 1,
            steps_per_epoch: 1,
            lr: 1e-12,
            ..longer.cfg.clone()
        },
        device: device.clone(),
        dir: init_dir.clone(),
        card_template: card.clone(),
        export: None,
        init: Some(trainer::train::InitWeights::read(&export).unwrap()),
    };
    let fine = from_export(net_cfg)
        .run(&pairs, &val, false, Arc::new(AtomicBool::new(false)))
        .unwrap();
    let first = fine.best_val_psnr.unwrap();
    assert!(
        (first - exported).abs() < 0.02,
        "started from weights that scored {exported:.3} dB, first validation {first:.3} dB"
    );
    assert!(first > cubic_psnr + 0.04, "{first} vs cubic {cubic_psnr}");
    // Weights of another network size are refused, naming the file.
    let err = from_export(Preset::Fast.config())
        .run(&pairs, &val, false, Arc::new(AtomicBool::new(false)))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tiny.safetensors") && err.contains("--preset"),
        "{err}"
    );
}

/// A few training steps on wgpu (`--backend wgpu`) move the weights as the same steps on the CPU
/// do, from the same starting weights and the same batches: burn's convolutions on the GPU
/// against mrisr's kernels in burn's autodiff on the CPU (`fast` has 16 channels). CI runs it on
/// a software Vulkan device (lavapipe, `MRISR_REQUIRE_WGPU=1`); elsewhere it is skipped when wgpu
/// finds no adapter.
#[test]
fn training_steps_on_wgpu_equal_the_cpus() {
    let tmp = tempfile::tempdir().unwrap();
    let path = |name: &str| tmp.path().join(name).to_str().unwrap().to_string();
    // Three small subjects: one trains, one validates, one is held out (`--test`).
    let data = [
        "subject02_knee_mese-t2-echo1.nii.gz",
        "subject03_brain_t1-colin27.nii.gz",
        "subject05_brain_t1-mprage-2mm.nii.gz",
    ]
    .map(|f| shared().join("train").join(f));
    let run = |backend: &str, steps: &str, init: Option<&str>, export: &str| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_trainer"));
        for d in &data {
            cmd.arg("--data").arg(d);
        }
        cmd.args(["--test", "subject03"]);
        cmd.args([
            "--preset", "fast", "--epochs", "1", "--batch", "2", "--block", "16",
        ])
        .args([
            "--val-blocks",
            "2",
            "--crop",
            "48",
            "--lr",
            "3e-3",
            "--name",
            export,
        ])
        .args([
            "--steps",
            steps,
            "--backend",
            backend,
            "--runs",
            &path("runs"),
        ])
        .args(["--export", &path(export)]);
        if let Some(init) = init {
            cmd.args(["--init", &path(init)]);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    // Starting weights whose tail is not zero any more (a fresh tail is, and so are the other
    // layers' first gradients).
    let (ok, err) = run("cpu", "2", None, "start.safetensors");
    assert!(ok, "{err}");
    let (ok, err) = run("wgpu", "4", Some("start.safetensors"), "gpu.safetensors");
    if !ok && std::env::var("MRISR_REQUIRE_WGPU").is_err() {
        eprintln!(
            "skipped: no wgpu adapter here ({})",
            err.lines().last().unwrap_or("")
        );
        return;
    }
    assert!(ok, "{err}");
    let (ok, err) = run("cpu", "4", Some("start.safetensors"), "cpu.safetensors");
    assert!(ok, "{err}");

    // Every parameter, in the order of their names, as f32 (the files hold f16).
    let flat = |name: &str| -> Vec<f32> {
        let bytes = std::fs::read(path(name)).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names = file.names();
        names.sort();
        names
            .into_iter()
            .flat_map(|n| {
                let t = file.tensor(n).unwrap();
                assert_eq!(t.dtype(), safetensors::Dtype::F16, "{n}");
                t.data()
                    .chunks_exact(2)
                    .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let (start, cpu, gpu) = (
        flat("start.safetensors"),
        flat("cpu.safetensors"),
        flat("gpu.safetensors"),
    );
    let norm = |v: &mut dyn Iterator<Item = f32>| v.map(|x| (x as f64).powi(2)).sum::<f64>().sqrt();
    let moved = norm(&mut cpu.iter().zip(&start).map(|(c, s)| c - s));
    let apart = norm(&mut cpu.iter().zip(&gpu).map(|(c, g)| c - g));
    eprintln!("the CPU moved the weights by {moved:.3e}, wgpu's steps differ by {apart:.3e}");
    assert!(
        moved > 1e-3,
        "the CPU steps did not move the weights ({moved})"
    );
    assert!(
        apart <= 1e-3 * moved,
        "wgpu's steps differ from the CPU's by {apart:.2e}, {:.3} % of how far they moved the weights",
        100.0 * apart / moved
    );
}
