//! Writing a volume as a derived DICOM series: classic single-frame images, one per k slice,
//! 16-bit signed pixels with a rescale that keeps the f32 range, new series/instance UIDs and
//! the patient/study/frame-of-reference attributes of the source.
//!
//! The geometry is written so that this module's reader gives back the same grid: for a
//! left-handed affine (what 2D DICOM reads as) rows are stored bottom-up and the series is
//! marked 2D, so the reader's row flip restores `j`; for a right-handed affine (what 3D
//! acquisitions read as, and any axis-aligned RAS+ volume) rows are stored as is and the series
//! is marked 3D, so the reader's nearest-RAS+ reorientation leaves it unchanged.
//! Limits (inherent to dcm2niix's conventions): a right-handed volume that is not already in
//! its nearest-RAS+ axis order reads back permuted/flipped (same voxels at the same world
//! positions); a single right-handed slice reads back with its k axis reversed.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

use dicom_core::value::DataSetSequence;

use super::geometry::{V3, cross, dot, norm, unit};
use super::{SourceImage, error_chain};
use crate::{Error, Result, Volume};

const MR_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.4";
const SECONDARY_CAPTURE: &str = "1.2.840.10008.5.1.4.1.1.7";
const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";

/// How a derived series is labelled.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// Appended to the source SeriesDescription (or used alone when there is none).
    pub description_suffix: String,
    /// SeriesNumber of the new series; default: source number + 1000, or 1000.
    pub series_number: Option<i64>,
    /// Extra randomness for the new UIDs (the page can pass `crypto.getRandomValues`);
    /// natively the clock is mixed in as well.
    pub uid_seed: Option<u128>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            description_suffix: " (mrisr)".into(),
            series_number: None,
            uid_seed: None,
        }
    }
}

/// A DS value: the most digits that fit DICOM's 16 characters.
fn ds(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let v = if v == 0.0 { 0.0 } else { v }; // no "-0"
    for prec in (0..=14).rev() {
        let s = format!("{v:.prec$}");
        let s = if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        };
        if s.len() <= 16 {
            return s;
        }
    }
    // Very large magnitudes: exponent form.
    let s = format!("{v:.8e}");
    s.chars().take(16).collect()
}

fn ds_multi(v: &[f64]) -> String {
    v.iter().map(|x| ds(*x)).collect::<Vec<_>>().join("\\")
}

fn parse_ds(s: &str) -> f64 {
    s.trim().parse().unwrap_or(0.0)
}

static UID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A "2.25." UID (UUID-derived form, ISO/IEC 9834-8) from 128 bits hashed from `parts`.
fn uid_from(parts: &[u64]) -> String {
    let mut h1 = std::collections::hash_map::DefaultHasher::new();
    let mut h2 = std::collections::hash_map::DefaultHasher::new();
    0xA5u8.hash(&mut h2);
    for p in parts {
        p.hash(&mut h1);
        p.hash(&mut h2);
    }
    let v = ((h1.finish() as u128) << 64 | h2.finish() as u128).max(1);
    format!("2.25.{v}")
}

/// Entropy for a new series: content, a process-wide counter, the caller's seed, the clock.
fn series_entropy(volume: &Volume, opts: &WriteOptions) -> Vec<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    volume.dims.hash(&mut h);
    for row in &volume.affine {
        for v in row {
            v.to_bits().hash(&mut h);
        }
    }
    let step = (volume.data.len() / 4096).max(1);
    for v in volume.data.iter().step_by(step) {
        v.to_bits().hash(&mut h);
    }
    volume.meta.description.hash(&mut h);
    let mut parts = vec![h.finish(), UID_COUNTER.fetch_add(1, Ordering::Relaxed)];
    if let Some(s) = opts.uid_seed {
        parts.push(s as u64);
        parts.push((s >> 64) as u64);
    }
    #[cfg(not(all(target_arch = "wasm32", target_os = "unknown")))]
    {
        if let Ok(d) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            parts.push(d.as_nanos() as u64);
        }
        parts.push(std::process::id() as u64);
    }
    parts
}

/// Rescale (slope, intercept) for int16 storage, as they will read back from their DS text.
fn choose_rescale(data: &[f32]) -> (String, String, f64, f64) {
    let finite = data.iter().copied().filter(|v| v.is_finite());
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut integral = true;
    for v in finite {
        let v = v as f64;
        lo = lo.min(v);
        hi = hi.max(v);
        integral &= v.fract() == 0.0;
    }
    if !lo.is_finite() {
        return ("1".into(), "0".into(), 1.0, 0.0);
    }
    if integral && lo >= -32768.0 && hi <= 32767.0 {
        return ("1".into(), "0".into(), 1.0, 0.0);
    }
    let (slope, intercept) = if hi > lo {
        let s = (hi - lo) / 65534.0;
        (s, lo + 32767.0 * s)
    } else {
        (1.0, lo)
    };
    let (s_txt, i_txt) = (ds(slope), ds(intercept));
    let (s, i) = (parse_ds(&s_txt), parse_ds(&i_txt));
    // DS rounding must not leave a zero slope.
    if s <= 0.0 {
        return ("1".into(), ds(intercept), 1.0, parse_ds(&ds(intercept)));
    }
    (s_txt, i_txt, s, i)
}

fn put_str(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: impl Into<String>) {
    obj.put(DataElement::new(tag, vr, PrimitiveValue::from(v.into())));
}

/// One window for the whole series, so a viewer shows every slice alike: from the 0.5th to the
/// 99.5th percentile of the finite values (a few bright voxels do not darken the rest), never
/// narrower than 1.
fn series_window(data: &[f32]) -> (f64, f64) {
    // A regular sample of at most 2^20 values is plenty for two percentiles.
    let step = (data.len() >> 20).max(1);
    let mut v: Vec<f32> = data
        .iter()
        .step_by(step)
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    let at = |v: &mut Vec<f32>, q: f64| -> f64 {
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        *v.select_nth_unstable_by(i, f32::total_cmp).1 as f64
    };
    let lo = at(&mut v, 0.005);
    let hi = at(&mut v, 0.995);
    ((lo + hi) / 2.0, (hi - lo).max(1.0))
}

/// An Image SOP Instance Reference item (Referenced SOP Class / Instance UID, frame).
fn image_reference(img: &SourceImage) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put_str(
        &mut it,
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        img.sop_class_uid.clone(),
    );
    put_str(
        &mut it,
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        img.sop_instance_uid.clone(),
    );
    if let Some(f) = img.frame {
        put_str(
            &mut it,
            tags::REFERENCED_FRAME_NUMBER,
            VR::IS,
            f.to_string(),
        );
    }
    it
}

/// The source images a derived slice through `centre` comes from: the nearest source plane,
/// and the next nearest too when the slice lies between planes (an interpolated slice).
fn sources_of(images: &[SourceImage], centre: V3) -> Vec<&SourceImage> {
    let dist = |s: &SourceImage| {
        let d = [
            centre[0] - s.position[0],
            centre[1] - s.position[1],
            centre[2] - s.position[2],
        ];
        dot(d, s.normal).abs()
    };
    let mut by: Vec<(f64, &SourceImage)> = images.iter().map(|s| (dist(s), s)).collect();
    by.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<&SourceImage> = Vec::new();
    for (d, s) in by {
        let same = out
            .iter()
            .any(|o| o.sop_instance_uid == s.sop_instance_uid && o.frame == s.frame);
        if same {
            continue;
        }
        if out.is_empty() {
            out.push(s);
            if d < 1e-3 {
                break;
            }
        } else {
            out.push(s);
            break;
        }
    }
    out
}

/// Writes `volume` as a derived DICOM series in memory: one classic single-frame image per
/// slice along k, as (file name, bytes) pairs (the page zips them).
///
/// New SeriesInstanceUID and SOPInstanceUIDs; ImageType DERIVED\SECONDARY; patient, study and
/// frame of reference are kept from `volume.meta.dicom` when present, and so are the source
/// images: the series references them all (ReferencedSeriesSequence) and each slice the one or
/// two it lies on or between (SourceImageSequence). One WindowCenter/WindowWidth for the
/// whole series. Pixels are int16 with
/// RescaleSlope/Intercept chosen to keep the value range (slope 1 when the values are already
/// integers that fit). Reading the files back gives the same grid and affine.
pub fn write_series(volume: &Volume, opts: &WriteOptions) -> Result<Vec<(String, Vec<u8>)>> {
    let [ni, nj, nk] = volume.dims;
    if ni == 0 || nj == 0 || nk == 0 || ni > 65535 || nj > 65535 {
        return Err(Error::Invalid(format!(
            "cannot write a {ni}x{nj}x{nk} volume as DICOM (each side 1..65535 in-plane)"
        )));
    }
    if volume.data.len() != ni * nj * nk {
        return Err(Error::Invalid(format!(
            "volume data has {} values for dims {ni}x{nj}x{nk}",
            volume.data.len()
        )));
    }
    let a = &volume.affine;
    // RAS columns -> LPS (negate x and y).
    let lps = |c: usize| -> V3 { [-a[0][c], -a[1][c], a[2][c]] };
    let (c0, c1, c2) = (lps(0), lps(1), lps(2));
    let o = lps(3);
    let world = |i: f64, j: f64, k: f64| -> V3 {
        std::array::from_fn(|r| o[r] + c0[r] * i + c1[r] * j + c2[r] * k)
    };
    let (Some(row), Some(col_j)) = (unit(c0), unit(c1)) else {
        return Err(Error::Invalid(
            "volume affine has a zero in-plane axis".into(),
        ));
    };
    // Handedness in LPS equals handedness in RAS (the flip has determinant +1). A single slice
    // is always read as 2D (rows flipped), whatever its handedness.
    let left_handed = dot(cross(c0, c1), c2) < 0.0 || nk == 1;
    let col = if left_handed {
        [-col_j[0], -col_j[1], -col_j[2]]
    } else {
        col_j
    };
    let dz = norm(c2);
    let attrs = volume.meta.dicom.clone().unwrap_or_default();
    let src = |g: u16, e: u16| attrs.get(g, e).map(str::to_string);

    let entropy = series_entropy(volume, opts);
    let series_uid = uid_from(&entropy);
    let study_uid = src(0x0020, 0x000D).unwrap_or_else(|| uid_from(&[entropy[0], 1, entropy[1]]));
    let for_uid = src(0x0020, 0x0052).unwrap_or_else(|| uid_from(&[entropy[0], 2, entropy[1]]));
    let modality = src(0x0008, 0x0060).unwrap_or_else(|| "MR".into());
    let sop_class = if modality == "MR" {
        MR_IMAGE_STORAGE
    } else {
        SECONDARY_CAPTURE
    };
    let description = {
        let base = src(0x0008, 0x103E).unwrap_or_else(|| volume.meta.description.clone());
        let d = format!("{}{}", base.trim(), opts.description_suffix);
        d.trim().chars().take(64).collect::<String>()
    };
    let series_number = opts
        .series_number
        .or_else(|| {
            src(0x0020, 0x0011)
                .and_then(|s| s.trim().parse::<i64>().ok())
                .map(|n| n + 1000)
        })
        .unwrap_or(1000);
    let (slope_txt, icpt_txt, slope, icpt) = choose_rescale(&volume.data);
    let (lo, _) = volume.min_max();

    // Attributes shared by every slice.
    let mut base = InMemDicomObject::new_empty();
    for (g, e, vr, v) in &attrs.elements {
        let tag = Tag(*g, *e);
        let skip = [
            tags::SPECIFIC_CHARACTER_SET,
            tags::SERIES_INSTANCE_UID,
            tags::SERIES_DESCRIPTION,
            tags::SERIES_NUMBER,
            tags::MR_ACQUISITION_TYPE,
            tags::MODALITY,
        ];
        if skip.contains(&tag) {
            continue;
        }
        let vr = vr.parse::<VR>().unwrap_or(VR::LO);
        put_str(&mut base, tag, vr, v.clone());
    }
    put_str(
        &mut base,
        tags::SPECIFIC_CHARACTER_SET,
        VR::CS,
        "ISO_IR 192",
    );
    put_str(&mut base, tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY");
    put_str(&mut base, tags::SOP_CLASS_UID, VR::UI, sop_class);
    put_str(&mut base, tags::MODALITY, VR::CS, modality.clone());
    put_str(&mut base, tags::SERIES_DESCRIPTION, VR::LO, description);
    put_str(&mut base, tags::DERIVATION_DESCRIPTION, VR::ST, "mrisr");
    put_str(&mut base, tags::STUDY_INSTANCE_UID, VR::UI, study_uid);
    put_str(
        &mut base,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        series_uid.clone(),
    );
    put_str(
        &mut base,
        tags::SERIES_NUMBER,
        VR::IS,
        series_number.to_string(),
    );
    put_str(&mut base, tags::FRAME_OF_REFERENCE_UID, VR::UI, for_uid);
    for (tag, vr) in [
        (tags::PATIENT_NAME, VR::PN),
        (tags::PATIENT_ID, VR::LO),
        (tags::PATIENT_BIRTH_DATE, VR::DA),
        (tags::PATIENT_SEX, VR::CS),
        (tags::STUDY_DATE, VR::DA),
        (tags::STUDY_TIME, VR::TM),
        (tags::REFERRING_PHYSICIAN_NAME, VR::PN),
        (tags::STUDY_ID, VR::SH),
        (tags::ACCESSION_NUMBER, VR::SH),
        (tags::POSITION_REFERENCE_INDICATOR, VR::LO),
    ] {
        // Type 2 attributes: present, possibly empty.
        if base.get(tag).is_none() {
            put_str(&mut base, tag, vr, "");
        }
    }
    if modality == "MR" {
        put_str(&mut base, tags::SCANNING_SEQUENCE, VR::CS, "RM");
        put_str(&mut base, tags::SEQUENCE_VARIANT, VR::CS, "NONE");
        put_str(&mut base, tags::SCAN_OPTIONS, VR::CS, "");
        put_str(
            &mut base,
            tags::MR_ACQUISITION_TYPE,
            VR::CS,
            if left_handed { "2D" } else { "3D" },
        );
        // Type 2: the source's values when it had them.
        for (tag, vr) in [
            (tags::ECHO_TIME, VR::DS),
            (tags::REPETITION_TIME, VR::DS),
            (tags::ECHO_TRAIN_LENGTH, VR::IS),
        ] {
            if base.get(tag).is_none() {
                put_str(&mut base, tag, vr, "");
            }
        }
    } else {
        put_str(&mut base, tags::CONVERSION_TYPE, VR::CS, "WSD");
    }
    put_str(&mut base, tags::SLICE_THICKNESS, VR::DS, ds(dz));
    put_str(&mut base, tags::SPACING_BETWEEN_SLICES, VR::DS, ds(dz));
    put_str(
        &mut base,
        tags::IMAGE_ORIENTATION_PATIENT,
        VR::DS,
        ds_multi(&[row[0], row[1], row[2], col[0], col[1], col[2]]),
    );
    put_str(
        &mut base,
        tags::PIXEL_SPACING,
        VR::DS,
        ds_multi(&[norm(c1), norm(c0)]),
    );
    base.put(DataElement::new(
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(1u16),
    ));
    put_str(
        &mut base,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    base.put(DataElement::new(
        tags::ROWS,
        VR::US,
        PrimitiveValue::from(nj as u16),
    ));
    base.put(DataElement::new(
        tags::COLUMNS,
        VR::US,
        PrimitiveValue::from(ni as u16),
    ));
    base.put(DataElement::new(
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(16u16),
    ));
    base.put(DataElement::new(
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(16u16),
    ));
    base.put(DataElement::new(
        tags::HIGH_BIT,
        VR::US,
        PrimitiveValue::from(15u16),
    ));
    base.put(DataElement::new(
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(1u16),
    ));
    put_str(&mut base, tags::RESCALE_INTERCEPT, VR::DS, icpt_txt);
    put_str(&mut base, tags::RESCALE_SLOPE, VR::DS, slope_txt);
    put_str(&mut base, tags::RESCALE_TYPE, VR::LO, "US");
    let (wc, ww) = series_window(&volume.data);
    put_str(&mut base, tags::WINDOW_CENTER, VR::DS, ds(wc));
    put_str(&mut base, tags::WINDOW_WIDTH, VR::DS, ds(ww));
    put_str(
        &mut base,
        tags::WINDOW_CENTER_WIDTH_EXPLANATION,
        VR::LO,
        "SERIES 0.5-99.5 PERCENTILE",
    );
    // The source series and every source image (Common Instance Reference module).
    if let Some(src_series) = src(0x0020, 0x000E)
        && !attrs.images.is_empty()
    {
        let mut seen = std::collections::HashSet::new();
        let instances: Vec<InMemDicomObject> = attrs
            .images
            .iter()
            .filter(|i| seen.insert((i.sop_instance_uid.as_str(), i.frame)))
            .map(image_reference)
            .collect();
        let mut item = InMemDicomObject::new_empty();
        put_str(&mut item, tags::SERIES_INSTANCE_UID, VR::UI, src_series);
        item.put(DataElement::new(
            tags::REFERENCED_INSTANCE_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(instances),
        ));
        base.put(DataElement::new(
            tags::REFERENCED_SERIES_SEQUENCE,
            VR::SQ,
            DataSetSequence::from(vec![item]),
        ));
    }

    let normal = cross(row, col);
    let mut out = Vec::with_capacity(nk);
    let plane = ni * nj;
    for k in 0..nk {
        let mut obj = base.clone();
        let sop_uid = uid_from(&[entropy[0], entropy[1], 3, k as u64]);
        put_str(&mut obj, tags::SOP_INSTANCE_UID, VR::UI, sop_uid);
        put_str(&mut obj, tags::INSTANCE_NUMBER, VR::IS, (k + 1).to_string());
        let first = if left_handed {
            world(0.0, (nj - 1) as f64, k as f64)
        } else {
            world(0.0, 0.0, k as f64)
        };
        put_str(
            &mut obj,
            tags::IMAGE_POSITION_PATIENT,
            VR::DS,
            ds_multi(&first),
        );
        put_str(
            &mut obj,
            tags::SLICE_LOCATION,
            VR::DS,
            ds(dot(first, normal)),
        );
        let centre = world((ni - 1) as f64 / 2.0, (nj - 1) as f64 / 2.0, k as f64);
        let refs = sources_of(&attrs.images, centre);
        if !refs.is_empty() {
            obj.put(DataElement::new(
                tags::SOURCE_IMAGE_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(refs.into_iter().map(image_reference).collect::<Vec<_>>()),
            ));
        }
        let slice = &volume.data[k * plane..(k + 1) * plane];
        let mut px: Vec<u16> = Vec::with_capacity(plane);
        for r in 0..nj {
            let j = if left_handed { nj - 1 - r } else { r };
            for &v in &slice[j * ni..(j + 1) * ni] {
                let v = if v.is_finite() { v as f64 } else { lo as f64 };
                let q = ((v - icpt) / slope).round().clamp(-32768.0, 32767.0) as i16;
                px.push(q as u16);
            }
        }
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(px.into()),
        ));
        let file = obj
            .with_meta(FileMetaTableBuilder::new().transfer_syntax(EXPLICIT_VR_LE))
            .map_err(|e| Error::Invalid(format!("cannot build DICOM meta: {}", error_chain(&e))))?;
        let mut bytes = Vec::new();
        file.write_all(&mut bytes)
            .map_err(|e| Error::Invalid(format!("cannot encode DICOM: {}", error_chain(&e))))?;
        out.push((format!("IM{:05}.dcm", k + 1), bytes));
    }
    Ok(out)
}

/// [`write_series`] into a folder (created if needed); returns the paths written.
pub fn write_series_to_dir(
    volume: &Volume,
    opts: &WriteOptions,
    dir: &Path,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths = Vec::new();
    for (name, bytes) in write_series(volume, opts)? {
        let p = dir.join(name);
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))?;
        paths.push(p);
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ds_fits_16_chars() {
        for v in [
            0.0,
            -0.0,
            1.5,
            -105.41500091552734,
            123_456_789.123_456_79,
            1e-9,
            -1e20,
            0.3125,
        ] {
            let s = ds(v);
            assert!(s.len() <= 16, "{s}");
            let back: f64 = s.parse().unwrap();
            assert!((back - v).abs() <= 1e-6 * v.abs().max(1.0), "{v} -> {s}");
        }
        assert_eq!(ds(1.5), "1.5");
        assert_eq!(ds(-0.0), "0");
    }

    #[test]
    fn rescale_keeps_integers_exact() {
        let (_, _, s, i) = choose_rescale(&[0.0, 15470.0, -3.0]);
        assert_eq!((s, i), (1.0, 0.0));
        let (_, _, s, i) = choose_rescale(&[0.0, 0.5, 1000.25]);
        assert!(s > 0.0 && s < 1.0);
        assert!(((1000.25 - i) / s).round() <= 32767.0);
    }

    #[test]
    fn uids_are_valid() {
        let u = uid_from(&[1, 2, 3]);
        assert!(u.starts_with("2.25.") && u.len() <= 64);
        assert!(u[5..].chars().all(|c| c.is_ascii_digit()));
        assert_ne!(u, uid_from(&[1, 2, 4]));
    }
}
