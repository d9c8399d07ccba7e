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
use super::{SourceAttributes, SourceImage, error_chain};
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

/// An US (unsigned short) element.
fn put_us(obj: &mut InMemDicomObject, tag: Tag, v: u16) {
    obj.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
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
    it.put_str(
        tags::REFERENCED_SOP_CLASS_UID,
        VR::UI,
        img.sop_class_uid.clone(),
    );
    it.put_str(
        tags::REFERENCED_SOP_INSTANCE_UID,
        VR::UI,
        img.sop_instance_uid.clone(),
    );
    if let Some(f) = img.frame {
        it.put_str(tags::REFERENCED_FRAME_NUMBER, VR::IS, f.to_string());
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
    let series = DerivedSeries::new(volume, opts)?;
    let header = series.header(opts);
    (0..volume.dims[2])
        .map(|k| {
            Ok((
                format!("IM{:05}.dcm", k + 1),
                encode(series.slice(&header, k))?,
            ))
        })
        .collect()
}

/// How the volume's grid lies in the patient (LPS) and how its slices are stored.
struct Planes {
    /// Patient position of voxel (i, j, k).
    origin: V3,
    /// LPS columns of the affine: one step along i, j, k (mm).
    step: [V3; 3],
    /// ImageOrientationPatient: the row and column direction cosines.
    row: V3,
    col: V3,
    /// Rows stored bottom-up and the series marked 2D (see the module's documentation).
    left_handed: bool,
}

impl Planes {
    fn of(volume: &Volume) -> Result<Planes> {
        let [_, _, nk] = volume.dims;
        let a = &volume.affine;
        // RAS columns -> LPS (negate x and y).
        let lps = |c: usize| -> V3 { [-a[0][c], -a[1][c], a[2][c]] };
        let step = [lps(0), lps(1), lps(2)];
        let (Some(row), Some(col_j)) = (unit(step[0]), unit(step[1])) else {
            return Err(Error::Invalid(
                "volume affine has a zero in-plane axis".into(),
            ));
        };
        // Handedness in LPS equals handedness in RAS (the flip has determinant +1). A single
        // slice is always read as 2D (rows flipped), whatever its handedness.
        let left_handed = dot(cross(step[0], step[1]), step[2]) < 0.0 || nk == 1;
        let col = if left_handed {
            [-col_j[0], -col_j[1], -col_j[2]]
        } else {
            col_j
        };
        Ok(Planes {
            origin: lps(3),
            step,
            row,
            col,
            left_handed,
        })
    }

    fn world(&self, i: f64, j: f64, k: f64) -> V3 {
        let (o, [c0, c1, c2]) = (self.origin, self.step);
        std::array::from_fn(|r| o[r] + c0[r] * i + c1[r] * j + c2[r] * k)
    }
}

/// Rescale for int16 storage: the DS texts written and the values they read back as.
struct Rescale {
    slope_txt: String,
    intercept_txt: String,
    slope: f64,
    intercept: f64,
}

/// Everything the files of one derived series share.
struct DerivedSeries<'a> {
    volume: &'a Volume,
    planes: Planes,
    attrs: SourceAttributes,
    /// Seeds of the new UIDs ([`series_entropy`]).
    entropy: Vec<u64>,
    rescale: Rescale,
    /// Stored for values that are not finite: the volume's minimum.
    fill: f64,
}

impl<'a> DerivedSeries<'a> {
    fn new(volume: &'a Volume, opts: &WriteOptions) -> Result<Self> {
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
        let planes = Planes::of(volume)?;
        let (slope_txt, intercept_txt, slope, intercept) = choose_rescale(&volume.data);
        Ok(DerivedSeries {
            volume,
            planes,
            attrs: volume.meta.dicom.clone().unwrap_or_default(),
            entropy: series_entropy(volume, opts),
            rescale: Rescale {
                slope_txt,
                intercept_txt,
                slope,
                intercept,
            },
            fill: volume.min_max().0 as f64,
        })
    }

    /// The source's value of `tag`, if it was kept.
    fn source(&self, tag: Tag) -> Option<String> {
        self.attrs
            .get(tag.group(), tag.element())
            .map(str::to_string)
    }

    fn modality(&self) -> String {
        self.source(tags::MODALITY).unwrap_or_else(|| "MR".into())
    }

    /// The attributes every slice shares, in the order they are decided (a later one replaces
    /// a kept source attribute of the same tag).
    fn header(&self, opts: &WriteOptions) -> InMemDicomObject {
        let mut base = InMemDicomObject::new_empty();
        self.kept_source_attributes(&mut base);
        self.identity(&mut base, opts);
        self.modality_attributes(&mut base);
        self.plane_attributes(&mut base);
        self.pixel_attributes(&mut base);
        self.referenced_series(&mut base);
        base
    }

    /// The source's attributes, except those the new series replaces.
    fn kept_source_attributes(&self, base: &mut InMemDicomObject) {
        let replaced = [
            tags::SPECIFIC_CHARACTER_SET,
            tags::SERIES_INSTANCE_UID,
            tags::SERIES_DESCRIPTION,
            tags::SERIES_NUMBER,
            tags::MR_ACQUISITION_TYPE,
            tags::MODALITY,
        ];
        for (g, e, vr, v) in &self.attrs.elements {
            let tag = Tag(*g, *e);
            if !replaced.contains(&tag) {
                base.put_str(tag, vr.parse::<VR>().unwrap_or(VR::LO), v.clone());
            }
        }
    }

    /// SOP class, UIDs, description and number of the new series; patient and study kept or
    /// present empty.
    fn identity(&self, base: &mut InMemDicomObject, opts: &WriteOptions) {
        let entropy = &self.entropy;
        let series_uid = uid_from(entropy);
        let study_uid = self
            .source(tags::STUDY_INSTANCE_UID)
            .unwrap_or_else(|| uid_from(&[entropy[0], 1, entropy[1]]));
        let for_uid = self
            .source(tags::FRAME_OF_REFERENCE_UID)
            .unwrap_or_else(|| uid_from(&[entropy[0], 2, entropy[1]]));
        let modality = self.modality();
        let sop_class = if modality == "MR" {
            MR_IMAGE_STORAGE
        } else {
            SECONDARY_CAPTURE
        };
        let description = {
            let base = self
                .source(tags::SERIES_DESCRIPTION)
                .unwrap_or_else(|| self.volume.meta.description.clone());
            let d = format!("{}{}", base.trim(), opts.description_suffix);
            d.trim().chars().take(64).collect::<String>()
        };
        let series_number = opts
            .series_number
            .or_else(|| {
                self.source(tags::SERIES_NUMBER)
                    .and_then(|s| s.trim().parse::<i64>().ok())
                    .map(|n| n + 1000)
            })
            .unwrap_or(1000);
        base.put_str(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
        base.put_str(tags::IMAGE_TYPE, VR::CS, "DERIVED\\SECONDARY");
        base.put_str(tags::SOP_CLASS_UID, VR::UI, sop_class);
        base.put_str(tags::MODALITY, VR::CS, modality);
        base.put_str(tags::SERIES_DESCRIPTION, VR::LO, description);
        base.put_str(tags::DERIVATION_DESCRIPTION, VR::ST, "mrisr");
        base.put_str(tags::STUDY_INSTANCE_UID, VR::UI, study_uid);
        base.put_str(tags::SERIES_INSTANCE_UID, VR::UI, series_uid);
        base.put_str(tags::SERIES_NUMBER, VR::IS, series_number.to_string());
        base.put_str(tags::FRAME_OF_REFERENCE_UID, VR::UI, for_uid);
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
                base.put_str(tag, vr, "");
            }
        }
    }

    /// The MR Image module (MRAcquisitionType decides how the reader orders rows), or the
    /// SC Equipment module's ConversionType for other modalities.
    fn modality_attributes(&self, base: &mut InMemDicomObject) {
        if self.modality() != "MR" {
            base.put_str(tags::CONVERSION_TYPE, VR::CS, "WSD");
            return;
        }
        base.put_str(tags::SCANNING_SEQUENCE, VR::CS, "RM");
        base.put_str(tags::SEQUENCE_VARIANT, VR::CS, "NONE");
        base.put_str(tags::SCAN_OPTIONS, VR::CS, "");
        let acquisition = if self.planes.left_handed { "2D" } else { "3D" };
        base.put_str(tags::MR_ACQUISITION_TYPE, VR::CS, acquisition);
        // Type 2: the source's values when it had them.
        for (tag, vr) in [
            (tags::ECHO_TIME, VR::DS),
            (tags::REPETITION_TIME, VR::DS),
            (tags::ECHO_TRAIN_LENGTH, VR::IS),
        ] {
            if base.get(tag).is_none() {
                base.put_str(tag, vr, "");
            }
        }
    }

    /// Slice spacing, orientation and pixel spacing (the same for every slice).
    fn plane_attributes(&self, base: &mut InMemDicomObject) {
        let Planes { step, row, col, .. } = self.planes;
        let dz = norm(step[2]);
        base.put_str(tags::SLICE_THICKNESS, VR::DS, ds(dz));
        base.put_str(tags::SPACING_BETWEEN_SLICES, VR::DS, ds(dz));
        base.put_str(
            tags::IMAGE_ORIENTATION_PATIENT,
            VR::DS,
            ds_multi(&[row[0], row[1], row[2], col[0], col[1], col[2]]),
        );
        base.put_str(
            tags::PIXEL_SPACING,
            VR::DS,
            ds_multi(&[norm(step[1]), norm(step[0])]),
        );
    }

    /// Image Pixel module (int16), rescale and one window for the series.
    fn pixel_attributes(&self, base: &mut InMemDicomObject) {
        let [ni, nj, _] = self.volume.dims;
        put_us(base, tags::SAMPLES_PER_PIXEL, 1);
        base.put_str(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2");
        put_us(base, tags::ROWS, nj as u16);
        put_us(base, tags::COLUMNS, ni as u16);
        put_us(base, tags::BITS_ALLOCATED, 16);
        put_us(base, tags::BITS_STORED, 16);
        put_us(base, tags::HIGH_BIT, 15);
        put_us(base, tags::PIXEL_REPRESENTATION, 1);
        let r = &self.rescale;
        base.put_str(tags::RESCALE_INTERCEPT, VR::DS, r.intercept_txt.clone());
        base.put_str(tags::RESCALE_SLOPE, VR::DS, r.slope_txt.clone());
        base.put_str(tags::RESCALE_TYPE, VR::LO, "US");
        let (wc, ww) = series_window(&self.volume.data);
        base.put_str(tags::WINDOW_CENTER, VR::DS, ds(wc));
        base.put_str(tags::WINDOW_WIDTH, VR::DS, ds(ww));
        base.put_str(
            tags::WINDOW_CENTER_WIDTH_EXPLANATION,
            VR::LO,
            "SERIES 0.5-99.5 PERCENTILE",
        );
    }

    /// The source series and every source image (Common Instance Reference module).
    fn referenced_series(&self, base: &mut InMemDicomObject) {
        let images = &self.attrs.images;
        let Some(src_series) = self.source(tags::SERIES_INSTANCE_UID) else {
            return;
        };
        if images.is_empty() {
            return;
        }
        let mut seen = std::collections::HashSet::new();
        let instances: Vec<InMemDicomObject> = images
            .iter()
            .filter(|i| seen.insert((i.sop_instance_uid.as_str(), i.frame)))
            .map(image_reference)
            .collect();
        let mut item = InMemDicomObject::new_empty();
        item.put_str(tags::SERIES_INSTANCE_UID, VR::UI, src_series);
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

    /// Slice `k`: the shared `header`, its UID, number, position, source images and pixels.
    fn slice(&self, header: &InMemDicomObject, k: usize) -> InMemDicomObject {
        let [ni, nj, _] = self.volume.dims;
        let planes = &self.planes;
        let mut obj = header.clone();
        let sop_uid = uid_from(&[self.entropy[0], self.entropy[1], 3, k as u64]);
        obj.put_str(tags::SOP_INSTANCE_UID, VR::UI, sop_uid);
        obj.put_str(tags::INSTANCE_NUMBER, VR::IS, (k + 1).to_string());
        let first = if planes.left_handed {
            planes.world(0.0, (nj - 1) as f64, k as f64)
        } else {
            planes.world(0.0, 0.0, k as f64)
        };
        let normal = cross(planes.row, planes.col);
        obj.put_str(tags::IMAGE_POSITION_PATIENT, VR::DS, ds_multi(&first));
        obj.put_str(tags::SLICE_LOCATION, VR::DS, ds(dot(first, normal)));
        let centre = planes.world((ni - 1) as f64 / 2.0, (nj - 1) as f64 / 2.0, k as f64);
        let refs = sources_of(&self.attrs.images, centre);
        if !refs.is_empty() {
            obj.put(DataElement::new(
                tags::SOURCE_IMAGE_SEQUENCE,
                VR::SQ,
                DataSetSequence::from(refs.into_iter().map(image_reference).collect::<Vec<_>>()),
            ));
        }
        obj.put(DataElement::new(
            tags::PIXEL_DATA,
            VR::OW,
            PrimitiveValue::U16(self.pixels(k).into()),
        ));
        obj
    }

    /// The int16 pixels of slice `k` (as u16 bit patterns), rows in storage order.
    fn pixels(&self, k: usize) -> Vec<u16> {
        let [ni, nj, _] = self.volume.dims;
        let plane = ni * nj;
        let Rescale {
            slope, intercept, ..
        } = self.rescale;
        let slice = &self.volume.data[k * plane..(k + 1) * plane];
        let mut px: Vec<u16> = Vec::with_capacity(plane);
        for r in 0..nj {
            let j = if self.planes.left_handed {
                nj - 1 - r
            } else {
                r
            };
            for &v in &slice[j * ni..(j + 1) * ni] {
                let v = if v.is_finite() { v as f64 } else { self.fill };
                let q = ((v - intercept) / slope).round().clamp(-32768.0, 32767.0) as i16;
                px.push(q as u16);
            }
        }
        px
    }
}

/// One file's bytes: `obj` with a file meta group, explicit VR little endian.
fn encode(obj: InMemDicomObject) -> Result<Vec<u8>> {
    let file = obj
        .with_meta(FileMetaTableBuilder::new().transfer_syntax(EXPLICIT_VR_LE))
        .map_err(|e| Error::Invalid(format!("cannot build DICOM meta: {}", error_chain(&e))))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| Error::Invalid(format!("cannot encode DICOM: {}", error_chain(&e))))?;
    Ok(bytes)
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
