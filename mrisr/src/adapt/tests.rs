use super::pairs::{Cut, PairSampler, Rng};
use super::*;
use crate::degrade::thick_slices;
use crate::engine::{self, ColumnPlan, CpuNet};
use crate::pipeline::prepare;
use crate::resample::resample;

/// A sharp, irregular 1D profile (mm -> intensity).
fn f(x: f64) -> f32 {
    ((x * 1.3).sin() + 0.5 * (x * 3.1).cos() + if (x as i64) % 5 == 0 { 1.0 } else { 0.0 }) as f32
}

#[test]
fn pairs_imitate_the_thick_axis() {
    // High-res content f(x) + f(z) on 0.5 mm voxels; the scan has 2 mm slices along z (box of 4).
    let (n, pixel) = (32usize, 0.5);
    let hr = Volume::from_data(
        [n, 32, n],
        [pixel; 3],
        (0..n * 32 * n)
            .map(|v| {
                let (i, k) = (v % n, v / (n * 32));
                f(i as f64 * pixel) + f(k as f64 * pixel)
            })
            .collect(),
    );
    let scan = thick_slices(&hr, [1, 1, 4], SliceProfile::Box);
    let task = Task::for_scan(&scan, Some(4.0), None, SliceProfile::Box).unwrap();
    assert_eq!(
        (task.geometry.thick_axis, task.geometry.in_plane),
        (2, [0, 1])
    );
    let sampler = PairSampler::new(&scan, &task, [16, 8]).unwrap();
    assert_eq!(sampler.window, (8, 32));
    let (mut x, mut y) = (vec![0f32; 16 * 8], vec![0f32; 16 * 8]);
    let cut = Cut {
        plane: 3,
        swap: false,
        start_mm: 0.0,
        other: 0,
        flip: [false, false],
    };
    sampler.cut(&cut, &mut x, &mut y);
    // The same task along the real thick axis of the high-res volume: box of 4, B-spline back.
    let line = Volume::from_data(
        [1, 1, n],
        [1.0, 1.0, pixel],
        (0..n).map(|k| f(k as f64 * pixel)).collect(),
    );
    let thick = thick_slices(&line, [1, 1, 4], SliceProfile::Box);
    let up = resample(&thick, [1, 1, n], task.baseline);
    for r in 0..8 {
        for j in 0..16 {
            // Input minus target: the constant of the other axis cancels.
            let pair = x[r * 16 + j] - y[r * 16 + j];
            let real = up.data[8 + j] - line.data[8 + j];
            assert!(
                (pair - real).abs() < 1e-4,
                "row {r} at {j}: {pair} vs {real}"
            );
        }
    }
    // Flips mirror the patch; random cuts stay finite and differ.
    let mut flipped = (vec![0f32; 128], vec![0f32; 128]);
    let cut = Cut {
        flip: [true, false],
        ..cut
    };
    sampler.cut(&cut, &mut flipped.0, &mut flipped.1);
    assert_eq!(flipped.1[15], y[0]);
    let mut rng = Rng::new(7);
    sampler.sample(&mut rng, &mut x, &mut y);
    let first = x.clone();
    sampler.sample(&mut rng, &mut x, &mut y);
    assert!(x.iter().all(|v| v.is_finite()) && x != first);
}

#[test]
fn pairs_need_room() {
    let scan = Volume::zeros([20, 20, 6], [0.5, 0.5, 4.0]);
    let task = Task::for_scan(&scan, None, None, SliceProfile::Box).unwrap();
    // 20 voxels of 0.5 mm cannot hold a window of 4 mm slices for a 48-sample patch.
    let e = PairSampler::new(&scan, &task, [48, 16])
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("too small"), "{e}");
}

fn generic() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../www/weights/fast-mse-slicesx2.safetensors"
    );
    std::fs::read(path).expect("the published weights are in the repository")
}

fn run(net: &CpuNet, v: &Volume) -> Volume {
    let plan = ColumnPlan::for_budget(net, v.dims, 1 << 28);
    engine::run(net, v, plan, &mut |_| true).unwrap()
}

#[test]
fn planar_start_equals_the_generic_network_on_flat_content() {
    let planar = planar_from_generic("fast", &generic()).unwrap();
    let (pnet, card) = CpuNet::from_weight_file("planar", &planar).unwrap();
    assert!(card.net.planar && pnet.layers.iter().all(|l| l.conv.planar));
    let (gnet, _) = CpuNet::from_weight_file("fast", &generic()).unwrap();
    // g(j, k) on axes 1 and 2, constant along axis 0.
    let (n0, n1, n2) = (24, 14, 18);
    let g = |j: usize, k: usize| f(j as f64 * 0.7) * f(k as f64 * 0.3 + 1.0);
    let flat = Volume::from_data(
        [n0, n1, n2],
        [1.0; 3],
        (0..n0 * n1 * n2)
            .map(|v| g(v / n0 % n1, v / (n0 * n1)))
            .collect(),
    );
    let out3d = run(&gnet, &flat);
    // The planar network sees generic axis 2 as its axis 0 and generic axis 1 as its axis 1.
    let image = Volume::from_data(
        [n2, n1, 1],
        [1.0; 3],
        (0..n1)
            .flat_map(|j| (0..n2).map(move |k| g(j, k)))
            .collect(),
    );
    let out2d = run(&pnet, &image);
    let mut moved = 0f32;
    for j in 0..n1 {
        for k in 0..n2 {
            let (a, b) = (out2d.get(k, j, 0), out3d.get(n0 / 2, j, k));
            // The planar kernels are stored in f16 like the generic ones (sums rounded once).
            assert!((a - b).abs() < 2e-3, "at j {j} k {k}: {a} vs {b}");
            moved = moved.max((a - g(j, k)).abs());
        }
    }
    assert!(moved > 0.05, "the network must do something");
    // Wrong shapes are refused with the file's name.
    let (planar_card_bytes, name) = (planar, "planar.safetensors");
    let e = planar_from_generic(name, &planar_card_bytes)
        .unwrap_err()
        .to_string();
    assert!(e.contains(name) && e.contains("2D"), "{e}");
}

#[test]
fn an_adapted_card_runs_both_orientations_on_the_fov_keeping_grid() {
    // An untrained planar network is the identity: the result is the baseline itself.
    let mut scan = Volume::from_data(
        [20, 18, 7],
        [0.6, 0.6, 3.0],
        (0..20 * 18 * 7).map(|v| (v % 13) as f32 * 10.0).collect(),
    );
    scan.affine[0][3] = 5.0;
    scan.meta.description = "T2 TSE".into();
    let task = Task::for_scan(&scan, Some(2.5), None, SliceProfile::Box).unwrap();
    let adaptation = Adaptation {
        series: "T2 TSE".into(),
        task: task.clone(),
        steps: 0,
        pair_loss_before: 0.0,
        pair_loss_after: 0.0,
        started_from: None,
        seconds: 0.0,
    };
    let card = card(network(), adaptation);
    let prepared = prepare(&card, &scan, None).unwrap();
    assert_eq!(prepared.views.len(), 2);
    assert_eq!(prepared.views[0].input.dims, [18, 20, 18]);
    assert_eq!(prepared.views[1].input.dims, [18, 18, 20]);
    let outputs: Vec<Volume> = prepared.views.iter().map(|v| v.input.clone()).collect();
    let out = prepared.finish(&outputs, &card, &scan.meta);
    let expected = resample(&scan, [20, 18, 18], task.baseline);
    assert_eq!(out.dims, expected.dims);
    assert_eq!(out.affine, expected.affine);
    for (a, b) in out.data.iter().zip(&expected.data) {
        assert!((a - b).abs() < 1e-3);
    }
    assert!(out.meta.description.contains("learned x2.50"));
    let rows = card.summary();
    assert!(
        rows.iter()
            .any(|(k, v)| *k == "Learned from" && v.contains("x2.50"))
    );
    // An isotropic volume gets a clear refusal, not a useless run.
    let iso = Volume::zeros([20, 20, 20], [1.0; 3]);
    let e = prepare(&card, &iso, None).err().unwrap().to_string();
    assert!(e.contains("isotropic"), "{e}");
}

#[test]
fn simulated_thick_slices_forget_the_source_thickness() {
    // A 3D series with 1.5 mm partitions whose sidecar says SliceThickness 1.5 mm, made into
    // 6 mm box slices: learning must model 6 mm slices, not 1.5 mm ones with 4.5 mm gaps.
    let mut hr = Volume::zeros([32, 64, 64], [1.5, 0.3125, 0.3125]);
    hr.meta.slice_thickness_mm = Some(1.5);
    let scan = thick_slices(&hr, [4, 1, 1], SliceProfile::Box);
    assert_eq!(scan.meta.slice_thickness_mm, None);
    let task = Task::for_scan(&scan, Some(4.0), None, SliceProfile::Box).unwrap();
    assert!((task.geometry.thickness_mm - 6.0).abs() < 1e-9);
    assert_eq!(task.geometry.gap_mm(), 0.0);
    // Untouched along every axis: the source's thickness stays.
    let same = thick_slices(&hr, [1, 1, 1], SliceProfile::Box);
    assert_eq!(same.meta.slice_thickness_mm, Some(1.5));
}

#[test]
fn learning_feeds_the_network_what_the_generic_model_was_trained_on() {
    // Learning starts from the generic weights: its input is their baseline (Keys cubic), not
    // the stronger B-spline (which scored lower once learned: README).
    let scan = Volume::zeros([64, 64, 8], [0.5, 0.5, 3.0]);
    let task = Task::for_scan(&scan, None, None, SliceProfile::Box).unwrap();
    let generic = crate::model::card::read_card("fast", &generic()).unwrap();
    assert_eq!(task.baseline, generic.degradation.baseline_method());
    assert_eq!(task.baseline, Method::Cubic);
}
