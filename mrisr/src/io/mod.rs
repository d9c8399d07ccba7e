//! Reading and writing volumes: DICOM series (in and out) and NIfTI-1.

pub mod bids;
pub mod dicom;
pub mod nifti;

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
}
