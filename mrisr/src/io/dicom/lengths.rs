//! Declared lengths checked before dicom-rs parses a file: dicom-rs reserves (and zeroes) as
//! many bytes as an element header declares before reading its value, so one header claiming
//! 2 GB costs 2 GB of memory, which in the page (wasm32: one linear memory that never shrinks)
//! can take the tab down. Here every element and item, nested sequences included, must fit in
//! the bytes that are left of the file, so no value allocation exceeds the file's size.
//!
//! Only headers are read; values are skipped with `seek`. Deflated data sets are inflated
//! first (at most [`MAX_INFLATED`] bytes) and their inflated bytes are walked.

use std::io::{Read, Seek, SeekFrom};

use dicom_core::Tag;
use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
use dicom_dictionary_std::StandardDataDictionary;

/// A deflated data set may inflate to at most this many bytes (1 GiB; 256 MiB on 32-bit).
#[cfg(not(target_pointer_width = "32"))]
pub(crate) const MAX_INFLATED: u64 = 1 << 30;
#[cfg(target_pointer_width = "32")]
pub(crate) const MAX_INFLATED: u64 = 1 << 28;

/// Sequences nested deeper than this are refused (dicom-rs recurses once per level).
const MAX_DEPTH: usize = 64;

const ITEM: Tag = Tag(0xFFFE, 0xE000);
const ITEM_END: Tag = Tag(0xFFFE, 0xE00D);
const SEQ_END: Tag = Tag(0xFFFE, 0xE0DD);
const PIXEL_DATA: Tag = Tag(0x7FE0, 0x0010);
const UNDEFINED: u32 = 0xFFFF_FFFF;

/// How the data set is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Encoding {
    pub explicit_vr: bool,
    pub big_endian: bool,
}

impl Encoding {
    /// The encoding of a transfer syntax UID (every encapsulated syntax is explicit VR LE).
    pub(crate) fn of(ts: &str) -> Encoding {
        match ts {
            "1.2.840.10008.1.2" => Encoding {
                explicit_vr: false,
                big_endian: false,
            },
            "1.2.840.10008.1.2.2" => Encoding {
                explicit_vr: true,
                big_endian: true,
            },
            _ => Encoding {
                explicit_vr: true,
                big_endian: false,
            },
        }
    }
}

/// What the walk found wrong: an element whose declared length runs past the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LengthError {
    #[error(
        "element {tag} at byte {at} declares {declared} bytes, but only {left} are left in the file"
    )]
    TooLong {
        tag: Tag,
        at: u64,
        declared: u64,
        left: u64,
    },
    #[error("element {tag} at byte {at} has {len} bytes, not a whole number of {size}-byte values")]
    Misaligned {
        tag: Tag,
        at: u64,
        len: u32,
        size: u32,
    },
    #[error("sequences nested more than {MAX_DEPTH} deep at byte {at}")]
    TooDeep { at: u64 },
    #[error("malformed sequence: {tag} at byte {at} where an item was expected")]
    NotAnItem { tag: Tag, at: u64 },
    #[error("sequence item at byte {at} runs past the end of its sequence")]
    ItemOverrun { at: u64 },
    #[error("deflated data set inflates to more than {MAX_INFLATED} bytes")]
    InflatesTooMuch,
    #[error("cannot read: {0}")]
    Io(String),
}

/// Where a walk stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walked {
    /// Every declared length fits.
    Fits,
    /// The data set is sound up to the end of the top-level Pixel Data element, at byte
    /// `end` of the input (from where the walk started); after it comes junk whose lengths do
    /// not fit (seen in the wild). Parse only up to `end`.
    JunkAfterPixelData { end: u64 },
}

/// An element or item header: tag, VR (explicit VR, not items), declared length, offset.
type Header = (Tag, Option<[u8; 2]>, u32, u64);

struct Walker<'a, R> {
    r: &'a mut R,
    enc: Encoding,
    /// Position (relative to where the walk started) and the input's length from there.
    pos: u64,
    end: u64,
}

/// Checks the declared lengths of the data set that starts at the current position of `r`
/// and runs `len` bytes. With `header_only`, stops at the top-level Pixel Data element, which a
/// scan does not read.
pub(crate) fn check<R: Read + Seek>(
    r: &mut R,
    len: u64,
    enc: Encoding,
    header_only: bool,
) -> Result<Walked, LengthError> {
    let mut w = Walker {
        r,
        enc,
        pos: 0,
        end: len,
    };
    w.data_set(len, 0, true, header_only)
}

/// The file meta group (explicit VR little endian, group 0002) that starts at `from`: each
/// element must fit in `b`, read as dicom-rs reads it (an unknown VR has the long form).
pub(crate) fn check_meta(b: &[u8], from: usize, total: u64) -> Result<(), LengthError> {
    let mut pos = from;
    while pos + 8 <= b.len() && b[pos] == 0x02 && b[pos + 1] == 0x00 {
        let tag = Tag(0x0002, u16::from_le_bytes([b[pos + 2], b[pos + 3]]));
        let (len, hdr) = if long_vr([b[pos + 4], b[pos + 5]]) {
            match b.get(pos + 8..pos + 12) {
                Some(l) => (u32::from_le_bytes([l[0], l[1], l[2], l[3]]), 12),
                None => return Ok(()),
            }
        } else {
            (u32::from(u16::from_le_bytes([b[pos + 6], b[pos + 7]])), 8)
        };
        let left = total.saturating_sub((pos + hdr) as u64);
        if u64::from(len) > left || len == UNDEFINED {
            return Err(LengthError::TooLong {
                tag,
                at: pos as u64,
                declared: len.into(),
                left,
            });
        }
        pos += hdr + len as usize;
    }
    Ok(())
}

/// [`check`] of a deflated data set (`deflated`: the bytes after the file meta group).
pub(crate) fn check_deflated(deflated: &[u8], header_only: bool) -> Result<Walked, LengthError> {
    let mut inflated = Vec::new();
    flate2::read::DeflateDecoder::new(deflated)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| LengthError::Io(e.to_string()))?;
    if inflated.len() as u64 > MAX_INFLATED {
        return Err(LengthError::InflatesTooMuch);
    }
    let n = inflated.len() as u64;
    let enc = Encoding {
        explicit_vr: true,
        big_endian: false,
    };
    // Junk after the pixel data of a deflated stream is not cut off: refuse it.
    match check(&mut std::io::Cursor::new(inflated), n, enc, header_only)? {
        Walked::Fits => Ok(Walked::Fits),
        Walked::JunkAfterPixelData { .. } => Err(LengthError::Io(
            "junk after the pixel data of a deflated data set".into(),
        )),
    }
}

/// Whether an explicit-VR header has the 4-byte length form. dicom-rs reads a VR it does not
/// know as UN, which has it.
fn long_vr(vr: [u8; 2]) -> bool {
    let short = matches!(
        &vr,
        b"AE"
            | b"AS"
            | b"AT"
            | b"CS"
            | b"DA"
            | b"DS"
            | b"DT"
            | b"FL"
            | b"FD"
            | b"IS"
            | b"LO"
            | b"LT"
            | b"PN"
            | b"SH"
            | b"SL"
            | b"SS"
            | b"ST"
            | b"TM"
            | b"UI"
            | b"UL"
            | b"US"
    );
    !short
}

/// The size of one value of a binary VR: dicom-rs reads `len / size` values, so a length
/// that is not a multiple would leave the parser out of step with the bytes.
fn value_size(vr: [u8; 2]) -> u32 {
    match &vr {
        b"US" | b"SS" | b"OW" => 2,
        b"UL" | b"SL" | b"FL" | b"AT" | b"OL" | b"OF" => 4,
        b"FD" | b"SV" | b"UV" | b"OD" | b"OV" => 8,
        _ => 1,
    }
}

/// Implicit VR: the dictionary's VR of a tag, as two bytes (None when it does not say one).
fn dictionary_vr(tag: Tag) -> Option<[u8; 2]> {
    match StandardDataDictionary.by_tag(tag)?.vr() {
        VirtualVr::Exact(vr) => Some(vr.to_bytes()),
        _ => None,
    }
}

/// Implicit VR: does the dictionary say this tag is a sequence?
fn dictionary_sq(tag: Tag) -> bool {
    StandardDataDictionary
        .by_tag(tag)
        .is_some_and(|e| matches!(e.vr(), VirtualVr::Exact(dicom_core::VR::SQ)))
}

impl<R: Read + Seek> Walker<'_, R> {
    fn left(&self) -> u64 {
        self.end.saturating_sub(self.pos)
    }

    /// Reads up to `buf.len()` bytes; false at a clean end of input.
    fn read(&mut self, buf: &mut [u8]) -> Result<bool, LengthError> {
        let mut got = 0;
        while got < buf.len() {
            match self.r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(LengthError::Io(e.to_string())),
            }
        }
        self.pos += got as u64;
        Ok(got == buf.len())
    }

    fn u16(&self, b: [u8; 2]) -> u16 {
        if self.enc.big_endian {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }
    }

    fn u32(&self, b: [u8; 4]) -> u32 {
        if self.enc.big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    }

    fn skip(&mut self, n: u64) -> Result<(), LengthError> {
        self.r
            .seek(SeekFrom::Current(n as i64))
            .map_err(|e| LengthError::Io(e.to_string()))?;
        self.pos += n;
        Ok(())
    }

    /// A declared length must fit in what is left of the input.
    fn fits(&self, tag: Tag, at: u64, declared: u32) -> Result<(), LengthError> {
        if u64::from(declared) > self.left() {
            return Err(LengthError::TooLong {
                tag,
                at,
                declared: declared.into(),
                left: self.left(),
            });
        }
        Ok(())
    }

    /// Tag and length of the next header; None at the end of the input. Items and delimiters
    /// have no VR, whatever the encoding.
    fn header(&mut self) -> Result<Option<Header>, LengthError> {
        let at = self.pos;
        let mut t = [0u8; 4];
        if !self.read(&mut t)? {
            return Ok(None);
        }
        let tag = Tag(self.u16([t[0], t[1]]), self.u16([t[2], t[3]]));
        let mut b = [0u8; 4];
        if tag.group() == 0xFFFE || !self.enc.explicit_vr {
            if !self.read(&mut b)? {
                return Ok(None);
            }
            return Ok(Some((tag, None, self.u32(b), at)));
        }
        if !self.read(&mut b)? {
            return Ok(None);
        }
        let vr = [b[0], b[1]];
        let len = if long_vr(vr) {
            let mut l = [0u8; 4];
            if !self.read(&mut l)? {
                return Ok(None);
            }
            self.u32(l)
        } else {
            u32::from(self.u16([b[2], b[3]]))
        };
        Ok(Some((tag, Some(vr), len, at)))
    }

    /// Elements until `len` bytes are used (or the end, or an item delimiter when `len` is
    /// undefined).
    fn data_set(
        &mut self,
        len: u64,
        depth: usize,
        top: bool,
        header_only: bool,
    ) -> Result<Walked, LengthError> {
        let stop = self.pos.saturating_add(len);
        let mut pixel_end = None;
        while self.pos < stop.min(self.end) {
            let Some((tag, vr, n, at)) = self.header()? else {
                return Ok(Walked::Fits);
            };
            if tag == ITEM_END || tag == SEQ_END {
                return Ok(Walked::Fits);
            }
            // A scan stops before the pixel data: its value is not read, so a truncated file
            // still scans (and its load names it).
            if top && header_only && tag == PIXEL_DATA {
                return Ok(Walked::Fits);
            }
            let checked = (|| {
                let sq = match vr {
                    Some(v) => &v == b"SQ" || (n == UNDEFINED && (&v == b"UN" || &v == b"OB")),
                    None => n == UNDEFINED || dictionary_sq(tag),
                };
                if n == UNDEFINED {
                    // A sequence, or encapsulated pixel data: items until the delimiter.
                    return self.items(depth + 1, tag == PIXEL_DATA && top);
                }
                self.fits(tag, at, n)?;
                let size = vr.or_else(|| dictionary_vr(tag)).map_or(1, value_size);
                if n % size != 0 {
                    return Err(LengthError::Misaligned {
                        tag,
                        at,
                        len: n,
                        size,
                    });
                }
                if sq && tag != PIXEL_DATA {
                    self.sequence(u64::from(n), depth + 1)
                } else {
                    self.skip(u64::from(n))
                }
            })();
            match (checked, pixel_end) {
                (Ok(()), _) => {}
                // Junk after the top-level pixel data: cut there.
                (Err(LengthError::TooLong { .. }), Some(end)) if top => {
                    return Ok(Walked::JunkAfterPixelData { end });
                }
                (Err(e), _) => return Err(e),
            }
            if top && tag == PIXEL_DATA && pixel_end.is_none() {
                pixel_end = Some(self.pos);
            }
        }
        Ok(Walked::Fits)
    }

    /// Items of a defined-length sequence.
    fn sequence(&mut self, len: u64, depth: usize) -> Result<(), LengthError> {
        if depth > MAX_DEPTH {
            return Err(LengthError::TooDeep { at: self.pos });
        }
        let stop = self.pos + len;
        while self.pos < stop {
            let Some((tag, _, n, at)) = self.header()? else {
                return Ok(());
            };
            if tag != ITEM {
                return Err(LengthError::NotAnItem { tag, at });
            }
            if n == UNDEFINED {
                self.data_set(u64::MAX, depth, false, false)?;
            } else {
                self.fits(tag, at, n)?;
                self.data_set(u64::from(n), depth, false, false)?;
            }
            if self.pos > stop {
                return Err(LengthError::ItemOverrun { at });
            }
        }
        Ok(())
    }

    /// Items until a sequence delimiter (`fragments`: encapsulated pixel data, whose items are
    /// byte strings, not data sets).
    fn items(&mut self, depth: usize, fragments: bool) -> Result<(), LengthError> {
        if depth > MAX_DEPTH {
            return Err(LengthError::TooDeep { at: self.pos });
        }
        loop {
            let Some((tag, _, n, at)) = self.header()? else {
                return Ok(());
            };
            match tag {
                SEQ_END => return Ok(()),
                ITEM if fragments => {
                    self.fits(tag, at, n)?;
                    self.skip(u64::from(n))?;
                }
                ITEM if n == UNDEFINED => {
                    self.data_set(u64::MAX, depth, false, false)?;
                }
                ITEM => {
                    self.fits(tag, at, n)?;
                    self.data_set(u64::from(n), depth, false, false)?;
                }
                _ => return Err(LengthError::NotAnItem { tag, at }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const LE: Encoding = Encoding {
        explicit_vr: true,
        big_endian: false,
    };

    fn el(tag: (u16, u16), vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend(tag.0.to_le_bytes());
        b.extend(tag.1.to_le_bytes());
        b.extend(vr);
        if long_vr(*vr) {
            b.extend([0, 0]);
            b.extend((value.len() as u32).to_le_bytes());
        } else {
            b.extend((value.len() as u16).to_le_bytes());
        }
        b.extend(value);
        b
    }

    fn walk(b: &[u8], header_only: bool) -> Result<Walked, LengthError> {
        check(&mut Cursor::new(b), b.len() as u64, LE, header_only)
    }

    #[test]
    fn sound_data_sets_fit() {
        let mut b = el((0x0008, 0x0060), b"CS", b"MR");
        b.extend(el((0x7FE0, 0x0010), b"OW", &[0; 8]));
        assert_eq!(walk(&b, false), Ok(Walked::Fits));
        assert_eq!(walk(&b, true), Ok(Walked::Fits));
    }

    #[test]
    fn a_two_gigabyte_element_is_refused_before_anything_is_allocated() {
        let mut b = el((0x0008, 0x0060), b"CS", b"MR");
        b.extend(el((0x0009, 0x1010), b"OB", &[]));
        let n = b.len();
        b[n - 4..].copy_from_slice(&0x8000_0000u32.to_le_bytes());
        b.extend([0; 16]);
        let e = walk(&b, true).unwrap_err();
        assert!(
            matches!(
                e,
                LengthError::TooLong {
                    declared: 0x8000_0000,
                    left: 16,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("declares 2147483648 bytes"), "{e}");
    }

    #[test]
    fn lengths_inside_sequences_are_checked() {
        // SQ of undefined length, one item of undefined length holding a 1 GB element.
        let mut inner = el((0x0008, 0x0100), b"SH", b"");
        let n = inner.len();
        inner[n - 2..].copy_from_slice(&0xFFF0u16.to_le_bytes());
        let mut b = Vec::new();
        b.extend([0x08, 0x00, 0x15, 0x11]);
        b.extend(b"SQ\0\0");
        b.extend(UNDEFINED.to_le_bytes());
        b.extend([0xFE, 0xFF, 0x00, 0xE0]);
        b.extend(UNDEFINED.to_le_bytes());
        b.extend(inner);
        b.extend([0xFE, 0xFF, 0x0D, 0xE0, 0, 0, 0, 0]);
        b.extend([0xFE, 0xFF, 0xDD, 0xE0, 0, 0, 0, 0]);
        assert!(matches!(
            walk(&b, true),
            Err(LengthError::TooLong {
                declared: 0xFFF0,
                ..
            })
        ));
    }

    #[test]
    fn junk_after_pixel_data_is_cut_off() {
        let mut b = el((0x7FE0, 0x0010), b"OW", &[0; 4]);
        let end = b.len() as u64;
        b.extend([
            0x10, 0x00, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0x7F,
        ]);
        assert_eq!(walk(&b, false), Ok(Walked::JunkAfterPixelData { end }));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut b = Vec::new();
        for _ in 0..=MAX_DEPTH + 1 {
            b.extend([0x08, 0x00, 0x15, 0x11]);
            b.extend(b"SQ\0\0");
            b.extend(UNDEFINED.to_le_bytes());
            b.extend([0xFE, 0xFF, 0x00, 0xE0]);
            b.extend(UNDEFINED.to_le_bytes());
        }
        assert!(matches!(walk(&b, true), Err(LengthError::TooDeep { .. })));
    }
}
