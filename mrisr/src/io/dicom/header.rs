//! The header fields the series grouping and the geometry need, read once per file, with the
//! per-frame values of enhanced multi-frame files and Siemens mosaics unpacked.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject};

use super::SourceAttributes;
use super::csa;
use super::error::HeaderError;

/// Geometry and scaling of one frame (one 2D image as stored, before mosaic tiling).
#[derive(Clone, Debug, Default)]
pub(crate) struct FrameInfo {
    /// ImagePositionPatient (LPS mm) of the first transmitted pixel.
    pub ipp: Option<[f64; 3]>,
    /// ImageOrientationPatient: row direction cosines then column direction cosines.
    pub iop: Option<[f64; 6]>,
    /// PixelSpacing: (between rows, between columns) in mm.
    pub pixel_spacing: Option<[f64; 2]>,
    pub slice_thickness: Option<f64>,
    pub slope: f64,
    pub intercept: f64,
    /// Temporal position (TemporalPositionIndex or TemporalPositionIdentifier).
    pub temporal: Option<i64>,
    /// Echo number / echo time of this frame (enhanced files can mix echoes).
    pub echo_number: Option<i64>,
    pub echo_time: Option<f64>,
    /// Phase / real / imaginary (empty for magnitude), from ComplexImageComponent or the
    /// ImageType / FrameType values: dcm2niix writes these as separate series.
    pub image_kind: String,
    /// DimensionIndexValues, to order frames that share a position.
    pub dim_index: Vec<i64>,
    /// Philips private scale slope (2005,100E), for dcm2niix's "precise" Philips scaling.
    pub philips_ss: Option<f64>,
}

/// Philips Private Scale Slope, in the per-frame private item (2005,140F) or at top level.
const PHILIPS_SS: Tag = Tag(0x2005, 0x100E);
const PHILIPS_FRAME_ITEM: Tag = Tag(0x2005, 0x140F);

// Intensity scaling, as dcm2niix does it (console/nii_dicom.cpp, nii_dicom_batch.cpp):
// 1. Every vendor: RescaleSlope / RescaleIntercept (0028,1053 / 0028,1052), top level or in
//    the Pixel Value Transformation functional group; a slope of 0 counts as 1.
// 2. Philips only: a RealWorldValueMapping item (0040,9096) gives a slope (0040,9225) used when
//    RescaleSlope is absent or 1, and an intercept (0040,9224) used when RescaleIntercept is
//    absent or 0 (dcm2niix "give precedence to standard value"); a slope above 1e38 is
//    ignored. Other vendors' real-world value mappings are ignored (dcm2niix only reports them).
// 3. Philips only: the private scale slope (2005,100E), a 4-byte float, turns the displayed
//    values into dcm2niix's default "precise" floating-point values (`philips_precise`),
//    unless the scaling varies between the frames of one image kind of an enhanced file
//    (dcm2niix's isScaleVariesEnh: then each frame keeps its displayed values).
// 4. Other vendors' (2005,100E) is ignored.

/// dcm2niix's `isSameFloat`: equal within f32 epsilon.
fn same_float(a: f64, b: f64) -> bool {
    (a - b).abs() <= f64::from(f32::EPSILON)
}

/// Rule 2: the real-world value mapping items of `obj` applied to `f` in file order.
fn apply_philips_rwv(obj: &InMemDicomObject, f: &mut FrameInfo) {
    let Some(items) = obj
        .get(tags::REAL_WORLD_VALUE_MAPPING_SEQUENCE)
        .and_then(|e| e.items())
    else {
        return;
    };
    for it in items {
        if let Some(i) = get_f64(it, tags::REAL_WORLD_VALUE_INTERCEPT)
            && same_float(f.intercept, 0.0)
        {
            f.intercept = i;
        }
        if let Some(s) = get_f64(it, tags::REAL_WORLD_VALUE_SLOPE)
            && s <= 1.0e38
            && same_float(f.slope, 1.0)
        {
            f.slope = s;
        }
    }
}

/// The Philips private scale slope as dcm2niix reads it: a 4-byte float (FL, or the raw
/// bytes of an implicit-VR file), anything else ignored.
fn philips_scale_slope(obj: &InMemDicomObject) -> Option<f64> {
    use dicom_core::VR;
    let e = obj.get(PHILIPS_SS)?;
    let v = match e.vr() {
        VR::FL => e.to_float32().ok()?,
        VR::UN | VR::OB => {
            let b = e.to_bytes().ok()?;
            f32::from_le_bytes(b.as_ref().try_into().ok()?)
        }
        _ => return None,
    };
    v.is_finite().then_some(f64::from(v))
}

/// dcm2niix's default Philips scaling ("-p y"): floating-point values
/// FP = (SV * RS + RI) / (RS * SS) instead of the displayed SV * RS + RI, computed in f32 as
/// dcm2niix does so the values match its output.
fn philips_precise(f: &mut FrameInfo) {
    let Some(ss) = f.philips_ss else { return };
    let (rs, ri, ss) = (f.slope as f32, f.intercept as f32, ss as f32);
    let val = |pv: f32| -> f32 {
        if rs * ss == 0.0 {
            pv
        } else {
            (pv * rs + ri) / (rs * ss)
        }
    };
    let (l0, l1) = (val(0.0), val(1.0));
    if l0 != l1 && l0.is_finite() && l1.is_finite() {
        f.intercept = l0 as f64;
        f.slope = (l1 - l0) as f64;
    }
}

/// What a scan keeps of one file.
#[derive(Clone, Debug)]
pub(crate) struct FileInfo {
    pub transfer_syntax: String,
    pub series_uid: String,
    pub series_number: Option<i64>,
    pub description: String,
    pub modality: String,
    pub rows: usize,
    pub cols: usize,
    pub samples_per_pixel: usize,
    pub number_of_frames: usize,
    pub is_3d_acq: bool,
    pub instance_number: Option<i64>,
    pub acquisition_number: Option<i64>,
    pub spacing_between_slices: Option<f64>,
    /// Siemens mosaic: number of 2D slices tiled in each frame.
    pub mosaic: Option<usize>,
    /// Siemens slice normal (CSA SliceNormalVector), which gives the mosaic slice order.
    pub slice_normal: Option<[f64; 3]>,
    pub frames: Vec<FrameInfo>,
    pub attrs: SourceAttributes,
    /// SOPClassUID and SOPInstanceUID (from the file meta when the data set lacks them).
    pub sop_class_uid: String,
    pub sop_instance_uid: String,
}

// ---- small element readers; absent or unparsable values read as None ----

pub(crate) fn get_str(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let e = obj.get(tag)?;
    let s = e.to_str().ok()?;
    let s = s.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!s.is_empty()).then(|| s.to_string())
}

pub(crate) fn get_strs(obj: &InMemDicomObject, tag: Tag) -> Vec<String> {
    obj.get(tag)
        .and_then(|e| e.to_multi_str().ok())
        .map(|v| v.iter().map(|s| s.trim().to_string()).collect())
        .unwrap_or_default()
}

pub(crate) fn get_f64s(obj: &InMemDicomObject, tag: Tag) -> Option<Vec<f64>> {
    let v = obj.get(tag)?.to_multi_float64().ok()?;
    (v.iter().all(|x| x.is_finite()) && !v.is_empty()).then_some(v)
}

pub(crate) fn get_f64(obj: &InMemDicomObject, tag: Tag) -> Option<f64> {
    get_f64s(obj, tag).map(|v| v[0])
}

pub(crate) fn get_int(obj: &InMemDicomObject, tag: Tag) -> Option<i64> {
    let e = obj.get(tag)?;
    e.to_int::<i64>().ok().or_else(|| {
        e.to_float64()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f as i64)
    })
}

fn get_n<const N: usize>(obj: &InMemDicomObject, tag: Tag) -> Option<[f64; N]> {
    let v = get_f64s(obj, tag)?;
    (v.len() >= N).then(|| std::array::from_fn(|i| v[i]))
}

/// First item of a sequence.
pub(crate) fn item(obj: &InMemDicomObject, seq: Tag) -> Option<&InMemDicomObject> {
    obj.get(seq)?.items()?.first()
}

/// Fills the frame fields found in a functional-group item (shared or per-frame).
fn apply_groups(group: &InMemDicomObject, f: &mut FrameInfo, philips: bool) {
    if let Some(pp) = item(group, tags::PLANE_POSITION_SEQUENCE)
        && let Some(v) = get_n::<3>(pp, tags::IMAGE_POSITION_PATIENT)
    {
        f.ipp = Some(v);
    }
    if let Some(po) = item(group, tags::PLANE_ORIENTATION_SEQUENCE)
        && let Some(v) = get_n::<6>(po, tags::IMAGE_ORIENTATION_PATIENT)
    {
        f.iop = Some(v);
    }
    if let Some(pm) = item(group, tags::PIXEL_MEASURES_SEQUENCE) {
        if let Some(v) = get_n::<2>(pm, tags::PIXEL_SPACING) {
            f.pixel_spacing = Some(v);
        }
        if let Some(v) = get_f64(pm, tags::SLICE_THICKNESS) {
            f.slice_thickness = Some(v);
        }
    }
    if let Some(pv) = item(group, tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE) {
        if let Some(v) = get_f64(pv, tags::RESCALE_SLOPE) {
            f.slope = v;
        }
        if let Some(v) = get_f64(pv, tags::RESCALE_INTERCEPT) {
            f.intercept = v;
        }
    }
    if let Some(fc) = item(group, tags::FRAME_CONTENT_SEQUENCE) {
        if let Some(v) = get_int(fc, tags::TEMPORAL_POSITION_INDEX) {
            f.temporal = Some(v);
        }
        if let Some(e) = fc.get(tags::DIMENSION_INDEX_VALUES)
            && let Ok(v) = e.to_multi_int::<i64>()
        {
            f.dim_index = v;
        }
    }
    if philips {
        apply_philips_rwv(group, f);
        if let Some(v) = item(group, PHILIPS_FRAME_ITEM).and_then(philips_scale_slope) {
            f.philips_ss = Some(v);
        }
    }
    if let Some(me) = item(group, tags::MR_ECHO_SEQUENCE)
        && let Some(v) = get_f64(me, tags::EFFECTIVE_ECHO_TIME)
    {
        f.echo_time = Some(v);
    }
    if let Some(ft) = item(group, tags::MR_IMAGE_FRAME_TYPE_SEQUENCE) {
        if let Some(c) = get_str(ft, tags::COMPLEX_IMAGE_COMPONENT) {
            f.image_kind = complex_kind(&[c]);
        } else {
            f.image_kind = complex_kind(&get_strs(ft, tags::FRAME_TYPE));
        }
    }
}

/// "PHASE", "REAL", "IMAGINARY", or "" (magnitude / unknown) from image type values.
fn complex_kind(values: &[String]) -> String {
    for v in values {
        match v.to_ascii_uppercase().as_str() {
            "P" | "PHASE" => return "PHASE".into(),
            "R" | "REAL" => return "REAL".into(),
            "I" | "IMAGINARY" => return "IMAGINARY".into(),
            _ => {}
        }
    }
    String::new()
}

/// Attributes a derived series keeps (patient, study, frame of reference, equipment).
const KEEP: &[(Tag, &str)] = &[
    (tags::SPECIFIC_CHARACTER_SET, "CS"),
    (tags::STUDY_DATE, "DA"),
    (tags::STUDY_TIME, "TM"),
    (tags::ACCESSION_NUMBER, "SH"),
    (tags::MODALITY, "CS"),
    (tags::MANUFACTURER, "LO"),
    (tags::INSTITUTION_NAME, "LO"),
    (tags::REFERRING_PHYSICIAN_NAME, "PN"),
    (tags::STUDY_DESCRIPTION, "LO"),
    (tags::SERIES_DESCRIPTION, "LO"),
    (tags::MANUFACTURER_MODEL_NAME, "LO"),
    (tags::PATIENT_NAME, "PN"),
    (tags::PATIENT_ID, "LO"),
    (tags::PATIENT_BIRTH_DATE, "DA"),
    (tags::PATIENT_SEX, "CS"),
    (tags::PATIENT_AGE, "AS"),
    (tags::PATIENT_SIZE, "DS"),
    (tags::PATIENT_WEIGHT, "DS"),
    (tags::BODY_PART_EXAMINED, "CS"),
    (tags::MR_ACQUISITION_TYPE, "CS"),
    (tags::MAGNETIC_FIELD_STRENGTH, "DS"),
    (tags::PATIENT_POSITION, "CS"),
    (tags::STUDY_INSTANCE_UID, "UI"),
    (tags::SERIES_INSTANCE_UID, "UI"),
    (tags::STUDY_ID, "SH"),
    (tags::SERIES_NUMBER, "IS"),
    (tags::FRAME_OF_REFERENCE_UID, "UI"),
    (tags::POSITION_REFERENCE_INDICATOR, "LO"),
    // Acquisition parameters: a derived series keeps them, and the BIDS sidecar reports them.
    (tags::PROTOCOL_NAME, "LO"),
    (tags::ECHO_TIME, "DS"),
    (tags::REPETITION_TIME, "DS"),
    (tags::INVERSION_TIME, "DS"),
    (tags::FLIP_ANGLE, "DS"),
    (tags::ECHO_TRAIN_LENGTH, "IS"),
    (tags::IMAGING_FREQUENCY, "DS"),
    (tags::SOFTWARE_VERSIONS, "LO"),
    (tags::STATION_NAME, "SH"),
];

fn source_attributes(obj: &InMemDicomObject) -> SourceAttributes {
    let elements = KEEP
        .iter()
        .filter_map(|(tag, vr)| {
            let e = obj.get(*tag)?;
            let v = e.to_str().ok()?;
            let v = v.trim_end_matches(['\0', ' ']).to_string();
            (!v.is_empty()).then(|| (tag.group(), tag.element(), vr.to_string(), v))
        })
        .collect();
    SourceAttributes {
        elements,
        images: Vec::new(),
    }
}

/// Reads what a scan needs from a parsed object. Returns Err with a reason for files that hold
/// no image (no Rows/Columns): structured reports, RT plans, DICOMDIRs...
pub(crate) fn file_info(file: &DefaultDicomObject) -> Result<FileInfo, HeaderError> {
    let meta = file.meta();
    let ts = meta
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let sop_class = meta
        .media_storage_sop_class_uid()
        .trim_end_matches(['\0', ' '])
        .to_string();
    let obj: &InMemDicomObject = file;
    if sop_class == "1.2.840.10008.1.3.10" || obj.get(tags::DIRECTORY_RECORD_SEQUENCE).is_some() {
        return Err(HeaderError::Dicomdir);
    }
    let modality = get_str(obj, tags::MODALITY).unwrap_or_default();
    let (Some(rows), Some(cols)) = (get_int(obj, tags::ROWS), get_int(obj, tags::COLUMNS)) else {
        return Err(HeaderError::NoRowsColumns {
            modality: (!modality.is_empty()).then_some(modality),
        });
    };
    if rows <= 0 || cols <= 0 || rows > 65535 || cols > 65535 {
        return Err(HeaderError::ImageSize { cols, rows });
    }
    let number_of_frames = match get_int(obj, tags::NUMBER_OF_FRAMES) {
        None => 1,
        Some(n) if (1..=1 << 20).contains(&n) => n as usize,
        Some(n) => return Err(HeaderError::NumberOfFrames(n)),
    };
    let samples_per_pixel = get_int(obj, tags::SAMPLES_PER_PIXEL)
        .unwrap_or(1)
        .clamp(1, 4) as usize;
    let image_type = get_strs(obj, tags::IMAGE_TYPE);

    // Frame defaults from the top level (classic files).
    let mut base = FrameInfo {
        ipp: get_n::<3>(obj, tags::IMAGE_POSITION_PATIENT),
        iop: get_n::<6>(obj, tags::IMAGE_ORIENTATION_PATIENT),
        pixel_spacing: get_n::<2>(obj, tags::PIXEL_SPACING)
            .or_else(|| get_n::<2>(obj, tags::IMAGER_PIXEL_SPACING)),
        slice_thickness: get_f64(obj, tags::SLICE_THICKNESS),
        slope: get_f64(obj, tags::RESCALE_SLOPE).unwrap_or(1.0),
        intercept: get_f64(obj, tags::RESCALE_INTERCEPT).unwrap_or(0.0),
        temporal: get_int(obj, tags::TEMPORAL_POSITION_IDENTIFIER),
        echo_number: get_int(obj, tags::ECHO_NUMBERS),
        echo_time: get_f64(obj, tags::ECHO_TIME),
        image_kind: complex_kind(&image_type),
        dim_index: Vec::new(),
        philips_ss: None,
    };
    let philips = get_str(obj, tags::MANUFACTURER)
        .is_some_and(|m| m.to_ascii_lowercase().contains("philips"));
    if philips {
        apply_philips_rwv(obj, &mut base);
        base.philips_ss = philips_scale_slope(obj);
    }
    // A zero slope (dcm2niix: scl_slope 0, which readers ignore) leaves the stored values.
    if base.slope == 0.0 {
        base.slope = 1.0;
    }
    if let Some(shared) = item(obj, tags::SHARED_FUNCTIONAL_GROUPS_SEQUENCE) {
        apply_groups(shared, &mut base, philips);
    }
    let per_frame = obj
        .get(tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE)
        .and_then(|e| e.items());
    let mut frames: Vec<FrameInfo> = match per_frame {
        Some(items) if items.len() == number_of_frames => items
            .iter()
            .map(|it| {
                let mut f = base.clone();
                apply_groups(it, &mut f, philips);
                if f.slope == 0.0 {
                    f.slope = 1.0;
                }
                f
            })
            .collect(),
        _ => vec![base; number_of_frames],
    };
    if philips {
        // Precise values only where the scaling is the same for every frame of a kind.
        type Scaling = (f64, f64, Option<f64>);
        // (image kind, its first frame's scaling, whether another frame differs)
        let mut kinds: Vec<(&str, Scaling, bool)> = Vec::new();
        for f in &frames {
            let key = (f.slope, f.intercept, f.philips_ss);
            match kinds.iter_mut().find(|k| k.0 == f.image_kind) {
                Some(k) => k.2 |= k.1 != key,
                None => kinds.push((&f.image_kind, key, false)),
            }
        }
        let uniform: Vec<bool> = frames
            .iter()
            .map(|f| kinds.iter().any(|k| k.0 == f.image_kind && !k.2))
            .collect();
        for (f, u) in frames.iter_mut().zip(uniform) {
            if u {
                philips_precise(f);
            }
        }
    }

    let is_mosaic = image_type.iter().any(|t| t.eq_ignore_ascii_case("MOSAIC"));
    let csa_info = csa::siemens_info(obj);
    let mosaic = if is_mosaic {
        csa_info.images_in_mosaic.filter(|&n| n > 1)
    } else {
        None
    };

    Ok(FileInfo {
        transfer_syntax: ts,
        series_uid: get_str(obj, tags::SERIES_INSTANCE_UID).unwrap_or_default(),
        series_number: get_int(obj, tags::SERIES_NUMBER),
        description: get_str(obj, tags::SERIES_DESCRIPTION)
            .or_else(|| get_str(obj, tags::PROTOCOL_NAME))
            .unwrap_or_default(),
        modality,
        rows: rows as usize,
        cols: cols as usize,
        samples_per_pixel,
        number_of_frames,
        is_3d_acq: get_str(obj, tags::MR_ACQUISITION_TYPE)
            .is_some_and(|s| s.to_ascii_uppercase().starts_with("3D")),
        instance_number: get_int(obj, tags::INSTANCE_NUMBER),
        acquisition_number: get_int(obj, tags::ACQUISITION_NUMBER),
        spacing_between_slices: get_f64(obj, tags::SPACING_BETWEEN_SLICES),
        mosaic,
        slice_normal: csa_info.slice_normal,
        frames,
        attrs: source_attributes(obj),
        sop_class_uid: get_str(obj, tags::SOP_CLASS_UID).unwrap_or(sop_class),
        sop_instance_uid: get_str(obj, tags::SOP_INSTANCE_UID).unwrap_or_else(|| {
            meta.media_storage_sop_instance_uid()
                .trim_end_matches(['\0', ' '])
                .to_string()
        }),
    })
}
