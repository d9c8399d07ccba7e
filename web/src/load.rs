//! Files handed over by the page -> the series they contain -> one volume.
//!
//! The page reads the dropped files (a DICOM folder, loose files, or NIfTI files) into memory
//! and passes (name, bytes) pairs; nothing is uploaded anywhere. DICOM files are grouped into
//! series by `mrisr::io::dicom`, each NIfTI file is one entry of the list.

use mrisr::Volume;
use mrisr::io::dicom::{DicomInput, ScanReport, Series, load_series, scan_inputs};
use mrisr::io::nifti::read_nifti_bytes;
use serde::Serialize;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::handle::VolumeHandle;
use crate::{js_error, lib_error};

/// What was found in a set of files: DICOM series and NIfTI volumes, in the order listed.
#[wasm_bindgen]
pub struct Scan {
    entries: Vec<Entry>,
    report_json: String,
}

enum Entry {
    Dicom(Box<Series>),
    Nifti(String, Vec<Volume>),
}

/// One line of the series list the page shows.
#[derive(Serialize)]
struct Listed {
    index: usize,
    kind: &'static str,
    description: String,
    modality: String,
    number: Option<i64>,
    dims: [usize; 3],
    spacing: [f64; 3],
    volumes: usize,
    echo: Option<i64>,
    files: usize,
    warnings: Vec<String>,
    problem: Option<String>,
}

#[derive(Serialize)]
struct Report<'a> {
    series: &'a [Listed],
    /// Files that are not part of any series (and why), e.g. DICOMDIR, text files.
    skipped: Vec<(String, String)>,
    files: usize,
}

fn is_nifti(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.ends_with(".nii") || n.ends_with(".nii.gz")
}

/// Names of OS clutter that is never DICOM and not worth listing as skipped.
fn is_clutter(name: &str) -> bool {
    let base = name.rsplit('/').next().unwrap_or(name);
    base.starts_with('.')
        || base.eq_ignore_ascii_case("thumbs.db")
        || base.eq_ignore_ascii_case("desktop.ini")
}

#[wasm_bindgen]
impl Scan {
    /// Scans `names[n]` / `files[n]` (an array of `Uint8Array`). Never fails as a whole: files
    /// that cannot be used are listed in the report with the reason.
    #[wasm_bindgen(constructor)]
    pub fn new(names: Vec<String>, files: js_sys::Array) -> Result<Scan, JsValue> {
        if names.len() != files.length() as usize {
            return Err(js_error("scan: names and files differ in number"));
        }
        let mut dicom = Vec::new();
        let mut entries = Vec::new();
        let mut skipped = Vec::new();
        for (name, f) in names.iter().zip(files.iter()) {
            let bytes: js_sys::Uint8Array = f
                .dyn_into()
                .map_err(|_| js_error(format!("{name}: expected a Uint8Array")))?;
            if is_clutter(name) {
                continue;
            }
            if is_nifti(name) {
                match read_nifti_bytes(name, &bytes.to_vec()) {
                    Ok(v) if !v.is_empty() => entries.push(Entry::Nifti(name.clone(), v)),
                    Ok(_) => skipped.push((name.clone(), "no volume in this NIfTI file".into())),
                    Err(e) => skipped.push((name.clone(), strip_name(&e.to_string(), name))),
                }
            } else {
                dicom.push(DicomInput::memory(name.clone(), bytes.to_vec()));
            }
        }
        let ScanReport {
            series,
            skipped: dskip,
        } = scan_inputs(dicom);
        let mut all: Vec<Entry> = series
            .into_iter()
            .map(|s| Entry::Dicom(Box::new(s)))
            .collect();
        all.extend(entries);
        skipped.extend(dskip.into_iter().map(|s| (s.name, s.reason)));
        let listed: Vec<Listed> = all
            .iter()
            .enumerate()
            .map(|(index, e)| listed(index, e))
            .collect();
        let report_json = serde_json::to_string(&Report {
            series: &listed,
            skipped,
            files: names.len(),
        })
        .map_err(js_error)?;
        Ok(Scan {
            entries: all,
            report_json,
        })
    }

    /// `{series: [{index, kind, description, dims, spacing, ...}], skipped: [[name, reason]], files}`.
    pub fn report(&self) -> String {
        self.report_json.clone()
    }

    /// Reads entry `index` and returns its volume number `volume` (time point / echo volume).
    pub fn load(&self, index: usize, volume: usize) -> Result<VolumeHandle, JsValue> {
        let entry = self
            .entries
            .get(index)
            .ok_or_else(|| js_error(format!("there is no series number {index}")))?;
        let mut vols = match entry {
            Entry::Dicom(s) => load_series(s).map_err(lib_error)?,
            Entry::Nifti(_, v) => v.clone(),
        };
        if volume >= vols.len() {
            return Err(js_error(format!(
                "the series has {} volumes, not {}",
                vols.len(),
                volume + 1
            )));
        }
        Ok(VolumeHandle::new(vols.swap_remove(volume)))
    }
}

fn listed(index: usize, e: &Entry) -> Listed {
    match e {
        Entry::Dicom(s) => Listed {
            index,
            kind: "dicom",
            description: if s.description.is_empty() {
                "(no description)".into()
            } else {
                s.description.clone()
            },
            modality: s.modality.clone(),
            number: s.number,
            dims: s.dims,
            spacing: s.spacing,
            volumes: s.volumes,
            echo: s.echo,
            files: s.files.len(),
            warnings: s.warnings.clone(),
            problem: s.problem.clone(),
        },
        Entry::Nifti(name, v) => Listed {
            index,
            kind: "nifti",
            description: if v[0].meta.description.trim().is_empty() {
                name.clone()
            } else {
                format!("{} ({name})", v[0].meta.description.trim())
            },
            modality: String::new(),
            number: None,
            dims: v[0].dims,
            spacing: v[0].spacing,
            volumes: v.len(),
            echo: None,
            files: 1,
            warnings: Vec::new(),
            problem: None,
        },
    }
}

/// The library's messages start with the file name; the report already shows it.
fn strip_name(msg: &str, name: &str) -> String {
    msg.strip_prefix(name)
        .map(|m| m.trim_start_matches(": ").to_string())
        .unwrap_or_else(|| msg.to_string())
}
