//! Reading headers of many inputs and grouping them into series.

use std::path::Path;

use walkdir::WalkDir;

use super::header::file_info;
use super::read::{self, OpenError};
use super::{DicomInput, ScanReport, Skipped, series};
use crate::{Error, Result};

/// Reads the headers of `inputs` (pixel data is not read) and groups the images into series,
/// the way dcm2niix does. Inputs that are not DICOM images are listed in
/// [`ScanReport::skipped`] with the reason; nothing here fails as a whole.
pub fn scan_inputs(inputs: Vec<DicomInput>) -> ScanReport {
    let mut skipped = Vec::new();
    let mut files = Vec::new();
    for input in inputs {
        match read::open(&input, true) {
            Ok(obj) => match file_info(&obj) {
                Ok(info) => files.push((input, info)),
                Err(reason) => skipped.push(Skipped {
                    name: input.name(),
                    reason: reason.to_string(),
                }),
            },
            Err(OpenError::NotDicom(reason)) | Err(OpenError::Broken(reason)) => {
                skipped.push(Skipped {
                    name: input.name(),
                    reason,
                })
            }
        }
    }
    ScanReport {
        series: series::build_series(files),
        skipped,
    }
}

/// Scans every file under `dir` (recursively, any file name, with or without `.dcm`).
/// Fails only if `dir` itself cannot be read; unreadable or non-DICOM files are skipped.
pub fn scan_dir(dir: &Path) -> Result<ScanReport> {
    std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths = Vec::new();
    let mut unreadable = Vec::new();
    // Linked folders are followed (walkdir reports a link back to an ancestor as a loop
    // instead of following it); 33 levels are deeper than any PACS export.
    for entry in WalkDir::new(dir).follow_links(true).max_depth(33) {
        match entry {
            Ok(e) if e.file_type().is_dir() => {}
            Ok(e) => paths.push(e.into_path()),
            Err(e) => unreadable.push(Skipped {
                name: e.path().unwrap_or(dir).display().to_string(),
                reason: if e.loop_ancestor().is_some() {
                    "folder link that loops back to a parent folder: not followed".to_string()
                } else {
                    format!(
                        "cannot read: {}",
                        e.io_error()
                            .map_or_else(|| e.to_string(), |io| io.to_string())
                    )
                },
            }),
        }
    }
    paths.sort();
    let mut report = scan_inputs(paths.into_iter().map(DicomInput::Path).collect());
    report.skipped.extend(unreadable);
    Ok(report)
}
