//! A DICOM series as a zip archive (the page's download), written with the `zip` crate.
//!
//! Entries are stored, not deflated: DICOM pixel data barely compresses with deflate, and
//! storing keeps the export fast in a browser tab. Archives that would need zip64 (over 4 GiB
//! or 65535 files) are refused with a message, as no one would want such a download from a tab.

use std::io::Write;

pub use zip::DateTime;

use crate::io::dicom::{WriteOptions, write_series};
use crate::{Error, Result, Volume};

/// `volume` as a new DICOM series (see [`write_series`]) in a zip, one file per slice named
/// `<folder>/IM00001.dcm`, ... (no folder when `folder` is empty), stamped `when`.
pub fn dicom_series_zip(
    volume: &Volume,
    opts: &WriteOptions,
    folder: &str,
    when: DateTime,
) -> Result<Vec<u8>> {
    let folder = folder.trim_matches('/');
    let files: Vec<(String, Vec<u8>)> = write_series(volume, opts)?
        .into_iter()
        .map(|(name, bytes)| match folder {
            "" => (name, bytes),
            _ => (format!("{folder}/{name}"), bytes),
        })
        .collect();
    write_stored(&files, when)
}

/// A zip archive holding `files` (name, bytes) uncompressed, in order, stamped `when`.
pub fn write_stored(files: &[(String, Vec<u8>)], when: DateTime) -> Result<Vec<u8>> {
    let total: usize = files
        .iter()
        .map(|(n, b)| 76 + 2 * n.len() + b.len())
        .sum::<usize>()
        + 22;
    if total > u32::MAX as usize || files.len() > u16::MAX as usize {
        return Err(Error::Invalid(format!(
            "the zip would hold {} files and {} MB, more than a zip without zip64 allows",
            files.len(),
            total >> 20
        )));
    }
    let fail = |e: &dyn std::fmt::Display| Error::Invalid(format!("writing the zip failed: {e}"));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::with_capacity(total)));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .last_modified_time(when);
    for (name, bytes) in files {
        zip.start_file(name.as_str(), opts).map_err(|e| fail(&e))?;
        zip.write_all(bytes).map_err(|e| fail(&e))?;
    }
    Ok(zip.finish().map_err(|e| fail(&e))?.into_inner())
}

/// A zip timestamp from a calendar date and time (outside 1980-2107: 1980-01-01).
pub fn date_time(year: u32, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> DateTime {
    let t = |v: u32| u8::try_from(v).unwrap_or(0);
    u16::try_from(year)
        .ok()
        .and_then(|y| {
            DateTime::from_date_and_time(y, t(month), t(day), t(hour), t(min), t(sec)).ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::io::dicom::{DicomInput, load_series, scan_inputs};

    fn entries(z: Vec<u8>) -> Vec<(String, Vec<u8>)> {
        let mut r = zip::ZipArchive::new(std::io::Cursor::new(z)).unwrap();
        (0..r.len())
            .map(|i| {
                let mut e = r.by_index(i).unwrap();
                assert_eq!(e.compression(), zip::CompressionMethod::Stored);
                let mut back = Vec::new();
                e.read_to_end(&mut back).unwrap();
                (e.name().to_string(), back)
            })
            .collect()
    }

    #[test]
    fn archive_reads_back() {
        let files = vec![
            ("s/a.dcm".to_string(), vec![1, 2, 3]),
            ("s/b.dcm".into(), vec![4; 1000]),
        ];
        let z = write_stored(&files, date_time(2026, 1, 2, 3, 4, 6)).unwrap();
        let mut r = zip::ZipArchive::new(std::io::Cursor::new(z.clone())).unwrap();
        let stamp = r.by_index(0).unwrap().last_modified().unwrap();
        assert_eq!((stamp.year(), stamp.month(), stamp.second()), (2026, 1, 6));
        assert_eq!(entries(z), files);
        assert_eq!(date_time(1970, 1, 1, 0, 0, 0), DateTime::default());
    }

    #[test]
    fn a_zipped_series_reads_back_as_the_volume() {
        let mut v = Volume::zeros([4, 3, 2], [0.5, 0.5, 2.0]);
        v.data = (0..24).map(|x| x as f32 * 10.0).collect();
        let z = dicom_series_zip(&v, &WriteOptions::default(), "/out/", DateTime::default());
        let files = entries(z.unwrap());
        assert_eq!(files.len(), 2, "one file per slice");
        assert!(
            files.iter().all(|(n, _)| n.starts_with("out/")),
            "{files:?}"
        );
        let inputs = files
            .into_iter()
            .map(|(n, b)| DicomInput::memory(n, b))
            .collect();
        let report = scan_inputs(inputs);
        assert_eq!(report.series.len(), 1, "{:?}", report.skipped);
        let back = load_series(&report.series[0]).unwrap().remove(0);
        assert_eq!(back.dims, v.dims);
        assert_eq!(back.data, v.data);
    }
}
