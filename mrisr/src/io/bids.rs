//! BIDS sidecars: the `.json` that dcm2niix writes beside every NIfTI file, with the fields
//! the source series has (in BIDS units: seconds, Tesla, degrees), plus, for a result of
//! mrisr, what was done to it. Patient identifiers are left out, as dcm2niix does by default.

use serde_json::{Map, Value, json};

use crate::Volume;

/// DICOM (group, element) -> BIDS key, and the factor to BIDS units.
const FIELDS: &[(u16, u16, &str, Option<f64>)] = &[
    (0x0008, 0x0060, "Modality", None),
    (0x0018, 0x0087, "MagneticFieldStrength", Some(1.0)),
    (0x0008, 0x0070, "Manufacturer", None),
    (0x0008, 0x1090, "ManufacturersModelName", None),
    (0x0018, 0x1020, "SoftwareVersions", None),
    (0x0008, 0x1010, "StationName", None),
    (0x0008, 0x0080, "InstitutionName", None),
    (0x0008, 0x1030, "StudyDescription", None),
    (0x0008, 0x103E, "SeriesDescription", None),
    (0x0018, 0x1030, "ProtocolName", None),
    (0x0020, 0x0011, "SeriesNumber", Some(1.0)),
    (0x0018, 0x0015, "BodyPartExamined", None),
    (0x0018, 0x5100, "PatientPosition", None),
    (0x0018, 0x0023, "MRAcquisitionType", None),
    (0x0018, 0x0084, "ImagingFrequency", Some(1.0)),
    (0x0018, 0x0081, "EchoTime", Some(0.001)),
    (0x0018, 0x0080, "RepetitionTime", Some(0.001)),
    (0x0018, 0x0082, "InversionTime", Some(0.001)),
    (0x0018, 0x1314, "FlipAngle", Some(1.0)),
    (0x0018, 0x0091, "EchoTrainLength", Some(1.0)),
];

/// The sidecar of `v`: the source's fields, its slice thickness, the conversion software, and
/// `mrisr` (what mrisr did, for a result) when given.
pub fn sidecar(v: &Volume, mrisr: Option<Value>) -> Value {
    let mut m = Map::new();
    if let Some(attrs) = &v.meta.dicom {
        for &(g, e, key, scale) in FIELDS {
            let Some(text) = attrs.get(g, e) else {
                continue;
            };
            let value = match scale {
                Some(f) => match text.trim().parse::<f64>() {
                    // Whole numbers stay whole (SeriesNumber, EchoTrainLength).
                    Ok(x) if f == 1.0 && x.fract() == 0.0 && key != "MagneticFieldStrength" => {
                        json!(x as i64)
                    }
                    Ok(x) => json!(round(x * f)),
                    Err(_) => continue,
                },
                None => json!(text.trim()),
            };
            m.insert(key.into(), value);
        }
    } else if !v.meta.description.is_empty() {
        m.insert("SeriesDescription".into(), json!(v.meta.description));
    }
    if let Some(t) = v.meta.slice_thickness_mm {
        m.insert("SliceThickness".into(), json!(round(t)));
    }
    m.insert("ConversionSoftware".into(), json!("mrisr"));
    m.insert(
        "ConversionSoftwareVersion".into(),
        json!(env!("CARGO_PKG_VERSION")),
    );
    if let Some(x) = mrisr {
        m.insert("mrisr".into(), x);
    }
    Value::Object(m)
}

/// What a model did to a volume, for the sidecar's `mrisr` field (the command and the page):
/// the model's card in words, the input and output spacing and, for weights learned from a
/// scan, what they learned from.
pub fn what_was_done(card: &crate::model::ModelCard, input: &Volume, output: &Volume) -> Value {
    done_with_spacing(card, input.spacing, output.spacing)
}

/// [`what_was_done`] from the spacings alone (the page keeps the input's spacing, not the
/// input).
pub fn done_with_spacing(
    card: &crate::model::ModelCard,
    input_spacing: [f64; 3],
    output_spacing: [f64; 3],
) -> Value {
    let summary: Map<String, Value> = card
        .summary()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.into()))
        .collect();
    json!({
        "model": card.name,
        "card": summary,
        "input_spacing_mm": input_spacing,
        "output_spacing_mm": output_spacing,
        "adaptation": card.adapted,
    })
}

/// The sidecar's path for a NIfTI path: `name.nii(.gz)` -> `name.json`.
pub fn sidecar_path(nifti: &std::path::Path) -> std::path::PathBuf {
    let name = nifti
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("volume");
    let lower = name.to_ascii_lowercase();
    let stem = [".nii.gz", ".nii"]
        .iter()
        .find(|e| lower.ends_with(*e))
        .map_or(name, |e| &name[..name.len() - e.len()]);
    nifti.with_file_name(format!("{stem}.json"))
}

/// Six significant digits, as dcm2niix prints.
fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let p = 10f64.powi(5 - x.abs().log10().floor() as i32);
    (x * p).round() / p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::dicom::SourceAttributes;

    #[test]
    fn a_sidecar_in_bids_units_without_patient_identifiers() {
        let mut v = Volume::zeros([2, 2, 2], [1.0; 3]);
        v.meta.slice_thickness_mm = Some(1.5);
        v.meta.dicom = Some(SourceAttributes {
            elements: vec![
                (0x0018, 0x0081, "DS".into(), "42.52".into()),
                (0x0018, 0x0080, "DS".into(), "25".into()),
                (0x0018, 0x0087, "DS".into(), "3".into()),
                (0x0020, 0x0011, "IS".into(), "7".into()),
                (0x0008, 0x0070, "LO".into(), "GE MEDICAL SYSTEMS".into()),
                (0x0010, 0x0010, "PN".into(), "Doe^Jane".into()),
            ],
            images: Vec::new(),
        });
        let s = sidecar(&v, Some(json!({"factor": 4.0})));
        assert_eq!(s["EchoTime"], json!(0.04252));
        assert_eq!(s["RepetitionTime"], json!(0.025));
        assert_eq!(s["MagneticFieldStrength"], json!(3.0));
        assert_eq!(s["SeriesNumber"], json!(7));
        assert_eq!(s["Manufacturer"], json!("GE MEDICAL SYSTEMS"));
        assert_eq!(s["SliceThickness"], json!(1.5));
        assert_eq!(s["mrisr"]["factor"], json!(4.0));
        assert!(!s.to_string().contains("Doe"));
        assert_eq!(
            sidecar_path(std::path::Path::new("/a/knee.nii.gz")),
            std::path::Path::new("/a/knee.json")
        );
    }
}
