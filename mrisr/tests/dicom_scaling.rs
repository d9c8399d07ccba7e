//! Intensity scaling matches dcm2niix's rules (console/nii_dicom.cpp and nii_dicom_batch.cpp),
//! one synthetic header per rule: RescaleSlope/Intercept for every vendor, Philips real-world
//! value mapping only when the rescale is absent (as dcm2niix gives the standard value
//! precedence), other vendors' mapping ignored, Philips "precise" values from the private
//! scale slope (a 4-byte float) unless the scaling varies between frames.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use mrisr::io::dicom::{DicomInput, decode_input};

/// Stored values of the 2x2 test image.
const STORED: [i16; 4] = [0, 1, 100, 1000];

fn put(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: PrimitiveValue) {
    obj.put(DataElement::new(tag, vr, v));
}

fn text(obj: &mut InMemDicomObject, tag: Tag, vr: VR, v: &str) {
    put(obj, tag, vr, PrimitiveValue::from(v));
}

fn seq(items: Vec<InMemDicomObject>) -> DataSetSequence<InMemDicomObject> {
    DataSetSequence::from(items)
}

/// A one-frame 2x2 MR image from `manufacturer`; `more` adds the scaling elements.
fn image(manufacturer: &str, more: impl FnOnce(&mut InMemDicomObject)) -> DicomInput {
    image_frames(manufacturer, 1, more)
}

fn image_frames(
    manufacturer: &str,
    frames: usize,
    more: impl FnOnce(&mut InMemDicomObject),
) -> DicomInput {
    let mut o = InMemDicomObject::new_empty();
    text(
        &mut o,
        tags::SOP_CLASS_UID,
        VR::UI,
        "1.2.840.10008.5.1.4.1.1.4",
    );
    text(&mut o, tags::SOP_INSTANCE_UID, VR::UI, "1.2.3.4.5");
    text(&mut o, tags::MODALITY, VR::CS, "MR");
    text(&mut o, tags::MANUFACTURER, VR::LO, manufacturer);
    text(&mut o, tags::SERIES_INSTANCE_UID, VR::UI, "1.2.3.4");
    put(&mut o, tags::ROWS, VR::US, PrimitiveValue::from(2u16));
    put(&mut o, tags::COLUMNS, VR::US, PrimitiveValue::from(2u16));
    put(
        &mut o,
        tags::SAMPLES_PER_PIXEL,
        VR::US,
        PrimitiveValue::from(1u16),
    );
    text(
        &mut o,
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        "MONOCHROME2",
    );
    put(
        &mut o,
        tags::BITS_ALLOCATED,
        VR::US,
        PrimitiveValue::from(16u16),
    );
    put(
        &mut o,
        tags::BITS_STORED,
        VR::US,
        PrimitiveValue::from(16u16),
    );
    put(&mut o, tags::HIGH_BIT, VR::US, PrimitiveValue::from(15u16));
    put(
        &mut o,
        tags::PIXEL_REPRESENTATION,
        VR::US,
        PrimitiveValue::from(1u16),
    );
    if frames > 1 {
        text(&mut o, tags::NUMBER_OF_FRAMES, VR::IS, &frames.to_string());
    }
    let px: Vec<u8> = (0..frames)
        .flat_map(|_| STORED.iter().flat_map(|v| v.to_le_bytes()))
        .collect();
    put(&mut o, tags::PIXEL_DATA, VR::OW, PrimitiveValue::from(px));
    more(&mut o);
    let file = o
        .with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1"))
        .unwrap();
    let mut bytes = Vec::new();
    file.write_all(&mut bytes).unwrap();
    DicomInput::memory("synthetic.dcm", bytes)
}

fn rescale(o: &mut InMemDicomObject, slope: &str, intercept: &str) {
    text(o, tags::RESCALE_SLOPE, VR::DS, slope);
    text(o, tags::RESCALE_INTERCEPT, VR::DS, intercept);
}

/// A RealWorldValueMappingSequence item with this slope and intercept.
fn rwv_item(slope: f64, intercept: f64) -> InMemDicomObject {
    let mut it = InMemDicomObject::new_empty();
    put(
        &mut it,
        tags::REAL_WORLD_VALUE_INTERCEPT,
        VR::FD,
        PrimitiveValue::from(intercept),
    );
    put(
        &mut it,
        tags::REAL_WORLD_VALUE_SLOPE,
        VR::FD,
        PrimitiveValue::from(slope),
    );
    it
}

fn rwv(o: &mut InMemDicomObject, slope: f64, intercept: f64) {
    o.put(DataElement::new(
        tags::REAL_WORLD_VALUE_MAPPING_SEQUENCE,
        VR::SQ,
        seq(vec![rwv_item(slope, intercept)]),
    ));
}

const PHILIPS_SS: Tag = Tag(0x2005, 0x100E);

fn philips_ss(o: &mut InMemDicomObject, ss: f32) {
    text(o, Tag(0x2005, 0x0010), VR::LO, "Philips MR Imaging DD 001");
    put(o, PHILIPS_SS, VR::FL, PrimitiveValue::from(ss));
}

fn values(input: &DicomInput) -> Vec<f32> {
    decode_input(input).unwrap_or_else(|e| panic!("{e}")).data
}

fn expect(input: &DicomInput, f: impl Fn(f64) -> f64) {
    let got = values(input);
    for (g, &s) in got.iter().zip(STORED.iter().cycle()) {
        let want = f(f64::from(s)) as f32;
        assert!(
            (g - want).abs() <= 1e-4 * want.abs().max(1.0),
            "stored {s}: got {g}, want {want} (all: {got:?})"
        );
    }
}

#[test]
fn rescale_applies_for_every_vendor() {
    for m in [
        "SIEMENS",
        "GE MEDICAL SYSTEMS",
        "Philips Medical Systems",
        "Canon",
    ] {
        expect(&image(m, |o| rescale(o, "2.5", "-10")), |v| v * 2.5 - 10.0);
    }
}

#[test]
fn no_rescale_and_zero_slope_keep_stored_values() {
    expect(&image("SIEMENS", |_| {}), |v| v);
    expect(
        &image("GE MEDICAL SYSTEMS", |o| rescale(o, "0", "0")),
        |v| v,
    );
}

/// dcm2niix: `case kRealWorldSlope: if Philips ... else if (isSameFloat(1.0, d.intenScale))
/// d.intenScale = d.RWVScale` (the NIfTI's scl_slope), and the intercept likewise when the
/// rescale intercept is 0.
#[test]
fn philips_real_world_values_stand_in_for_a_missing_rescale() {
    let slope = 1.0 / 6.219;
    expect(
        &image("Philips Medical Systems", |o| rwv(o, slope, 0.0)),
        |v| v * slope,
    );
    expect(&image("Philips", |o| rwv(o, 2.0, 5.0)), |v| v * 2.0 + 5.0);
    // A rescale slope (not 1) or intercept (not 0) takes precedence.
    expect(
        &image("Philips", |o| {
            rescale(o, "3", "7");
            rwv(o, 2.0, 5.0);
        }),
        |v| v * 3.0 + 7.0,
    );
    // An explicit slope of 1 counts as no slope; its intercept of 0 as no intercept.
    expect(
        &image("Philips", |o| {
            rescale(o, "1", "0");
            rwv(o, 2.0, 5.0);
        }),
        |v| v * 2.0 + 5.0,
    );
    // A slope above 1e38 is ignored.
    expect(&image("Philips", |o| rwv(o, 1e39, 0.0)), |v| v);
    // Several items: the first one that applies.
    expect(
        &image("Philips", |o| {
            o.put(DataElement::new(
                tags::REAL_WORLD_VALUE_MAPPING_SEQUENCE,
                VR::SQ,
                seq(vec![rwv_item(2.0, 0.0), rwv_item(4.0, 0.0)]),
            ));
        }),
        |v| v * 2.0,
    );
}

/// dcm2niix reads (0040,9224/9225) for Philips only; everyone else's are only reported.
#[test]
fn other_vendors_real_world_values_are_ignored() {
    for m in ["SIEMENS", "GE MEDICAL SYSTEMS", "Canon", ""] {
        expect(&image(m, |o| rwv(o, 1.0 / 6.219, 3.0)), |v| v);
        expect(
            &image(m, |o| {
                rescale(o, "2", "1");
                rwv(o, 5.0, 3.0);
            }),
            |v| v * 2.0 + 1.0,
        );
    }
}

/// dcm2niix's default `-p y`: P = (SV * RS + RI) / (RS * SS), Philips only.
#[test]
fn philips_private_scale_slope_gives_precise_values() {
    let (rs, ri, ss) = (2.0, -4.0, 0.5f32);
    let precise = move |v: f64| (v * rs + ri) / (rs * f64::from(ss));
    expect(
        &image("Philips Medical Systems", |o| {
            rescale(o, "2", "-4");
            philips_ss(o, ss);
        }),
        precise,
    );
    // With the real-world slope standing in for the rescale slope.
    expect(
        &image("Philips", |o| {
            rwv(o, 2.0, -4.0);
            philips_ss(o, ss);
        }),
        precise,
    );
    // Another vendor's (2005,100E) is something else.
    expect(
        &image("SIEMENS", |o| {
            rescale(o, "2", "-4");
            philips_ss(o, ss);
        }),
        |v| v * 2.0 - 4.0,
    );
    // Not a 4-byte float (dcm2niix requires a length of 4): ignored.
    expect(
        &image("Philips", |o| {
            rescale(o, "2", "-4");
            text(o, PHILIPS_SS, VR::DS, "0.5");
        }),
        |v| v * 2.0 - 4.0,
    );
}

/// An enhanced Philips file whose frames are scaled differently keeps each frame's displayed
/// values (dcm2niix's isScaleVariesEnh); uniform scaling gives precise values.
#[test]
fn philips_enhanced_frames_with_varying_scaling_keep_displayed_values() {
    let frame_item = |rs: &str, ss: f32| {
        let mut pvt = InMemDicomObject::new_empty();
        rescale(&mut pvt, rs, "0");
        let mut private = InMemDicomObject::new_empty();
        philips_ss(&mut private, ss);
        let mut item = InMemDicomObject::new_empty();
        item.put(DataElement::new(
            tags::PIXEL_VALUE_TRANSFORMATION_SEQUENCE,
            VR::SQ,
            seq(vec![pvt]),
        ));
        text(
            &mut item,
            Tag(0x2005, 0x0010),
            VR::LO,
            "Philips MR Imaging DD 001",
        );
        item.put(DataElement::new(
            Tag(0x2005, 0x140F),
            VR::SQ,
            seq(vec![private]),
        ));
        item
    };
    let enhanced = |items: Vec<InMemDicomObject>| {
        image_frames("Philips Medical Systems", items.len(), move |o| {
            o.put(DataElement::new(
                tags::PER_FRAME_FUNCTIONAL_GROUPS_SEQUENCE,
                VR::SQ,
                seq(items),
            ));
        })
    };
    // Varying: displayed values, frame by frame.
    let got = values(&enhanced(vec![frame_item("2", 0.5), frame_item("3", 0.25)]));
    let want: Vec<f32> = [2.0, 3.0]
        .iter()
        .flat_map(|rs| STORED.iter().map(move |&v| f32::from(v) * rs))
        .collect();
    assert_eq!(got, want);
    // Uniform: precise values, P = SV / SS here.
    let got = values(&enhanced(vec![frame_item("2", 0.5), frame_item("2", 0.5)]));
    let want: Vec<f32> = (0..2)
        .flat_map(|_| STORED.iter().map(|&v| f32::from(v) / 0.5))
        .collect();
    assert_eq!(got, want);
}
