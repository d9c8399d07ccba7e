//! Compressed pixel data that mrisr decodes itself, on every target (the page included), instead
//! of going through dicom-pixeldata: JPEG 2000 with `hayro-jpeg2000` and JPEG-LS with
//! `pure_jpegls`, both pure Rust, and RLE Lossless (PS3.5 annex G) here, with every length and
//! offset checked (dicom-rs's RLE decoder trusts them and panics or reserves gigabytes on a
//! malformed header, and a panic in the page aborts its module). Natively, HTJ2K (and JPEG 2000 when asked for) still goes
//! through openjp2 in dicom-pixeldata (see [`super::decode`]).
//!
//! Each decoder returns, per frame, the samples as stored bit patterns (two's complement for
//! negative values), interleaved by pixel, so the common grey conversion applies BitsStored and
//! PixelRepresentation the same way as for uncompressed data.
//!
//! Guarding against bad input:
//! - JPEG 2000 is decoded in strict mode: a truncated or corrupt codestream is an error, not a
//!   degraded image. The codestream's sign flag (which hayro-jpeg2000 ignores: it always adds
//!   2^(precision-1)) is read from the SIZ marker and the values shifted back.
//! - JPEG-LS headers are parsed and checked (sizes, precision, components, interleave, segment
//!   lengths) before `pure_jpegls` sees the stream.

use std::borrow::Cow;

use dicom_core::value::Value as DicomValue;
use dicom_dictionary_std::tags;
use dicom_object::DefaultDicomObject;

use super::error::CodecError;

/// JPEG 2000 Image Compression (Lossless Only) and JPEG 2000 Image Compression.
pub(crate) const JPEG2000_UIDS: [&str; 2] = ["1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"];
/// High-Throughput JPEG 2000 (lossless, lossless RPCL, lossy).
pub(crate) const HTJ2K_UIDS: [&str; 3] = [
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
];
/// JPEG-LS Lossless and JPEG-LS Lossy (Near-Lossless).
pub(crate) const JPEG_LS_UIDS: [&str; 2] = ["1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"];
/// RLE Lossless.
pub(crate) const RLE_UID: &str = "1.2.840.10008.1.2.5";

/// The decoders of this module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    Jpeg2000,
    JpegLs,
    Rle,
}

/// The codec of this module that handles `uid`, if any.
pub(crate) fn codec_for(uid: &str) -> Option<Codec> {
    if JPEG2000_UIDS.contains(&uid) {
        Some(Codec::Jpeg2000)
    } else if JPEG_LS_UIDS.contains(&uid) {
        Some(Codec::JpegLs)
    } else if uid == RLE_UID {
        Some(Codec::Rle)
    } else {
        None
    }
}

/// What the decoders must produce for one frame, from the DICOM header.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameSpec {
    pub rows: usize,
    pub cols: usize,
    pub samples_per_pixel: usize,
    pub bits_allocated: u16,
}

/// Decoded frames: `frames * rows * cols * samples_per_pixel` stored bit patterns, interleaved
/// by pixel (sample fastest), frame after frame.
pub(crate) struct Samples {
    pub data: Vec<u32>,
    /// True for JPEG 2000 with a colour transform: the decoder already returned RGB.
    pub rgb: bool,
}

/// Decodes every frame of `obj` with `codec`.
pub(crate) fn decode_frames(
    obj: &DefaultDicomObject,
    codec: Codec,
    spec: FrameSpec,
    frames: usize,
) -> Result<Samples, CodecError> {
    let start = match codec {
        Codec::Jpeg2000 => StartMarker::Jpeg2000,
        Codec::JpegLs => StartMarker::Jpeg,
        Codec::Rle => StartMarker::None,
    };
    let pieces = frame_data(obj, frames, start)?;
    let per_frame = spec.rows * spec.cols * spec.samples_per_pixel;
    let mut data = Vec::with_capacity(per_frame.saturating_mul(frames));
    let mut rgb = false;
    for (f, piece) in pieces.iter().enumerate() {
        let at = |e: CodecError| {
            if frames > 1 {
                CodecError::InFrame {
                    frame: f + 1,
                    frames,
                    source: Box::new(e),
                }
            } else {
                e
            }
        };
        let decoded = match codec {
            Codec::Jpeg2000 => jpeg2000_frame(piece, spec, &mut data)
                .map(|is_rgb| rgb |= is_rgb)
                .map_err(CodecError::Jpeg2000),
            Codec::JpegLs => jpeg_ls_frame(piece, spec, &mut data).map_err(CodecError::JpegLs),
            Codec::Rle => rle_frame(piece, spec, &mut data).map_err(CodecError::Rle),
        };
        decoded.map_err(at)?;
    }
    Ok(Samples { data, rgb })
}

// ---- frames of encapsulated pixel data ----

/// How a frame's codestream starts, to find frame boundaries when fragments do not map 1:1 to
/// frames and there is no basic offset table.
#[derive(Clone, Copy)]
enum StartMarker {
    /// JPEG 2000 codestream (SOC FF4F) or JP2 file (signature box).
    Jpeg2000,
    /// JPEG / JPEG-LS (SOI FFD8).
    Jpeg,
    /// No marker (RLE: one fragment per frame).
    None,
}

impl StartMarker {
    fn starts(self, b: &[u8]) -> bool {
        match self {
            StartMarker::Jpeg2000 => {
                b.starts_with(&[0xFF, 0x4F]) || b.starts_with(b"\x00\x00\x00\x0CjP  ")
            }
            StartMarker::Jpeg => b.starts_with(&[0xFF, 0xD8]),
            StartMarker::None => false,
        }
    }
}

/// The compressed bytes of each frame: one fragment per frame, the basic offset table, or
/// fragments grouped by where a codestream starts; a single frame takes all fragments.
fn frame_data(
    obj: &DefaultDicomObject,
    frames: usize,
    start: StartMarker,
) -> Result<Vec<Cow<'_, [u8]>>, CodecError> {
    let pd = obj.get(tags::PIXEL_DATA).ok_or(CodecError::NoPixelData)?;
    let DicomValue::PixelSequence(seq) = pd.value() else {
        return Err(CodecError::NotEncapsulated);
    };
    let frags: Vec<&[u8]> = seq.fragments().iter().map(|f| f.as_ref()).collect();
    if frags.is_empty() || frags.iter().all(|f| f.is_empty()) {
        return Err(CodecError::NoFragments);
    }
    fn join<'a>(fs: &[&'a [u8]]) -> Cow<'a, [u8]> {
        if fs.len() == 1 {
            Cow::Borrowed(fs[0])
        } else {
            Cow::Owned(fs.concat())
        }
    }
    if frames <= 1 {
        return Ok(vec![join(&frags)]);
    }
    if frags.len() == frames {
        return Ok(frags.into_iter().map(Cow::Borrowed).collect());
    }
    // Basic offset table: byte offset of each frame's first fragment item.
    let bot = seq.offset_table();
    if bot.len() == frames && bot[0] == 0 && bot.windows(2).all(|w| w[0] < w[1]) {
        let mut out: Vec<Vec<&[u8]>> = vec![Vec::new(); frames];
        let mut pos = 0u64;
        for f in &frags {
            let k = bot.iter().rposition(|&o| u64::from(o) <= pos).unwrap_or(0);
            out[k].push(f);
            pos += f.len() as u64 + 8;
        }
        if out.iter().all(|v| !v.is_empty()) {
            return Ok(out.iter().map(|v| join(v)).collect());
        }
    }
    // No usable table: a fragment that starts a codestream starts a frame.
    let mut out: Vec<Vec<&[u8]>> = Vec::new();
    for f in &frags {
        if start.starts(f) || out.is_empty() {
            out.push(Vec::new());
        }
        out.last_mut().expect("pushed above").push(f);
    }
    if out.len() != frames {
        return Err(CodecError::FrameCount {
            frames,
            codestreams: out.len(),
            fragments: frags.len(),
        });
    }
    Ok(out.iter().map(|v| join(v)).collect())
}

// ---- RLE Lossless ----

/// One RLE frame: a 64-byte header (number of segments, then up to 15 offsets), one PackBits
/// segment per byte of each sample (most significant byte first).
fn rle_frame(data: &[u8], spec: FrameSpec, out: &mut Vec<u32>) -> Result<(), String> {
    let bytes = match spec.bits_allocated {
        8 => 1,
        16 => 2,
        32 => 4,
        b => return Err(format!("RLE with BitsAllocated {b} is not supported")),
    };
    let want = spec.samples_per_pixel * bytes;
    let word = |i: usize| -> Option<usize> {
        let b = data.get(4 * i..4 * i + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let n = word(0).ok_or("RLE frame shorter than its 64-byte header")?;
    if data.len() < 64 || n != want {
        return Err(format!(
            "RLE header declares {n} segments, {want} expected ({} sample(s) of {bytes} byte(s)){}",
            spec.samples_per_pixel,
            if data.len() < 64 {
                "; frame shorter than its header"
            } else {
                ""
            }
        ));
    }
    let mut starts: Vec<usize> = (1..=n).map(|i| word(i).unwrap_or(0)).collect();
    starts.push(data.len());
    if starts[0] < 64 || starts.windows(2).any(|w| w[0] > w[1]) {
        return Err(format!(
            "RLE segment offsets {:?} are not increasing within the frame's {} bytes",
            &starts[..n],
            data.len()
        ));
    }
    let pixels = spec.rows * spec.cols;
    let segments: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            packbits(&data[starts[i]..starts[i + 1]], pixels)
                .map_err(|e| format!("RLE segment {}: {e}", i + 1))
        })
        .collect::<Result<_, _>>()?;
    out.reserve(pixels * spec.samples_per_pixel);
    for p in 0..pixels {
        for sample in segments.chunks(bytes) {
            out.push(
                sample
                    .iter()
                    .fold(0u32, |v, seg| (v << 8) | u32::from(seg[p])),
            );
        }
    }
    Ok(())
}

/// PackBits: a header byte n then n + 1 literal bytes (n >= 0) or one byte repeated 1 - n
/// times (n < 0; -128 is a no-op). Exactly `len` bytes are needed; more are ignored.
fn packbits(mut src: &[u8], len: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let Some((&h, rest)) = src.split_first() else {
            return Err(format!("decodes to {} of {len} bytes", out.len()));
        };
        src = rest;
        let n = h as i8;
        if n >= 0 {
            let k = n as usize + 1;
            let lit = src
                .get(..k)
                .ok_or("literal run past the end of the segment")?;
            out.extend_from_slice(lit);
            src = &src[k..];
        } else if n != -128 {
            let (&b, rest) = src
                .split_first()
                .ok_or("repeat run past the end of the segment")?;
            src = rest;
            out.extend(std::iter::repeat_n(b, (1 - isize::from(n)) as usize));
        }
    }
    out.truncate(len);
    Ok(out)
}

// ---- JPEG 2000 ----

/// The codestream: from SOC (FF4F) followed by SIZ (FF51). Some files wrap it in a JP2 file
/// (not allowed in DICOM, but seen); its boxes are skipped, the DICOM header says the rest.
fn jpeg2000_codestream(data: &[u8]) -> Result<&[u8], String> {
    let soc = data
        .windows(4)
        .take(1 << 16)
        .position(|w| w == [0xFF, 0x4F, 0xFF, 0x51])
        .ok_or("no JPEG 2000 codestream (SOC and SIZ markers not found)")?;
    Ok(&data[soc..])
}

/// Precision and sign of each component, from the SIZ marker segment of a codestream.
fn jpeg2000_components(codestream: &[u8]) -> Result<Vec<(u8, bool)>, String> {
    let siz = codestream
        .get(2..)
        .ok_or("JPEG 2000 SIZ marker truncated")?;
    // FF51, Lsiz, Rsiz, 8 x 4-byte sizes, Csiz, then 3 bytes per component.
    let csiz = siz
        .get(38..40)
        .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
        .ok_or("JPEG 2000 SIZ marker truncated")?;
    let comps = siz
        .get(40..40 + 3 * csiz)
        .ok_or("JPEG 2000 SIZ marker truncated")?;
    Ok(comps
        .chunks_exact(3)
        .map(|c| ((c[0] & 0x7F) + 1, c[0] & 0x80 != 0))
        .collect())
}

/// Decodes one JPEG 2000 frame with hayro-jpeg2000 (strict) and appends its samples. Returns
/// whether the decoder applied a colour transform (the samples are then RGB).
fn jpeg2000_frame(data: &[u8], spec: FrameSpec, out: &mut Vec<u32>) -> Result<bool, String> {
    use hayro_jpeg2000::{DecodeSettings, DecoderContext, Image};
    let data = jpeg2000_codestream(data)?;
    let comps = jpeg2000_components(data)?;
    if comps.len() < spec.samples_per_pixel {
        return Err(format!(
            "JPEG 2000 codestream has {} component(s), SamplesPerPixel is {}",
            comps.len(),
            spec.samples_per_pixel
        ));
    }
    let settings = DecodeSettings {
        resolve_palette_indices: false,
        strict: true,
        target_resolution: None,
    };
    let image = Image::new(data, &settings).map_err(|e| format!("JPEG 2000: {e}"))?;
    let (w, h) = (image.width() as usize, image.height() as usize);
    if (w, h) != (spec.cols, spec.rows) {
        return Err(format!(
            "JPEG 2000 codestream is {w}x{h}, the header says {}x{}",
            spec.cols, spec.rows
        ));
    }
    let mut ctx = DecoderContext::default();
    let decoded = image
        .decode(&mut ctx)
        .map_err(|e| format!("JPEG 2000 data corrupt or truncated: {e}"))?;
    let planes = decoded.components();
    let n = w * h;
    let spp = spec.samples_per_pixel;
    if planes.len() < spp || planes[..spp].iter().any(|p| p.samples().len() < n) {
        return Err("JPEG 2000 decoder returned fewer samples than the image size".into());
    }
    let base = out.len();
    out.resize(base + n * spp, 0);
    for (c, plane) in planes[..spp].iter().enumerate() {
        let (precision, signed) = comps[c];
        let p = u32::from(precision.clamp(1, 32));
        // hayro-jpeg2000 adds 2^(p-1) to every component; a signed one is shifted back.
        let (offset, lo, hi) = if signed {
            let half = 1i64 << (p - 1);
            (half, -half, half - 1)
        } else {
            (0, 0, (1i64 << p) - 1)
        };
        for (i, &s) in plane.samples()[..n].iter().enumerate() {
            let v = (s.round() as i64 - offset).clamp(lo, hi);
            out[base + i * spp + c] = v as i32 as u32;
        }
    }
    // A multiple-component transform turns YBR_RCT / YBR_ICT back into RGB.
    Ok(spp == 3 && has_mct(data))
}

/// Whether the COD marker enables the multiple component transformation.
fn has_mct(data: &[u8]) -> bool {
    // COD: FF52, Lcod(2), Scod(1), progression(1), layers(2), MCT(1).
    data.windows(2)
        .take(1 << 16)
        .position(|w| w == [0xFF, 0x52])
        .and_then(|p| data.get(p + 8))
        .is_some_and(|&m| m != 0)
}

// ---- JPEG-LS ----

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const DRI: u8 = 0xDD;
const SOF55: u8 = 0xF7;
const LSE: u8 = 0xF8;

/// One marker segment: marker code and payload (without the length field).
struct Segment<'a> {
    marker: u8,
    payload: &'a [u8],
}

/// A JPEG-LS stream's header, checked.
struct JlsHeader<'a> {
    precision: u8,
    rows: usize,
    cols: usize,
    /// (component id, the 3 bytes of its frame header entry).
    components: Vec<[u8; 3]>,
    /// LSE segments (coding parameters), kept to rebuild single-component streams.
    lse: Vec<Segment<'a>>,
    /// Each scan: component ids in it, ILV, its header and its entropy-coded bytes.
    scans: Vec<JlsScan<'a>>,
}

struct JlsScan<'a> {
    ids: Vec<u8>,
    ilv: u8,
    payload: &'a [u8],
    entropy: &'a [u8],
}

/// Reads one segment at `pos` (which must hold 0xFF marker): returns it and the next position.
fn segment(data: &[u8], pos: usize) -> Result<(Segment<'_>, usize), String> {
    let mut p = pos;
    // Fill bytes (FF FF ...) may precede a marker.
    while data.get(p) == Some(&0xFF) && data.get(p + 1) == Some(&0xFF) {
        p += 1;
    }
    match (data.get(p), data.get(p + 1)) {
        (Some(0xFF), Some(&m)) => {
            if m == EOI || m == SOI {
                return Ok((
                    Segment {
                        marker: m,
                        payload: &[],
                    },
                    p + 2,
                ));
            }
            let len = data
                .get(p + 2..p + 4)
                .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
                .ok_or("JPEG-LS stream truncated in a marker segment")?;
            if len < 2 {
                return Err(format!("JPEG-LS marker FF{m:02X} has length {len}"));
            }
            let payload = data
                .get(p + 4..p + 2 + len)
                .ok_or_else(|| format!("JPEG-LS stream truncated in marker FF{m:02X}"))?;
            Ok((Segment { marker: m, payload }, p + 2 + len))
        }
        (None, _) | (_, None) => Err("JPEG-LS stream truncated before its end marker".into()),
        (Some(b), _) => Err(format!(
            "JPEG-LS stream corrupt: byte {b:02X} where a marker was expected"
        )),
    }
}

/// End of an entropy-coded segment: the first 0xFF followed by a byte with its high bit set
/// (JPEG-LS stuffs a 0 bit after every 0xFF inside scan data).
fn entropy_end(data: &[u8], from: usize) -> usize {
    let mut i = from;
    while i + 1 < data.len() {
        if data[i] == 0xFF && data[i + 1] >= 0x80 {
            return i;
        }
        i += 1;
    }
    data.len()
}

/// Parses and checks a JPEG-LS stream's markers against the DICOM header.
fn jpeg_ls_header<'a>(data: &'a [u8], spec: FrameSpec) -> Result<JlsHeader<'a>, String> {
    if !data.starts_with(&[0xFF, SOI]) {
        return Err("not a JPEG-LS stream (no SOI marker at the start)".into());
    }
    let mut pos = 2;
    let mut frame: Option<(u8, usize, usize, Vec<[u8; 3]>)> = None;
    let mut lse = Vec::new();
    let mut scans = Vec::new();
    loop {
        let (seg, next) = segment(data, pos)?;
        pos = next;
        match seg.marker {
            EOI => break,
            SOF55 => {
                if frame.is_some() {
                    return Err("JPEG-LS stream has two frame headers".into());
                }
                let p = seg.payload;
                if p.len() < 6 {
                    return Err("JPEG-LS frame header (SOF55) truncated".into());
                }
                let precision = p[0];
                let rows = u16::from_be_bytes([p[1], p[2]]) as usize;
                let cols = u16::from_be_bytes([p[3], p[4]]) as usize;
                let nf = p[5] as usize;
                if !(2..=16).contains(&precision) {
                    return Err(format!(
                        "JPEG-LS precision {precision} bits is not supported (2 to 16)"
                    ));
                }
                if (rows, cols) != (spec.rows, spec.cols) {
                    return Err(format!(
                        "JPEG-LS frame is {cols}x{rows}, the header says {}x{}",
                        spec.cols, spec.rows
                    ));
                }
                if nf != spec.samples_per_pixel {
                    return Err(format!(
                        "JPEG-LS frame has {nf} component(s), SamplesPerPixel is {}",
                        spec.samples_per_pixel
                    ));
                }
                if p.len() != 6 + 3 * nf {
                    return Err("JPEG-LS frame header (SOF55) has a wrong length".into());
                }
                let comps = p[6..].chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
                frame = Some((precision, rows, cols, comps));
            }
            LSE => {
                match seg.payload.first() {
                    Some(1) if seg.payload.len() == 11 => {}
                    Some(1) => return Err("JPEG-LS preset parameters (LSE) malformed".into()),
                    Some(id) => {
                        return Err(format!(
                            "JPEG-LS extension segment LSE id {id} (mapping tables or colour \
                             transforms) is not supported by the pure-Rust decoder"
                        ));
                    }
                    None => return Err("JPEG-LS LSE segment is empty".into()),
                }
                lse.push(seg);
            }
            DRI => {
                return Err(
                    "JPEG-LS restart intervals (DRI) are not supported by the pure-Rust decoder"
                        .into(),
                );
            }
            SOS => {
                let p = seg.payload;
                let ns = p.first().copied().unwrap_or(0) as usize;
                if ns == 0 || p.len() != 1 + 2 * ns + 3 {
                    return Err("JPEG-LS scan header (SOS) malformed".into());
                }
                if frame.is_none() {
                    return Err("JPEG-LS scan before the frame header".into());
                }
                let ids = (0..ns).map(|k| p[1 + 2 * k]).collect();
                let ilv = p[2 + 2 * ns];
                if ilv > 2 {
                    return Err(format!("JPEG-LS interleave mode {ilv} is invalid"));
                }
                let end = entropy_end(data, pos);
                if end >= data.len() {
                    return Err("JPEG-LS scan data truncated (no end marker)".into());
                }
                scans.push(JlsScan {
                    ids,
                    ilv,
                    payload: p,
                    entropy: &data[pos..end],
                });
                pos = end;
            }
            // APPn, COM and other segments carry nothing the decoder needs.
            _ => {}
        }
    }
    let (precision, rows, cols, components) = frame.ok_or("JPEG-LS frame header missing")?;
    if scans.is_empty() {
        return Err("JPEG-LS stream holds no scan".into());
    }
    if u16::from(precision) > spec.bits_allocated.max(8) {
        return Err(format!(
            "JPEG-LS precision {precision} bits exceeds BitsAllocated {}",
            spec.bits_allocated
        ));
    }
    Ok(JlsHeader {
        precision,
        rows,
        cols,
        components,
        lse,
        scans,
    })
}

/// A single-component JPEG-LS stream: SOI, the LSE segments, a one-component frame header,
/// one scan (interleave mode 0, which is all one component can have), EOI.
fn single_component_stream(h: &JlsHeader<'_>, comp: [u8; 3], scan: &JlsScan<'_>) -> Vec<u8> {
    let mut s = Vec::with_capacity(scan.entropy.len() + 64);
    s.extend_from_slice(&[0xFF, SOI]);
    for seg in &h.lse {
        s.extend_from_slice(&[0xFF, LSE]);
        s.extend_from_slice(&(seg.payload.len() as u16 + 2).to_be_bytes());
        s.extend_from_slice(seg.payload);
    }
    s.extend_from_slice(&[0xFF, SOF55, 0, 11, h.precision]);
    s.extend_from_slice(&(h.rows as u16).to_be_bytes());
    s.extend_from_slice(&(h.cols as u16).to_be_bytes());
    s.push(1);
    s.extend_from_slice(&comp);
    s.extend_from_slice(&[0xFF, SOS]);
    s.extend_from_slice(&(scan.payload.len() as u16 + 2).to_be_bytes());
    // Ns = 1, component selector, mapping table, NEAR, ILV, point transform.
    s.extend_from_slice(&scan.payload[..4]);
    s.push(0);
    s.extend_from_slice(&scan.payload[5..]);
    s.extend_from_slice(scan.entropy);
    s.extend_from_slice(&[0xFF, EOI]);
    s
}

/// Decodes one JPEG-LS frame with pure_jpegls and appends its samples: one component, or
/// several in separate scans (interleave mode 0, decoded one by one).
fn jpeg_ls_frame(data: &[u8], spec: FrameSpec, out: &mut Vec<u32>) -> Result<(), String> {
    let h = jpeg_ls_header(data, spec)?;
    let nf = h.components.len();
    let n = h.rows * h.cols;
    let decode = |stream: &[u8]| -> Result<Vec<u16>, String> {
        let (px, _, _) = jpegls::decode(stream, h.cols as u32, h.rows as u32)
            .map_err(|e| format!("JPEG-LS data corrupt or truncated: {e}"))?;
        if px.len() < n {
            return Err("JPEG-LS decoder returned fewer samples than the image size".into());
        }
        Ok(px)
    };
    let base = out.len();
    if nf == 1 {
        if h.scans.len() != 1 || h.scans[0].ids.len() != 1 {
            return Err("JPEG-LS stream has more scans than components".into());
        }
        let px = decode(&single_component_stream(&h, h.components[0], &h.scans[0]))?;
        out.extend(px[..n].iter().map(|&v| u32::from(v)));
        return Ok(());
    }
    if let Some(s) = h.scans.iter().find(|s| s.ids.len() > 1 || s.ilv != 0) {
        return Err(format!(
            "JPEG-LS colour with {} interleave (ILV={}) cannot be decoded by the pure-Rust \
             decoder (it handles one component per scan)",
            match s.ilv {
                1 => "line",
                2 => "sample",
                _ => "multi-component",
            },
            s.ilv
        ));
    }
    out.resize(base + n * nf, 0);
    for (c, comp) in h.components.iter().enumerate() {
        let scan = h
            .scans
            .iter()
            .find(|s| s.ids[0] == comp[0])
            .ok_or_else(|| format!("JPEG-LS component {} has no scan", comp[0]))?;
        let px = decode(&single_component_stream(&h, *comp, scan))?;
        for (i, &v) in px[..n].iter().enumerate() {
            out[base + i * nf + c] = u32::from(v);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(rows: usize, cols: usize) -> FrameSpec {
        FrameSpec {
            rows,
            cols,
            samples_per_pixel: 1,
            bits_allocated: 16,
        }
    }

    fn encoded(w: u32, h: u32) -> (Vec<u16>, Vec<u8>) {
        let px: Vec<u16> = (0..w * h).map(|i| ((i * 37) % 4096) as u16).collect();
        let mut out = Vec::new();
        jpegls::encode(&px, w, h, &mut out).unwrap();
        (px, out)
    }

    #[test]
    fn rle_frames_decode_and_bad_headers_are_refused() {
        // 2x2, 16 bits: MSB segment (literal run), LSB segment (repeat run).
        let mut f = vec![0u8; 64];
        f[0] = 2;
        f[4] = 64;
        f[8] = 69;
        f.extend([3, 1, 2, 3, 4]); // literal: 01 02 03 04
        f.extend([0xFD, 7]); // repeat 7 four times
        let mut out = Vec::new();
        rle_frame(&f, spec(2, 2), &mut out).unwrap();
        assert_eq!(out, [0x0107, 0x0207, 0x0307, 0x0407]);
        // A declared segment count that is not the header's: refused, nothing reserved.
        let mut bad = f.clone();
        bad[0..4].copy_from_slice(&0xF7FF_D8FFu32.to_le_bytes());
        assert!(
            rle_frame(&bad, spec(2, 2), &mut Vec::new())
                .unwrap_err()
                .contains("segments")
        );
        // Offsets past the end, or a segment too short for the image.
        let mut bad = f.clone();
        bad[8] = 200;
        assert!(rle_frame(&bad, spec(2, 2), &mut Vec::new()).is_err());
        assert!(rle_frame(&f[..f.len() - 1], spec(2, 2), &mut Vec::new()).is_err());
    }

    #[test]
    fn jpeg_ls_round_trip() {
        let (px, stream) = encoded(23, 17);
        let mut out = Vec::new();
        jpeg_ls_frame(&stream, spec(17, 23), &mut out).unwrap();
        assert_eq!(out, px.iter().map(|&v| u32::from(v)).collect::<Vec<_>>());
    }

    #[test]
    fn jpeg_ls_bad_headers_are_refused_before_decoding() {
        let (_, stream) = encoded(23, 17);
        let mut out = Vec::new();
        // Wrong size for the DICOM header.
        let e = jpeg_ls_frame(&stream, spec(16, 23), &mut out).unwrap_err();
        assert!(e.contains("23x17"), "{e}");
        // Every truncation is an error, never a panic or a partial image.
        for cut in 0..stream.len() {
            let r = jpeg_ls_frame(&stream[..cut], spec(17, 23), &mut out);
            assert!(r.is_err(), "truncated at {cut} decoded");
        }
        // Absurd segment lengths and precisions.
        let sof = stream.windows(2).position(|w| w == [0xFF, SOF55]).unwrap();
        let mut bad = stream.clone();
        bad[sof + 2] = 0xFF;
        assert!(jpeg_ls_frame(&bad, spec(17, 23), &mut out).is_err());
        let mut bad = stream.clone();
        bad[sof + 4] = 40;
        let e = jpeg_ls_frame(&bad, spec(17, 23), &mut out).unwrap_err();
        assert!(e.contains("precision"), "{e}");
        // Colour transform / mapping tables.
        let mut bad = stream[..2].to_vec();
        bad.extend_from_slice(&[0xFF, LSE, 0, 3, 2]);
        bad.extend_from_slice(&stream[2..]);
        let e = jpeg_ls_frame(&bad, spec(17, 23), &mut out).unwrap_err();
        assert!(e.contains("LSE id 2"), "{e}");
    }

    #[test]
    fn jpeg2000_siz_is_read() {
        // SOC, SIZ with 1 signed 12-bit component.
        let mut s = vec![0xFF, 0x4F, 0xFF, 0x51, 0, 41, 0, 0];
        s.extend_from_slice(&[0; 32]);
        s.extend_from_slice(&[0, 1, 0x8B, 1, 1]);
        assert_eq!(jpeg2000_components(&s).unwrap(), vec![(12, true)]);
        assert!(jpeg2000_components(&s[..44]).is_err());
        assert!(jpeg2000_codestream(&[0, 1, 2]).is_err());
        // Inside a JP2 file.
        let mut jp2 = b"\x00\x00\x00\x0CjP  \r\n\x87\n".to_vec();
        jp2.extend_from_slice(&s);
        let cs = jpeg2000_codestream(&jp2).unwrap();
        assert_eq!(jpeg2000_components(cs).unwrap(), vec![(12, true)]);
    }
}
