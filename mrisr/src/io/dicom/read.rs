//! Opening one input as a DICOM object: with or without the 128-byte preamble and "DICM",
//! with or without a file meta group, headers only or whole. Non-DICOM files (text, JSON,
//! NIfTI, gzip) are recognised from their first bytes and refused with a short reason.

use std::io::{Cursor, Read};

use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::{DicomInput, error_chain};

/// Why an input could not be opened. `NotDicom` files are skipped quietly by a scan.
#[derive(Debug)]
pub(crate) enum OpenError {
    NotDicom(String),
    Broken(String),
}

impl OpenError {
    pub(crate) fn reason(&self) -> &str {
        match self {
            OpenError::NotDicom(r) | OpenError::Broken(r) => r,
        }
    }
}

/// How the bytes start, decided from the first 132 bytes.
enum Layout {
    /// 128-byte preamble then "DICM" (the standard file format).
    Preamble,
    /// "DICM" at offset 0 (preamble stripped).
    MagicOnly,
    /// File meta group (group 0002) without "DICM".
    MetaNoMagic,
    /// A bare data set, no file meta: the transfer syntax is guessed.
    Bare { explicit: bool },
}

fn sniff(prefix: &[u8]) -> Result<Layout, OpenError> {
    let not = |r: &str| Err(OpenError::NotDicom(r.to_string()));
    if prefix.len() >= 132 && &prefix[128..132] == b"DICM" {
        return Ok(Layout::Preamble);
    }
    if prefix.starts_with(b"DICM") {
        return Ok(Layout::MagicOnly);
    }
    if prefix.is_empty() {
        return not("empty file");
    }
    if prefix.starts_with(&[0x1f, 0x8b]) {
        return not("gzip-compressed file (not DICOM)");
    }
    if prefix.len() >= 4 {
        let h = i32::from_le_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]);
        if h == 348 || h.swap_bytes() == 348 {
            return not("NIfTI-1 file (not DICOM)");
        }
        if h == 540 || h.swap_bytes() == 540 {
            return not("NIfTI-2 file (not DICOM)");
        }
    }
    let first = prefix.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if matches!(first, Some(b'{') | Some(b'[')) && looks_textual(prefix) {
        return not("JSON file (not DICOM)");
    }
    if prefix.len() >= 8 {
        let group = u16::from_le_bytes([prefix[0], prefix[1]]);
        let element = u16::from_le_bytes([prefix[2], prefix[3]]);
        let vr_like = prefix[4].is_ascii_uppercase() && prefix[5].is_ascii_uppercase();
        if group == 0x0002 && element <= 0x0100 {
            return Ok(Layout::MetaNoMagic);
        }
        // A data set without meta almost always starts in group 0008 (or its group length).
        if group == 0x0008 && element <= 0x0020 {
            return Ok(Layout::Bare { explicit: vr_like });
        }
    }
    if looks_textual(prefix) {
        return not("text file (not DICOM)");
    }
    not("not a DICOM file (no \"DICM\" marker and no recognisable data set)")
}

fn looks_textual(b: &[u8]) -> bool {
    !b.is_empty()
        && b.iter().all(|&c| {
            c == b'\n' || c == b'\r' || c == b'\t' || (0x20..0x7f).contains(&c) || c >= 0x80
        })
}

/// The bytes of an input: a reader from the start and its first bytes for sniffing.
fn source(input: &DicomInput) -> Result<(Vec<u8>, Box<dyn Read + '_>), OpenError> {
    match input {
        DicomInput::Memory { bytes, .. } => {
            let n = bytes.len().min(132);
            Ok((bytes[..n].to_vec(), Box::new(Cursor::new(&bytes[..]))))
        }
        DicomInput::Path(p) => {
            let io = |e: std::io::Error| OpenError::Broken(format!("cannot read: {e}"));
            let mut f = std::fs::File::open(p).map_err(io)?;
            let mut prefix = Vec::with_capacity(132);
            (&mut f).take(132).read_to_end(&mut prefix).map_err(io)?;
            let rest = std::io::BufReader::with_capacity(1 << 16, f);
            Ok((prefix.clone(), Box::new(Cursor::new(prefix).chain(rest))))
        }
    }
}

/// Opens `input` as a DICOM object. With `header_only` the parser stops before Pixel Data, so
/// a scan does not read (or decompress) images.
pub(crate) fn open(input: &DicomInput, header_only: bool) -> Result<DefaultDicomObject, OpenError> {
    let (prefix, reader) = source(input)?;
    let layout = sniff(&prefix)?;
    // dicom-rs should not panic on bad input, but a scan must survive it if it does.
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        open_layout(layout, reader, header_only)
    }));
    match res {
        Ok(r) => r,
        Err(_) => Err(OpenError::Broken(
            "the DICOM parser failed on malformed data".into(),
        )),
    }
}

fn open_layout(
    layout: Layout,
    reader: Box<dyn Read + '_>,
    header_only: bool,
) -> Result<DefaultDicomObject, OpenError> {
    let broken = |e: &dyn std::error::Error| {
        OpenError::Broken(format!("cannot parse DICOM: {}", error_chain(e)))
    };
    let options = || {
        let o = OpenFileOptions::new();
        if header_only {
            o.read_until(tags::PIXEL_DATA)
        } else {
            o
        }
    };
    match layout {
        Layout::Preamble => options()
            .read_preamble(ReadPreamble::Always)
            .from_reader(reader)
            .map_err(|e| broken(&e)),
        Layout::MagicOnly => options()
            .read_preamble(ReadPreamble::Never)
            .from_reader(reader)
            .map_err(|e| broken(&e)),
        Layout::MetaNoMagic => options()
            .read_preamble(ReadPreamble::Never)
            .from_reader(Cursor::new(b"DICM").chain(reader))
            .map_err(|e| broken(&e)),
        Layout::Bare { explicit } => {
            let uid = if explicit {
                "1.2.840.10008.1.2.1"
            } else {
                "1.2.840.10008.1.2"
            };
            let ts = TransferSyntaxRegistry
                .get(uid)
                .ok_or_else(|| OpenError::Broken(format!("transfer syntax {uid} unknown")))?;
            let obj = InMemDicomObject::read_dataset_with_ts(reader, ts).map_err(|e| broken(&e))?;
            let str_of = |t| {
                obj.get(t)
                    .and_then(|e| e.to_str().ok())
                    .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
                    .unwrap_or_default()
            };
            let meta = FileMetaTableBuilder::new()
                .transfer_syntax(uid)
                .media_storage_sop_class_uid(str_of(tags::SOP_CLASS_UID))
                .media_storage_sop_instance_uid(str_of(tags::SOP_INSTANCE_UID));
            obj.with_meta(meta).map_err(|e| broken(&e))
        }
    }
}

/// Reads a whole input (path or memory) as bytes, for checks that need the length.
#[allow(dead_code)]
pub(crate) fn input_len(input: &DicomInput) -> Option<u64> {
    match input {
        DicomInput::Memory { bytes, .. } => Some(bytes.len() as u64),
        DicomInput::Path(p) => std::fs::metadata(p).ok().map(|m| m.len()),
    }
}
