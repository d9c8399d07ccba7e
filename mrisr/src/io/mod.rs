//! Reading and writing volumes: DICOM series (in and out, and zipped for a download) and
//! NIfTI-1.

pub mod bids;
pub mod dicom;
pub mod nifti;
#[cfg(feature = "zip")]
pub mod zip;

/// Writes `bytes` to `path` through a temporary file beside it (`path` + `.partial`), renamed
/// into place: an interrupted run leaves the old file or the new one, never half of one.
pub fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> crate::Result<()> {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    let tmp = std::path::PathBuf::from(name);
    std::fs::write(&tmp, bytes)
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            crate::Error::io(path, e)
        })
}

/// `s` (a series description, a volume's name) made safe as a file name: ASCII letters,
/// digits, `-` and `_`, at most 60 characters; "volume" when nothing is left.
pub fn file_stem(s: &str) -> String {
    let safe: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe: String = safe.trim_matches('_').chars().take(60).collect();
    if safe.is_empty() {
        "volume".into()
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn file_stems_are_safe() {
        assert_eq!(
            super::file_stem("Sag DESS 3132/30 (x2)"),
            "Sag_DESS_3132_30__x2"
        );
        assert_eq!(super::file_stem("knee_dess-echo1"), "knee_dess-echo1");
        assert_eq!(super::file_stem("../"), "volume");
        assert_eq!(super::file_stem(&"a".repeat(99)).len(), 60);
    }

    #[test]
    fn atomic_writes_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.nii.gz");
        super::write_atomically(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        // A folder that does not exist: the error names the file.
        let bad = dir.path().join("no/such/out.json");
        let e = super::write_atomically(&bad, b"x").unwrap_err().to_string();
        assert!(e.contains("out.json"), "{e}");
    }
}
