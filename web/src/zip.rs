//! The exported DICOM series as a zip archive (stored entries: DICOM pixel data barely
//! compresses with deflate, and storing keeps the export fast in the browser), written with
//! the `zip` crate. Archives that would need zip64 (over 4 GiB or 65535 files) are refused with
//! a message, as no one would want such a download from a tab.

use std::io::Write;

pub use zip::DateTime;

/// A zip archive holding `files` (name, bytes) uncompressed, in order, stamped `when`.
pub fn write_stored(files: &[(String, Vec<u8>)], when: DateTime) -> Result<Vec<u8>, String> {
    let total: usize = files
        .iter()
        .map(|(n, b)| 76 + 2 * n.len() + b.len())
        .sum::<usize>()
        + 22;
    if total > u32::MAX as usize || files.len() > u16::MAX as usize {
        return Err(format!(
            "the zip would hold {} files and {} MB, more than a zip without zip64 allows",
            files.len(),
            total >> 20
        ));
    }
    let fail = |e: &dyn std::fmt::Display| format!("writing the zip failed: {e}");
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
    use super::*;

    #[test]
    fn archive_reads_back() {
        let files = vec![
            ("s/a.dcm".to_string(), vec![1, 2, 3]),
            ("s/b.dcm".into(), vec![4; 1000]),
        ];
        let z = write_stored(&files, date_time(2026, 1, 2, 3, 4, 6)).unwrap();
        let mut r = zip::ZipArchive::new(std::io::Cursor::new(z)).unwrap();
        assert_eq!(r.len(), 2);
        let mut e = r.by_name("s/b.dcm").unwrap();
        assert_eq!(e.compression(), zip::CompressionMethod::Stored);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut back).unwrap();
        assert_eq!(back, vec![4; 1000]);
    }
}
