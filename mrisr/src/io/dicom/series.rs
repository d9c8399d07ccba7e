//! Grouping images into series and volumes, and assembling the volumes.
//!
//! Like dcm2niix, images are split by SeriesInstanceUID, matrix size, orientation, echo and
//! image kind (magnitude / phase / field map...). Within a group, slices are placed by their
//! ImagePositionPatient projected on the slice normal; when the same positions repeat, each
//! repetition is one more volume (fMRI time points), ordered by acquisition / temporal
//! position / instance number.

use std::collections::HashMap;

use super::error::{ImageError, SeriesProblem};
use super::geometry::{
    self, AxisMap, Reorient, V3, add_scaled, cross, dot, natural_affine, scale, sub, unit,
};
use super::header::{FileInfo, FrameInfo};
use super::{DicomInput, MAX_VOXELS, Series, SourceAttributes, decode, place, read, voxel_count};
use crate::{Affine, Error, Metadata, Result, Volume};

/// Positions closer than this along the slice normal are the same slice (mm).
const SAME_POSITION_MM: f64 = 0.01;

/// One stored 2D image (a frame, or one tile of a mosaic frame) placed in a volume.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SliceRef {
    pub file: usize,
    pub frame: usize,
    pub tile: Option<usize>,
    pub slope: f64,
    pub intercept: f64,
}

/// Everything [`load_series`] needs, decided at scan time.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plan {
    pub inputs: Vec<DicomInput>,
    /// (rows, cols) of each stored frame, per file, as the header says.
    pub frame_size: Vec<(usize, usize)>,
    /// Mosaic tiles per row/column (1 for ordinary images).
    pub mosaic_grid: usize,
    /// Natural grid: i = column, j = row, k = slice.
    pub natural_dims: [usize; 3],
    pub natural_affine: Affine,
    pub map: Option<AxisMap>,
    /// `slices[v][k]`: the image that fills slice k of volume v.
    pub slices: Vec<Vec<SliceRef>>,
    pub attrs: SourceAttributes,
    /// SliceThickness of the first image (mm), if it says.
    pub slice_thickness: Option<f64>,
    /// (SOPClassUID, SOPInstanceUID, NumberOfFrames) of each file.
    pub sop: Vec<(String, String, usize)>,
}

/// Sort key for images at one position: earlier acquisitions first.
type TimeKey = (
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Vec<i64>,
    usize,
    usize,
);

fn time_key(info: &FileInfo, fr: &FrameInfo, file: usize, frame: usize) -> TimeKey {
    (
        info.acquisition_number,
        fr.temporal,
        info.instance_number,
        fr.dim_index.clone(),
        file,
        frame,
    )
}

fn group_key(info: &FileInfo, fr: &FrameInfo) -> String {
    let iop = match fr.iop {
        Some(o) => o
            .iter()
            .map(|v| format!("{:.3}", v + 0.0))
            .collect::<Vec<_>>()
            .join(","),
        None => "none".into(),
    };
    let echo = match (fr.echo_number, fr.echo_time) {
        (Some(n), _) => format!("e{n}"),
        (None, Some(t)) => format!("t{t:.2}"),
        _ => String::new(),
    };
    format!(
        "{}|{}x{}|{}|{:?}|{}|{}|{}",
        info.series_uid,
        info.cols,
        info.rows,
        info.samples_per_pixel,
        info.mosaic,
        iop,
        echo,
        fr.image_kind
    )
}

/// Groups scanned files into series, each with its assembly plan.
pub(crate) fn build_series(files: Vec<(DicomInput, FileInfo)>) -> Vec<Series> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
    for (fi, (_, info)) in files.iter().enumerate() {
        for (fr_i, fr) in info.frames.iter().enumerate() {
            let key = group_key(info, fr);
            groups
                .entry(key.clone())
                .or_insert_with(|| {
                    order.push(key);
                    Vec::new()
                })
                .push((fi, fr_i));
        }
    }
    let mut out: Vec<Series> = order
        .iter()
        .map(|k| plan_group(&files, &groups[k]))
        .collect();
    // Echoes without EchoNumbers (enhanced files split by echo time): number them in the order
    // they were met, as dcm2niix's _e1, _e2 names do.
    for i in 0..out.len() {
        if out[i].echo.is_none() {
            let same: Vec<usize> = (0..out.len())
                .filter(|&j| out[j].uid == out[i].uid && out[j].echo.is_none())
                .collect();
            if same.len() > 1 {
                for (n, j) in same.into_iter().enumerate() {
                    out[j].echo = Some(n as i64 + 1);
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (a.number, &a.uid, a.echo)
            .partial_cmp(&(b.number, &b.uid, b.echo))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    out
}

fn plan_group(files: &[(DicomInput, FileInfo)], items: &[(usize, usize)]) -> Series {
    // Only the files of this group go into its plan, renumbered.
    let mut file_ids: Vec<usize> = items.iter().map(|&(f, _)| f).collect();
    file_ids.sort_unstable();
    file_ids.dedup();
    let local: HashMap<usize, usize> = file_ids.iter().enumerate().map(|(l, &g)| (g, l)).collect();
    let (_, info0) = &files[items[0].0];
    let fr0 = &info0.frames[items[0].1];

    let mut series = Series {
        uid: info0.series_uid.clone(),
        number: info0.series_number,
        description: info0.description.clone(),
        modality: info0.modality.clone(),
        dims: [0; 3],
        spacing: [0.0; 3],
        volumes: 0,
        echo: fr0.echo_number,
        files: file_ids.iter().map(|&g| files[g].0.name()).collect(),
        warnings: Vec::new(),
        problem: None,
        plan: Plan {
            inputs: file_ids.iter().map(|&g| files[g].0.clone()).collect(),
            frame_size: file_ids
                .iter()
                .map(|&g| (files[g].1.rows, files[g].1.cols))
                .collect(),
            attrs: info0.attrs.clone(),
            slice_thickness: fr0.slice_thickness.filter(|t| t.is_finite() && *t > 0.0),
            sop: file_ids
                .iter()
                .map(|&g| {
                    let i = &files[g].1;
                    (
                        i.sop_class_uid.clone(),
                        i.sop_instance_uid.clone(),
                        i.number_of_frames,
                    )
                })
                .collect(),
            ..Plan::default()
        },
    };
    if !fr0.image_kind.is_empty() {
        series.description = format!("{} ({})", series.description, fr0.image_kind.to_lowercase())
            .trim()
            .to_string();
    }
    let result = if info0.mosaic.is_some() {
        plan_mosaic(files, items, &local, &mut series)
    } else {
        plan_stack(files, items, &local, &mut series)
    };
    match result {
        Ok(()) => {
            let map = series.plan.map.unwrap_or(AxisMap::IDENTITY);
            let dims = map.out_dims(series.plan.natural_dims);
            let affine = map.affine(series.plan.natural_dims, &series.plan.natural_affine);
            series.dims = dims;
            series.spacing = Volume::spacing_from_affine(&affine);
            series.volumes = series.plan.slices.len();
            let vox = voxel_count(&dims);
            if vox.saturating_mul(series.volumes) > MAX_VOXELS {
                let volumes = series.volumes;
                series.problem = Some(SeriesProblem::TooLarge { volumes, dims }.to_string());
            }
        }
        Err(p) => series.problem = Some(p.to_string()),
    }
    series
}

fn pixel_spacing(fr: &FrameInfo, series: &mut Series) -> (f64, f64) {
    match fr.pixel_spacing {
        Some([r, c]) if r > 0.0 && c > 0.0 => (r, c),
        _ => {
            series
                .warnings
                .push("no PixelSpacing: 1 mm pixels assumed".into());
            (1.0, 1.0)
        }
    }
}

fn orientation(fr: &FrameInfo, series: &mut Series) -> Result<(V3, V3), SeriesProblem> {
    match fr.iop {
        Some(o) => {
            let r = unit([o[0], o[1], o[2]]);
            let c = unit([o[3], o[4], o[5]]);
            match (r, c) {
                (Some(r), Some(c)) if unit(cross(r, c)).is_some() => Ok((r, c)),
                _ => Err(SeriesProblem::Orientation(o)),
            }
        }
        None => {
            series.warnings.push(
                "no ImageOrientationPatient: axial orientation (1\\0\\0\\0\\1\\0) assumed".into(),
            );
            Ok(([1.0, 0.0, 0.0], [0.0, 1.0, 0.0]))
        }
    }
}

/// Slice spacing from the header, for single slices, mosaics and stacks without positions.
fn header_slice_spacing(info: &FileInfo, fr: &FrameInfo) -> f64 {
    [info.spacing_between_slices, fr.slice_thickness]
        .into_iter()
        .flatten()
        .find(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(1.0)
}

fn plan_mosaic(
    files: &[(DicomInput, FileInfo)],
    items: &[(usize, usize)],
    local: &HashMap<usize, usize>,
    series: &mut Series,
) -> Result<(), SeriesProblem> {
    let (_, info0) = &files[items[0].0];
    let fr0 = &info0.frames[items[0].1];
    let n = info0.mosaic.unwrap_or(1);
    let grid = (n as f64).sqrt().ceil() as usize;
    let (tr, tc) = (info0.rows / grid, info0.cols / grid);
    if tr == 0 || tc == 0 {
        return Err(SeriesProblem::MosaicTooSmall {
            images: n,
            cols: info0.cols,
            rows: info0.rows,
        });
    }
    let (row, col) = orientation(fr0, series)?;
    let Some(ipp) = fr0.ipp else {
        return Err(SeriesProblem::MosaicWithoutPosition);
    };
    let (dr, dc) = pixel_spacing(fr0, series);
    let dz = header_slice_spacing(info0, fr0);
    let col_i = scale(row, dc);
    let col_j = scale(col, dr);
    // The stored position is the corner of the whole mosaic; move it to the first tile.
    let origin = add_scaled(
        add_scaled(ipp, col_i, (info0.cols - tc) as f64 / 2.0),
        col_j,
        (info0.rows - tr) as f64 / 2.0,
    );
    // Tiles are stored in Siemens order; dcm2niix keeps it and points k along the CSA normal.
    let normal = cross(row, col);
    let csa = info0.slice_normal.unwrap_or([0.0, 0.0, 1.0]);
    let sign = if dot(normal, csa) < 0.0 { -1.0 } else { 1.0 };
    let col_k = scale(normal, dz * sign);
    let mut vols: Vec<(TimeKey, usize, usize)> = items
        .iter()
        .map(|&(f, fr)| (time_key(&files[f].1, &files[f].1.frames[fr], f, fr), f, fr))
        .collect();
    vols.sort_by(|a, b| a.0.cmp(&b.0));
    series.plan.mosaic_grid = grid;
    series.plan.natural_dims = [tc, tr, n];
    series.plan.natural_affine = natural_affine(col_i, col_j, col_k, origin);
    series.plan.slices = vols
        .iter()
        .map(|&(_, f, fr)| {
            let fi = &files[f].1.frames[fr];
            (0..n)
                .map(|t| SliceRef {
                    file: local[&f],
                    frame: fr,
                    tile: Some(t),
                    slope: fi.slope,
                    intercept: fi.intercept,
                })
                .collect()
        })
        .collect();
    set_final_map(series, info0.is_3d_acq && n > 1 && vols.len() == 1);
    Ok(())
}

fn plan_stack(
    files: &[(DicomInput, FileInfo)],
    items: &[(usize, usize)],
    local: &HashMap<usize, usize>,
    series: &mut Series,
) -> Result<(), SeriesProblem> {
    let (_, info0) = &files[items[0].0];
    let fr0 = &info0.frames[items[0].1];
    let (row, col) = orientation(fr0, series)?;
    let (dr, dc) = pixel_spacing(fr0, series);
    let col_i = scale(row, dc);
    let col_j = scale(col, dr);
    let normal = cross(row, col);
    let frame = |&(f, fr): &(usize, usize)| &files[f].1.frames[fr];
    let missing = items.iter().filter(|it| frame(it).ipp.is_none()).count();
    let slice_ref = |&(f, fr): &(usize, usize)| {
        let fi = &files[f].1.frames[fr];
        SliceRef {
            file: local[&f],
            frame: fr,
            tile: None,
            slope: fi.slope,
            intercept: fi.intercept,
        }
    };
    let tkey = |&(f, fr): &(usize, usize)| time_key(&files[f].1, &files[f].1.frames[fr], f, fr);

    let (positions, col_k, origin): (Vec<Vec<(usize, usize)>>, V3, V3) = if missing == items.len() {
        // No positions at all: one volume in instance order, spacing from the header.
        series.warnings.push(
            "no ImagePositionPatient: slices ordered by InstanceNumber, spacing from the header, origin at 0".into(),
        );
        let mut sorted = items.to_vec();
        sorted.sort_by_key(|it| (files[it.0].1.instance_number, tkey(it)));
        let dz = header_slice_spacing(info0, fr0);
        (
            sorted.into_iter().map(|it| vec![it]).collect(),
            scale(normal, dz),
            [0.0; 3],
        )
    } else if missing > 0 {
        return Err(SeriesProblem::MissingPositions {
            missing,
            images: items.len(),
        });
    } else {
        let dist = |it: &(usize, usize)| dot(frame(it).ipp.unwrap_or_default(), normal);
        let mut sorted = items.to_vec();
        sorted.sort_by(|a, b| {
            dist(a)
                .total_cmp(&dist(b))
                .then_with(|| tkey(a).cmp(&tkey(b)))
        });
        let mut clusters: Vec<Vec<(usize, usize)>> = Vec::new();
        let mut last = f64::NEG_INFINITY;
        for it in sorted {
            let d = dist(&it);
            if d - last > SAME_POSITION_MM || clusters.is_empty() {
                clusters.push(Vec::new());
            }
            last = d;
            clusters.last_mut().expect("pushed above").push(it);
        }
        for c in &mut clusters {
            c.sort_by_key(|it| tkey(it));
        }
        let nv = clusters[0].len();
        if clusters.iter().any(|c| c.len() != nv) {
            let lo = clusters.iter().map(Vec::len).min().unwrap_or(0);
            let hi = clusters.iter().map(Vec::len).max().unwrap_or(0);
            return Err(SeriesProblem::UnevenPositions {
                images: items.len(),
                positions: clusters.len(),
                lo,
                hi,
            });
        }
        let first = frame(&clusters[0][0]).ipp.unwrap_or_default();
        let np = clusters.len();
        let col_k = if np > 1 {
            let last = frame(&clusters[np - 1][0]).ipp.unwrap_or_default();
            let step = scale(sub(last, first), 1.0 / (np - 1) as f64);
            check_gaps(&clusters, &dist, step, normal, series);
            step
        } else {
            scale(normal, header_slice_spacing(info0, fr0))
        };
        (clusters, col_k, first)
    };
    let np = positions.len();
    let nv = positions[0].len();
    series.plan.mosaic_grid = 1;
    series.plan.natural_dims = [info0.cols, info0.rows, np];
    series.plan.natural_affine = natural_affine(col_i, col_j, col_k, origin);
    series.plan.slices = (0..nv)
        .map(|v| positions.iter().map(|c| slice_ref(&c[v])).collect())
        .collect();
    set_final_map(series, info0.is_3d_acq && np > 1 && nv == 1);
    Ok(())
}

/// dcm2niix's last step: a single 3D acquisition is reoriented to the nearest RAS+ axis order;
/// everything else only has its rows flipped.
fn set_final_map(series: &mut Series, single_3d_volume: bool) {
    let kind = if single_3d_volume {
        Reorient::Ortho
    } else {
        Reorient::FlipY
    };
    series.plan.map = Some(geometry::final_map(
        kind,
        series.plan.natural_dims,
        &series.plan.natural_affine,
    ));
}

/// Warns when slice gaps are uneven or the stack is sheared (gantry tilt).
fn check_gaps(
    clusters: &[Vec<(usize, usize)>],
    dist: &dyn Fn(&(usize, usize)) -> f64,
    step: V3,
    normal: V3,
    series: &mut Series,
) {
    let d: Vec<f64> = clusters.iter().map(|c| dist(&c[0])).collect();
    let gaps: Vec<f64> = d.windows(2).map(|w| w[1] - w[0]).collect();
    let lo = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = gaps.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean = (d[d.len() - 1] - d[0]) / gaps.len() as f64;
    if hi - lo > 0.01 * mean.abs() + 1e-3 {
        series.warnings.push(format!(
            "uneven slice spacing: gaps from {lo:.4} to {hi:.4} mm; the volume assumes a uniform {mean:.4} mm"
        ));
    }
    let along = dot(step, normal);
    let off = geometry::norm(sub(step, scale(normal, along)));
    if off > 1e-3 * along.abs().max(1e-6) && off > 1e-4 {
        series.warnings.push(format!(
            "slices are sheared ({off:.4} mm per slice off the normal, gantry tilt?): the affine keeps the shear"
        ));
    }
}

/// Decodes the files of `series` and assembles its volumes (one per time point / repetition),
/// with voxel order and affine as dcm2niix writes them.
///
/// Errors name the file that could not be decoded and why (for example its transfer syntax),
/// or the reason the series cannot be assembled.
pub fn load_series(series: &Series) -> Result<Vec<Volume>> {
    check_loadable(series)?;
    let volumes = fill_volumes(&series.plan)?;
    Ok(volumes_with_geometry(series, volumes))
}

/// Refuses a series with a problem found by the scan, without voxels or too large.
fn check_loadable(series: &Series) -> Result<()> {
    if let Some(p) = &series.problem {
        return Err(Error::Invalid(format!(
            "series {} \"{}\": {p}",
            series.uid, series.description
        )));
    }
    let plan = &series.plan;
    let nvox = voxel_count(&plan.natural_dims);
    if nvox == 0 || plan.slices.is_empty() {
        return Err(Error::Invalid(format!(
            "series {} \"{}\" has no voxels",
            series.uid, series.description
        )));
    }
    if nvox.saturating_mul(plan.slices.len()) > MAX_VOXELS {
        return Err(Error::Invalid(format!(
            "series {} is too large ({} volumes of {nvox} voxels)",
            series.uid,
            plan.slices.len()
        )));
    }
    Ok(())
}

/// Decodes the files of `plan` and places their images in one output grid per volume.
/// Voxels go straight to their place in the final (reoriented) grid: no second copy.
fn fill_volumes(plan: &Plan) -> Result<Vec<Vec<f32>>> {
    let map = plan.map.unwrap_or(AxisMap::IDENTITY);
    let nvox = voxel_count(&plan.natural_dims);
    let mut volumes: Vec<Vec<f32>> = (0..plan.slices.len())
        .map(|_| place::zeroed_grid(nvox))
        .collect();
    let (by_file, files) = files_in_slice_order(plan);
    // Files are decoded a batch at a time (in parallel natively), then placed: at most one
    // batch of decoded files is held besides the volumes.
    for batch in files.chunks(DECODE_BATCH) {
        let decoded = decode_files(plan, batch);
        let mut images = Vec::new();
        for (&f, raw) in batch.iter().zip(&decoded) {
            let err = |e: &ImageError| Error::dicom(plan.inputs[f].error_path(), e.to_string());
            let raw = raw.as_ref().map_err(err)?;
            for &(v, k, s) in &by_file[f] {
                images.push((v, k, s, image(plan, raw, &s, k).map_err(|e| err(&e))?));
            }
        }
        place_images(plan, &map, images, &mut volumes);
    }
    Ok(volumes)
}

/// The images of one file, as (volume, natural slice, image).
type FileImages = Vec<(usize, usize, SliceRef)>;

/// The images each file holds, and the files that hold any, in slice order (so that a batch
/// holds consecutive slices to place together).
fn files_in_slice_order(plan: &Plan) -> (Vec<FileImages>, Vec<usize>) {
    let mut by_file: Vec<FileImages> = vec![Vec::new(); plan.inputs.len()];
    for (v, vol) in plan.slices.iter().enumerate() {
        for (k, s) in vol.iter().enumerate() {
            by_file[s.file].push((v, k, *s));
        }
    }
    let mut files: Vec<usize> = (0..by_file.len())
        .filter(|&f| !by_file[f].is_empty())
        .collect();
    files.sort_by_key(|&f| by_file[f].iter().map(|&(v, k, _)| (v, k)).min());
    (by_file, files)
}

/// The volumes of `series` from their voxels: output grid, affine, spacing and metadata (the
/// source attributes and, per volume, its source images).
fn volumes_with_geometry(series: &Series, volumes: Vec<Vec<f32>>) -> Vec<Volume> {
    let plan = &series.plan;
    let (nd, map) = (plan.natural_dims, plan.map.unwrap_or(AxisMap::IDENTITY));
    let dims = map.out_dims(nd);
    let affine = map.affine(nd, &plan.natural_affine);
    let spacing = Volume::spacing_from_affine(&affine);
    // The folder of the first file.
    let source = plan
        .inputs
        .first()
        .map(|i| {
            let n = i.name();
            match n.rfind(['/', '\\']) {
                Some(p) => n[..p].to_string(),
                None => n,
            }
        })
        .unwrap_or_default();
    volumes
        .into_iter()
        .enumerate()
        .map(|(v, data)| Volume {
            dims,
            spacing,
            affine,
            data,
            meta: Metadata {
                description: series.description.clone(),
                source: source.clone(),
                slice_thickness_mm: plan.slice_thickness,
                dicom: Some(SourceAttributes {
                    images: source_images(plan, v),
                    ..plan.attrs.clone()
                }),
            },
        })
        .collect()
}

/// Files decoded at once by [`load_series`].
const DECODE_BATCH: usize = 32;

/// Decodes the files `batch` of `plan` (in parallel natively; the page has no threads).
fn decode_files(plan: &Plan, batch: &[usize]) -> Vec<Result<decode::RawFrames, ImageError>> {
    let one = |&f: &usize| -> Result<decode::RawFrames, ImageError> {
        let (rows, cols) = plan.frame_size[f];
        let obj = read::open(&plan.inputs[f], false)
            .map_err(|e| ImageError::Open(e.reason().to_string()))?;
        let raw = decode::decode_raw(obj)?;
        if raw.rows != rows || raw.cols != cols {
            return Err(ImageError::SizeMismatch {
                cols: raw.cols,
                rows: raw.rows,
                header_cols: cols,
                header_rows: rows,
            });
        }
        Ok(raw)
    };
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        batch.par_iter().map(one).collect()
    }
    #[cfg(target_arch = "wasm32")]
    {
        batch.iter().map(one).collect()
    }
}

/// One image (a frame or a mosaic tile) of a decoded file: its samples from its first pixel
/// on, rows `stride` apart.
struct Image<'a> {
    samples: Samples<'a>,
    stride: usize,
}

enum Samples<'a> {
    Grey(&'a [f32]),
    Stored16(&'a [u16], decode::Stored),
}

impl<'a> Image<'a> {
    /// The samples, if they are grey values already.
    fn grey(&self) -> Option<&'a [f32]> {
        match self.samples {
            Samples::Grey(d) => Some(d),
            Samples::Stored16(..) => None,
        }
    }

    /// The samples, if they are stored 16-bit values.
    fn stored16(&self) -> Option<&'a [u16]> {
        match self.samples {
            Samples::Stored16(d, _) => Some(d),
            Samples::Grey(_) => None,
        }
    }

    /// Whether `self` and `other` can be placed together (see [`place_images`]).
    fn same_kind(&self, other: &Image<'_>) -> bool {
        self.stride == other.stride
            && match (&self.samples, &other.samples) {
                (Samples::Grey(_), Samples::Grey(_)) => true,
                (Samples::Stored16(_, a), Samples::Stored16(_, b)) => a == b,
                _ => false,
            }
    }
}

/// Finds the image `s` (natural slice `k`) in the decoded file `raw`.
fn image<'a>(
    plan: &Plan,
    raw: &'a decode::RawFrames,
    s: &SliceRef,
    k: usize,
) -> Result<Image<'a>, ImageError> {
    let nd = plan.natural_dims;
    let (rows, cols) = (raw.rows, raw.cols);
    if s.frame >= raw.frames {
        return Err(ImageError::FrameMissing {
            frame: s.frame + 1,
            decoded: raw.frames,
        });
    }
    let (r0, c0) = match s.tile {
        Some(t) => {
            let g = plan.mosaic_grid.max(1);
            ((t / g) * nd[1], (t % g) * nd[0])
        }
        None => (0, 0),
    };
    if r0 + nd[1] > rows || c0 + nd[0] > cols {
        return Err(ImageError::TileOutside(k + 1));
    }
    let start = s.frame * rows * cols + r0 * cols + c0;
    let end = start + (nd[1] - 1) * cols + nd[0];
    let samples = match &raw.data {
        decode::Pixels::Grey(d) => Samples::Grey(&d[start..end]),
        decode::Pixels::Stored16(d, st) => Samples::Stored16(&d[start..end], *st),
    };
    Ok(Image {
        samples,
        stride: cols,
    })
}

/// Places decoded images (volume, natural slice, slice, samples) in `volumes`: runs of
/// consecutive slices of one volume with the same kind of samples go to [`place::place`]
/// together.
fn place_images(
    plan: &Plan,
    map: &AxisMap,
    mut images: Vec<(usize, usize, SliceRef, Image<'_>)>,
    volumes: &mut [Vec<f32>],
) {
    images.sort_by_key(|&(v, k, ..)| (v, k));
    let mut rest = &images[..];
    while let Some((v, k0, _, first)) = rest.first() {
        let (v, k0) = (*v, *k0);
        let len = rest
            .iter()
            .enumerate()
            .take_while(|(n, (v2, k2, _, im))| *v2 == v && *k2 == k0 + n && first.same_kind(im))
            .count();
        let (run, tail) = rest.split_at(len);
        rest = tail;
        let rescale = run
            .iter()
            .map(|(_, _, s, _)| {
                (s.slope != 1.0 || s.intercept != 0.0).then_some((s.slope, s.intercept))
            })
            .collect();
        let (out, nd) = (&mut volumes[v], plan.natural_dims);
        // `same_kind` keeps a run to one sample type, so each arm's slab holds every image.
        let slab = Run {
            k0,
            run,
            stride: first.stride,
            rescale,
        };
        match first.samples {
            Samples::Grey(_) => place::place(out, nd, map, &slab.of(Image::grey), |x: f32| x),
            Samples::Stored16(_, st) => {
                let grey = |x: u16| st.grey(u32::from(x));
                place::place(out, nd, map, &slab.of(Image::stored16), grey)
            }
        }
    }
}

/// Consecutive slices of one volume that [`place::place`] takes together.
struct Run<'r, 'a> {
    k0: usize,
    run: &'r [(usize, usize, SliceRef, Image<'a>)],
    stride: usize,
    rescale: Vec<Option<(f64, f64)>>,
}

impl<'a> Run<'_, 'a> {
    /// The run as a slab of the samples `pick` takes from each image.
    fn of<S>(self, pick: fn(&Image<'a>) -> Option<&'a [S]>) -> place::Slab<'a, S> {
        place::Slab {
            k0: self.k0,
            images: self.run.iter().filter_map(|(.., im)| pick(im)).collect(),
            stride: self.stride,
            rescale: self.rescale,
        }
    }
}

/// The source image of each natural slice of volume `v`, with its plane (LPS).
fn source_images(plan: &Plan, v: usize) -> Vec<super::SourceImage> {
    let a = &plan.natural_affine;
    // RAS -> LPS: x and y negated.
    let lps = |c: usize| -> V3 { [-a[0][c], -a[1][c], a[2][c]] };
    let normal = unit(cross(lps(0), lps(1))).unwrap_or([0.0, 0.0, 1.0]);
    let (dk, origin) = (lps(2), lps(3));
    plan.slices[v]
        .iter()
        .enumerate()
        .filter_map(|(k, s)| {
            let (class, instance, frames) = plan.sop.get(s.file)?;
            Some(super::SourceImage {
                sop_class_uid: class.clone(),
                sop_instance_uid: instance.clone(),
                frame: (*frames > 1).then_some(s.frame as u32 + 1),
                position: add_scaled(origin, dk, k as f64),
                normal,
            })
        })
        .collect()
}
