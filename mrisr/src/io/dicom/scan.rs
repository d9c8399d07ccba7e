//! Reading headers of many inputs and grouping them into series.

use std::path::{Path, PathBuf};

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
                    reason,
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
    let mut paths = Vec::new();
    let mut unreadable = Vec::new();
    walk(dir, &mut paths, &mut unreadable, 0).map_err(|e| Error::io(dir, e))?;
    paths.sort();
    let mut report = scan_inputs(paths.into_iter().map(DicomInput::Path).collect());
    report.skipped.extend(unreadable);
    Ok(report)
}

fn walk(
    dir: &Path,
    out: &mut Vec<PathBuf>,
    unreadable: &mut Vec<Skipped>,
    depth: usize,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let ft = match entry.file_type() {
            Ok(t) => t,
            Err(e) => {
                unreadable.push(Skipped {
                    name: path.display().to_string(),
                    reason: format!("cannot read: {e}"),
                });
                continue;
            }
        };
        if ft.is_dir() || (ft.is_symlink() && path.is_dir()) {
            // Deep enough for any PACS export; stops symlink loops.
            if depth < 32
                && let Err(e) = walk(&path, out, unreadable, depth + 1)
            {
                unreadable.push(Skipped {
                    name: path.display().to_string(),
                    reason: format!("cannot read folder: {e}"),
                });
            }
        } else {
            out.push(path);
        }
    }
    Ok(())
}
