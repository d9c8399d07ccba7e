//! CPU engine throughput on a weight file (plain harness, no burn).
//!
//!     cargo bench -p mrisr --no-default-features --bench engine [-- WEIGHTS [EDGE] [RUNS]]
//!
//! Runs the network on an EDGE^3 volume of smooth noise (default: the shipped `fast` weights,
//! 64^3, 3 runs after a warm-up) and prints output Mvox/s and GFLOP/s (2 x multiply-adds of
//! the network per output voxel) of the median run, with the threads rayon uses.
//! `trainer bench` puts the same figures next to burn and the PyTorch peer (BENCHMARKS.md).

use std::time::Instant;

use mrisr::Volume;
use mrisr::engine::{ColumnPlan, CpuNet, DEFAULT_MEMORY_BUDGET, run};

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let weights = args.first().cloned().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../www/weights/fast-mse-slicesx2.safetensors"
        )
        .into()
    });
    let edge: usize = args.get(1).map_or(64, |s| s.parse().expect("EDGE"));
    let runs: usize = args.get(2).map_or(3, |s| s.parse().expect("RUNS"));
    let bytes = std::fs::read(&weights).expect("read weights");
    let (net, card) = CpuNet::from_weight_file(&weights, &bytes).expect("weights");
    let dims = [edge; 3];
    let data = (0..edge * edge * edge)
        .map(|n| ((n % 97) as f32 * 0.37).sin() * 0.5 + 0.5)
        .collect();
    let input = Volume::from_data(dims, [1.0; 3], data);
    let plan = ColumnPlan::for_budget(&net, dims, DEFAULT_MEMORY_BUDGET);
    let work = plan.work(&net, dims);
    let mut times = Vec::new();
    for r in 0..=runs {
        let t = Instant::now();
        std::hint::black_box(run(&net, &input, plan, &mut |_| true).unwrap());
        if r > 0 {
            times.push(t.elapsed().as_secs_f64());
        }
    }
    times.sort_by(f64::total_cmp);
    let t = times[times.len() / 2];
    let vox = (edge * edge * edge) as f64;
    println!(
        "{} ({}), {edge}^3, {} threads, columns of {} + halo {}: {:.3} Mvox/s, {:.1} GFLOP/s, \
         computed/needed {:.2}",
        card.name,
        card.net.describe(),
        rayon::current_num_threads(),
        plan.core,
        plan.halo,
        vox / t / 1e6,
        vox * 2.0 * card.net.macs_per_voxel() as f64 / t / 1e9,
        work.computed as f64 / work.needed as f64,
    );
}
