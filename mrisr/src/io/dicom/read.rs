//! Opening one input as a DICOM object: with or without the 128-byte preamble and "DICM",
//! with or without a file meta group, headers only or whole. Non-DICOM files (text, JSON,
//! NIfTI, gzip) are recognised from their first bytes and refused with a short reason.

use std::io::{Cursor, Read, Seek, SeekFrom};

use dicom_dictionary_std::tags;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::file::ReadPreamble;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::lengths::{self, Encoding, LengthError, Walked};
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
    Bare { explicit: bool, big_endian: bool },
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
            return Ok(Layout::Bare {
                explicit: vr_like,
                big_endian: false,
            });
        }
        let be_group = u16::from_be_bytes([prefix[0], prefix[1]]);
        let be_element = u16::from_be_bytes([prefix[2], prefix[3]]);
        if be_group == 0x0008 && be_element <= 0x0020 && vr_like {
            return Ok(Layout::Bare {
                explicit: true,
                big_endian: true,
            });
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
/// a scan does not read (or decompress) images. Declared lengths are checked first
/// ([`lengths`]): no element makes the parser allocate more than the input holds.
pub(crate) fn open(input: &DicomInput, header_only: bool) -> Result<DefaultDicomObject, OpenError> {
    let (prefix, reader) = source(input)?;
    let layout = sniff(&prefix)?;
    let with_meta = matches!(
        layout,
        Layout::Preamble | Layout::MagicOnly | Layout::MetaNoMagic
    );
    let checked = check_lengths(input, &layout, header_only)?;
    let reader: Box<dyn Read + '_> = match checked.parse_until {
        Some(end) => Box::new(reader.take(end)),
        None => reader,
    };
    let first = if checked.declared_fits {
        guarded(|| open_layout(layout, reader, header_only))
    } else {
        // Only the other VR encoding's lengths fit: straight to the lenient reader.
        let bytes = whole(input)?;
        return guarded(|| open_lenient(&bytes));
    };
    match first {
        // The fallbacks below re-read the data set their own way; only when the declared
        // encoding's lengths were checked.
        Err(OpenError::Broken(reason)) if with_meta && checked.declared_fits => {
            // dicom-rs wants a group length first and a data set encoded as declared; some
            // files break either rule. Walk the meta group by hand and retry.
            let bytes = whole(input)?;
            guarded(|| open_truncated(&bytes, header_only))
                .or_else(|_| guarded(|| open_lenient(&bytes)))
                .map_err(|_| OpenError::Broken(reason))
        }
        other => other,
    }
}

/// A buffered file whose relative seeks stay in the buffer when they can (a plain
/// `BufReader` drops its buffer on every seek): the length walk skips many small values. It
/// counts its own position, so a relative seek asks the system nothing unless it leaves the
/// buffer.
struct Relative<R> {
    inner: std::io::BufReader<R>,
    pos: u64,
}

impl<R: Read> Read for Relative<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<R: Read + Seek> Seek for Relative<R> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Current(n) => {
                let to = self.pos.checked_add_signed(n).ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        "seek before the start or past 2^64",
                    )
                })?;
                self.inner.seek_relative(n)?;
                to
            }
            other => self.inner.seek(other)?,
        };
        Ok(self.pos)
    }
}

/// All the bytes of an input.
fn whole(input: &DicomInput) -> Result<Vec<u8>, OpenError> {
    match input {
        DicomInput::Memory { bytes, .. } => Ok(bytes.to_vec()),
        DicomInput::Path(p) => {
            std::fs::read(p).map_err(|e| OpenError::Broken(format!("cannot read: {e}")))
        }
    }
}

/// What [`check_lengths`] found.
struct Checked {
    /// The lengths fit as the data set is declared (else they fit in the other little-endian
    /// VR encoding, the one a mislabelled file really has).
    declared_fits: bool,
    /// Parse only this many bytes from the start (junk after the pixel data).
    parse_until: Option<u64>,
}

/// Checks the declared lengths of `input`'s data set ([`lengths::check`]) before dicom-rs
/// reserves memory for them; a length that runs past the end of the input is refused here.
fn check_lengths(
    input: &DicomInput,
    layout: &Layout,
    header_only: bool,
) -> Result<Checked, OpenError> {
    let broken = |e: LengthError| OpenError::Broken(format!("cannot parse DICOM: {e}"));
    let io = |e: std::io::Error| OpenError::Broken(format!("cannot read: {e}"));
    // The file meta group (when there is one) is walked in the first bytes.
    let head: std::borrow::Cow<'_, [u8]> = match input {
        DicomInput::Memory { bytes, .. } => std::borrow::Cow::Borrowed(&bytes[..]),
        DicomInput::Path(p) => {
            let mut head = Vec::new();
            std::fs::File::open(p)
                .and_then(|f| f.take(1 << 16).read_to_end(&mut head))
                .map_err(io)?;
            std::borrow::Cow::Owned(head)
        }
    };
    let (start, ts) = match layout {
        Layout::Bare {
            explicit,
            big_endian,
        } => (
            0,
            match (explicit, big_endian) {
                (_, true) => "1.2.840.10008.1.2.2",
                (true, false) => "1.2.840.10008.1.2.1",
                (false, false) => "1.2.840.10008.1.2",
            }
            .to_string(),
        ),
        _ => {
            let from = match layout {
                Layout::Preamble => 132,
                Layout::MagicOnly => 4,
                _ => 0,
            };
            let total = match input {
                DicomInput::Memory { bytes, .. } => bytes.len() as u64,
                DicomInput::Path(p) => std::fs::metadata(p).map_err(io)?.len(),
            };
            lengths::check_meta(&head, from, total).map_err(broken)?;
            let (end, vals) = walk_meta(&head, from);
            let ts = vals
                .iter()
                .find(|(e, _)| *e == 0x0010)
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (end as u64, ts)
        }
    };
    let total = match input {
        DicomInput::Memory { bytes, .. } => bytes.len() as u64,
        DicomInput::Path(p) => std::fs::metadata(p).map_err(io)?.len(),
    };
    let len = total.saturating_sub(start);
    let walk = |enc: Encoding| -> Result<Walked, LengthError> {
        if ts == "1.2.840.10008.1.2.1.99" {
            let mut deflated = Vec::new();
            match input {
                DicomInput::Memory { bytes, .. } => {
                    deflated.extend_from_slice(&bytes[start.min(total) as usize..])
                }
                DicomInput::Path(p) => {
                    let mut f =
                        std::fs::File::open(p).map_err(|e| LengthError::Io(e.to_string()))?;
                    f.seek(SeekFrom::Start(start))
                        .and_then(|_| f.read_to_end(&mut deflated))
                        .map_err(|e| LengthError::Io(e.to_string()))?;
                }
            }
            return lengths::check_deflated(&deflated, header_only);
        }
        match input {
            DicomInput::Memory { bytes, .. } => {
                let mut c = Cursor::new(&bytes[..]);
                c.set_position(start);
                lengths::check(&mut c, len, enc, header_only)
            }
            DicomInput::Path(p) => {
                let f = std::fs::File::open(p).map_err(|e| LengthError::Io(e.to_string()))?;
                let mut r = Relative {
                    inner: std::io::BufReader::with_capacity(1 << 16, f),
                    pos: 0,
                };
                r.seek(SeekFrom::Start(start))
                    .map_err(|e| LengthError::Io(e.to_string()))?;
                lengths::check(&mut r, len, enc, header_only)
            }
        }
    };
    let declared = Encoding::of(&ts);
    let cut = |w: Walked| match w {
        Walked::Fits => None,
        Walked::JunkAfterPixelData { end } => Some(start + end),
    };
    match walk(declared) {
        Ok(w) => Ok(Checked {
            declared_fits: true,
            parse_until: cut(w),
        }),
        Err(e) => {
            // A data set encoded in the other little-endian VR encoding than declared.
            let other = Encoding {
                explicit_vr: !declared.explicit_vr,
                big_endian: false,
            };
            if !declared.big_endian && ts != "1.2.840.10008.1.2.1.99" && walk(other).is_ok() {
                return Ok(Checked {
                    declared_fits: false,
                    parse_until: None,
                });
            }
            Err(broken(e))
        }
    }
}

/// Runs a parser under `catch_unwind`: dicom-rs should not panic on bad input, but a scan
/// must survive it if it does.
fn guarded<T>(f: impl FnOnce() -> Result<T, OpenError>) -> Result<T, OpenError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Err(OpenError::Broken(
            "the DICOM parser failed on malformed data".into(),
        ))
    })
}

/// Files with junk after the Pixel Data element (seen in the wild): parse only up to the end
/// of the first Pixel Data element that yields a valid file.
fn open_truncated(b: &[u8], header_only: bool) -> Result<DefaultDicomObject, OpenError> {
    let tag = [0xE0u8, 0x7F, 0x10, 0x00];
    let mut from = 0;
    for _ in 0..4 {
        let Some(i) = b[from..]
            .windows(4)
            .position(|w| w == tag)
            .map(|p| p + from)
        else {
            break;
        };
        from = i + 4;
        let rd = |at: usize| {
            b.get(at..at + 4)
                .map(|v| u32::from_le_bytes([v[0], v[1], v[2], v[3]]) as usize)
        };
        let explicit = matches!(b.get(i + 4..i + 6), Some(b"OB") | Some(b"OW"));
        let (len, hdr) = if explicit {
            (rd(i + 8), 12)
        } else {
            (rd(i + 4), 8)
        };
        let Some(len) = len else { break };
        let end = if len == 0xFFFF_FFFF {
            let delim = [0xFEu8, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0];
            match b[i..].windows(8).position(|w| w == delim) {
                Some(p) => i + p + 8,
                None => continue,
            }
        } else {
            i + hdr + len
        };
        if end > b.len() {
            continue;
        }
        let Ok(layout) = sniff(&b[..end.min(132)]) else {
            break;
        };
        if let Ok(obj) = open_layout(layout, Box::new(&b[..end]), header_only)
            && (header_only || obj.get(tags::PIXEL_DATA).is_some())
        {
            return Ok(obj);
        }
    }
    Err(OpenError::Broken("no parsable Pixel Data element".into()))
}

/// Walks an explicit-VR little-endian group 0002 from `pos`; returns where the data set starts
/// and the meta values by element number.
fn walk_meta(b: &[u8], mut pos: usize) -> (usize, Vec<(u16, String)>) {
    let mut vals = Vec::new();
    while pos + 8 <= b.len() && b[pos] == 0x02 && b[pos + 1] == 0x00 {
        let element = u16::from_le_bytes([b[pos + 2], b[pos + 3]]);
        let vr = &b[pos + 4..pos + 6];
        if !(vr[0].is_ascii_uppercase() && vr[1].is_ascii_uppercase()) {
            break;
        }
        let long = matches!(
            vr,
            b"OB" | b"OW" | b"OF" | b"OD" | b"OL" | b"OV" | b"SQ" | b"UT" | b"UN" | b"UC" | b"UR"
        );
        let (len, hdr) = if long {
            match b.get(pos + 8..pos + 12) {
                Some(l) => (u32::from_le_bytes([l[0], l[1], l[2], l[3]]) as usize, 12),
                None => break,
            }
        } else {
            (u16::from_le_bytes([b[pos + 6], b[pos + 7]]) as usize, 8)
        };
        let Some(v) = b.get(pos + hdr..(pos + hdr).saturating_add(len)) else {
            break;
        };
        let text = String::from_utf8_lossy(v)
            .trim_end_matches(['\0', ' '])
            .to_string();
        vals.push((element, text));
        pos += hdr + len;
    }
    (pos, vals)
}

/// Second chance for files with a non-standard meta group or a data set encoded with another
/// VR than declared: parse the meta by hand, then the data set with the declared transfer
/// syntax and, failing that, with the other little-endian VR encoding.
fn open_lenient(b: &[u8]) -> Result<DefaultDicomObject, OpenError> {
    let start = if b.len() >= 132 && &b[128..132] == b"DICM" {
        132
    } else if b.starts_with(b"DICM") {
        4
    } else {
        0
    };
    let (end, vals) = walk_meta(b, start);
    let get = |e: u16| {
        vals.iter()
            .find(|(el, _)| *el == e)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let declared = get(0x0010);
    let declared = if declared.is_empty() {
        "1.2.840.10008.1.2".to_string()
    } else {
        declared
    };
    let ts = TransferSyntaxRegistry
        .get(&declared)
        .ok_or_else(|| OpenError::Broken(format!("unknown transfer syntax {declared}")))?;
    let implicit = TransferSyntaxRegistry
        .get("1.2.840.10008.1.2")
        .ok_or_else(|| OpenError::Broken("registry lacks implicit VR".into()))?;
    let explicit = TransferSyntaxRegistry
        .get("1.2.840.10008.1.2.1")
        .ok_or_else(|| OpenError::Broken("registry lacks explicit VR".into()))?;
    let data = &b[end.min(b.len())..];
    let mut last_err = String::new();
    for parse_ts in [ts, implicit, explicit] {
        // Only encodings whose declared lengths fit the bytes (see `check_lengths`).
        let fits = match parse_ts.codec() {
            dicom_encoding::transfer_syntax::Codec::Dataset(_) => {
                lengths::check_deflated(data, false)
            }
            _ => {
                let enc = Encoding::of(parse_ts.uid());
                lengths::check(&mut Cursor::new(data), data.len() as u64, enc, false)
            }
        };
        if let Err(e) = fits {
            last_err = e.to_string();
            continue;
        }
        match InMemDicomObject::read_dataset_with_ts(data, parse_ts) {
            Ok(obj) if obj.iter().count() > 1 => {
                let meta = FileMetaTableBuilder::new()
                    .transfer_syntax(declared.as_str())
                    .media_storage_sop_class_uid(get(0x0002))
                    .media_storage_sop_instance_uid(get(0x0003));
                return obj
                    .with_meta(meta)
                    .map_err(|e| OpenError::Broken(error_chain(&e)));
            }
            Ok(_) => last_err = "empty data set".into(),
            Err(e) => last_err = error_chain(&e),
        }
    }
    Err(OpenError::Broken(last_err))
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
        Layout::Bare {
            explicit,
            big_endian,
        } => {
            let uid = match (explicit, big_endian) {
                (_, true) => "1.2.840.10008.1.2.2",
                (true, false) => "1.2.840.10008.1.2.1",
                (false, false) => "1.2.840.10008.1.2",
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
