//! `trainer eval`: how much the weights add over cubic interpolation on held-out volumes.
//! Writes a markdown table (PSNR, SSIM, HFEN per volume and method), a PNG of the same slice
//! from every method side by side, and an animated GIF through the volume.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use image::{ImageBuffer, Luma};
use mrisr::Volume;
use mrisr::args::TileArgs;
use mrisr::model::ModelCard;
use mrisr::normalize::Normalization;
use mrisr::pipeline::Network;

use crate::data;
use crate::device::DeviceArgs;

#[derive(Args, Clone)]
pub struct EvalArgs {
    /// Weight files to compare (e.g. the MSE and the perceptual model). All must undo the same
    /// degradation.
    #[arg(long, required = true)]
    weights: Vec<PathBuf>,
    /// Held-out NIfTI files or folders (NIfTI files and DICOM series inside are used).
    #[arg(long, required = true)]
    data: Vec<PathBuf>,
    /// Folder for report.md, the PNG figures and the GIFs.
    #[arg(long, default_value = "report")]
    out: PathBuf,
    /// Only use a centred cube of this edge from each volume.
    #[arg(long)]
    crop: Option<usize>,
    #[command(flatten)]
    tiles: TileArgs,
    #[command(flatten)]
    device: DeviceArgs,
}

/// One row of the report.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Row {
    pub volume: String,
    pub method: String,
    pub psnr_db: f64,
    pub ssim: f64,
    pub hfen: f64,
}

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let (device, line) = args.device.select()?;
    eprintln!("device: {line}");
    // On the CPU, mrisr's engine runs the network (the same voxels as burn, several times
    // faster); elsewhere burn on the selected device.
    let on_cpu = device == burn::tensor::Device::flex();
    let mut models: Vec<(String, Network, ModelCard)> = Vec::new();
    for w in &args.weights {
        let bytes = std::fs::read(w).with_context(|| format!("reading {}", w.display()))?;
        let (net, card) = Network::load(
            &w.display().to_string(),
            &bytes,
            (!on_cpu).then_some(&device),
            args.tiles.memory_bytes(),
            args.tiles.max_tile_voxels,
        )?;
        if let Some((_, _, first)) = models.first() {
            anyhow::ensure!(
                first.degradation == card.degradation,
                "{} undoes {}, but {} undoes {}",
                w.display(),
                card.degradation,
                args.weights[0].display(),
                first.degradation
            );
        }
        models.push((card.name.clone(), net, card));
    }
    let deg = models[0].2.degradation.clone();
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    let mut rows = Vec::new();
    for named in data::load_all(&args.data)? {
        let mut hr = named.volume;
        if let Some(edge) = args.crop {
            hr = mrisr::volume::center_crop(&hr, [edge; 3]);
        }
        // Degrade along the volume's own slice axis, as a real fast acquisition would.
        let order = deg.canonical_order(&hr);
        let norm = Normalization::for_network(&hr);
        let target = deg.crop_to_multiple(&norm.apply(&hr).permuted(order));
        let baseline = deg.simulate(&target);
        let mask = data::tissue_mask(&target);
        let mut outputs = vec![("cubic".to_string(), baseline.clone())];
        for (name, net, _) in &models {
            let out = mrisr::infer::block_on(net.run(&baseline, &mut |_| true))?;
            outputs.push((name.clone(), out));
        }
        let range = target.min_max();
        for (method, out) in &outputs {
            rows.push(Row {
                volume: named.name.clone(),
                method: method.clone(),
                psnr_db: mrisr::metrics::psnr(
                    out,
                    &target,
                    (range.1 - range.0) as f64,
                    Some(&mask),
                ),
                ssim: mrisr::metrics::ssim(out, &target, (range.1 - range.0) as f64, Some(&mask)),
                hfen: mrisr::metrics::hfen(out, &target, Some(&mask)),
            });
            eprintln!(
                "{:<40} {:<32} {}",
                named.name,
                method,
                fmt_row(rows.last().unwrap())
            );
        }
        let mut panels: Vec<&Volume> = outputs.iter().map(|(_, v)| v).collect();
        panels.push(&target);
        let stem = mrisr::io::file_stem(&named.name);
        write_figure(&panels, &args.out.join(format!("{stem}.png")))?;
        write_gif(&panels, &args.out.join(format!("{stem}.gif")))?;
    }
    let mut md =
        String::from("| volume | method | PSNR (dB) | SSIM | HFEN |\n|---|---|---:|---:|---:|\n");
    for r in &rows {
        writeln!(
            md,
            "| {} | {} | {:.2} | {:.4} | {:.4} |",
            r.volume, r.method, r.psnr_db, r.ssim, r.hfen
        )?;
    }
    let methods: Vec<&str> = std::iter::once("cubic")
        .chain(models.iter().map(|(n, _, _)| n.as_str()))
        .collect();
    writeln!(
        md,
        "\nDegradation: {deg}. Figures: one slice through the degraded axis; panels left to right: {}, target.",
        methods.join(", ")
    )?;
    std::fs::write(args.out.join("report.md"), &md)?;
    std::fs::write(
        args.out.join("report.json"),
        serde_json::to_string_pretty(&rows)?,
    )?;
    println!("{md}");
    Ok(())
}

fn fmt_row(r: &Row) -> String {
    format!(
        "PSNR {:.2} dB  SSIM {:.4}  HFEN {:.4}",
        r.psnr_db, r.ssim, r.hfen
    )
}

/// Grey image of slice `j` (an i-k plane, which contains the degraded axis k), windowed to the
/// target's 1st-99th percentile range so panels are comparable.
fn slice_image(v: &Volume, j: usize, lo: f32, hi: f32) -> ImageBuffer<Luma<u8>, Vec<u8>> {
    let [ni, _, nk] = v.dims;
    ImageBuffer::from_fn(ni as u32, nk as u32, |x, y| {
        let val = v.get(x as usize, j, nk - 1 - y as usize);
        Luma([(((val - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0) as u8])
    })
}

/// Display window: from 0 to the 97th percentile of tissue, so the few very bright voxels
/// (fluid, fat) saturate instead of darkening everything else.
fn window(v: &Volume) -> (f32, f32) {
    let mask = data::tissue_mask(v);
    let mut s: Vec<f32> = v
        .data
        .iter()
        .zip(&mask)
        .filter(|(_, m)| **m)
        .map(|(x, _)| *x)
        .step_by(3)
        .collect();
    if s.is_empty() {
        return (0.0, 1.0);
    }
    s.sort_by(f32::total_cmp);
    (0.0, s[s.len() * 97 / 100].max(1e-6))
}

/// The panels side by side (2-voxel gap), slice `j`; the spacing of the degraded axis is
/// ignored, so voxels are drawn square.
fn row_image(panels: &[&Volume], j: usize) -> ImageBuffer<Luma<u8>, Vec<u8>> {
    let target = panels.last().expect("at least the target");
    let (lo, hi) = window(target);
    let [ni, _, nk] = target.dims;
    let gap = 2;
    let mut img = ImageBuffer::from_pixel(
        ((ni + gap) * panels.len() - gap) as u32,
        nk as u32,
        Luma([0u8]),
    );
    for (p, v) in panels.iter().enumerate() {
        image::imageops::replace(
            &mut img,
            &slice_image(v, j, lo, hi),
            ((ni + gap) * p) as i64,
            0,
        );
    }
    img
}

pub(crate) fn write_figure(panels: &[&Volume], path: &std::path::Path) -> anyhow::Result<()> {
    // The slice with the most signal in the target: the middle one is often mostly air.
    let t = panels.last().expect("at least the target");
    let [ni, nj, nk] = t.dims;
    let j = (nj / 10..nj - nj / 10)
        .max_by(|&a, &b| {
            let sum = |j: usize| {
                (0..nk)
                    .flat_map(|k| (0..ni).map(move |i| (i, k)))
                    .map(|(i, k)| t.get(i, j, k) as f64)
                    .sum::<f64>()
            };
            sum(a).total_cmp(&sum(b))
        })
        .unwrap_or(nj / 2);
    row_image(panels, j)
        .save(path)
        .with_context(|| format!("writing {}", path.display()))
}

fn write_gif(panels: &[&Volume], path: &std::path::Path) -> anyhow::Result<()> {
    use image::codecs::gif::{GifEncoder, Repeat};
    let file =
        std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    let mut enc = GifEncoder::new_with_speed(file, 10);
    enc.set_repeat(Repeat::Infinite)?;
    let nj = panels[0].dims[1];
    // At most 48 frames, from the middle 80 % of the volume (the edges are mostly air).
    let (from, to) = (nj / 10, nj - nj / 10);
    let step = ((to - from) / 48).max(1);
    for j in (from..to).step_by(step) {
        let grey = row_image(panels, j);
        let rgba = image::DynamicImage::ImageLuma8(grey).to_rgba8();
        enc.encode_frame(image::Frame::from_parts(
            rgba,
            0,
            0,
            image::Delay::from_numer_denom_ms(80, 1),
        ))?;
    }
    Ok(())
}
