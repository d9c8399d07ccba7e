//! Pixel data -> f32 samples. JPEG 2000 and JPEG-LS are decoded by [`super::codec`] (pure
//! Rust, so the page reads them too); everything else dicom-pixeldata decodes in pure Rust,
//! plus HTJ2K (and JPEG 2000 when asked for: [`Decoders::OpenJpeg`]) through openjp2 natively. Anything else is refused
//! with the transfer syntax named. Decoders run under `catch_unwind` so malformed data cannot
//! take the page down.

use dicom_encoding::TransferSyntaxIndex;
use dicom_object::DefaultDicomObject;
use dicom_pixeldata::{
    DecodedPixelData, PhotometricInterpretation, PixelDecoder, PixelRepresentation,
    PlanarConfiguration,
};
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use dicom_core::value::{PrimitiveValue, Value as DicomValue};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemFragment;

use super::codec::{self, Codec, FrameSpec, HTJ2K_UIDS};
use super::error::ImageError;
use super::header::{FileInfo, file_info, get_int, get_str};
use super::{DicomInput, MAX_VOXELS, error_chain, read, voxel_count};
use crate::{Error, Result};

/// The frames of one file as grey values: stored values with RescaleSlope/Intercept applied
/// (per frame for enhanced files), colour converted to luminance.
#[derive(Clone, Debug)]
pub struct DecodedImage {
    pub rows: usize,
    pub cols: usize,
    pub frames: usize,
    /// `frames * rows * cols` values; each frame row by row, column fastest.
    pub data: Vec<f32>,
    /// Transfer syntax UID of the file.
    pub transfer_syntax: String,
    /// Notes such as "colour converted to luminance".
    pub notes: Vec<String>,
}

/// Which decoders read compressed pixel data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Decoders {
    /// JPEG 2000 through hayro-jpeg2000 and JPEG-LS through pure_jpegls everywhere (natively
    /// hayro-jpeg2000 is also faster than openjp2: 1.2-1.5x on the conformance files); HTJ2K
    /// through openjp2 natively, refused in the page.
    #[default]
    Default,
    /// Only pure-Rust decoders, as in the page: HTJ2K is refused natively too.
    PureRust,
    /// Natively, JPEG 2000 through openjp2 as well (the reference the tests compare with); in
    /// the page the same as `PureRust`.
    OpenJpeg,
}

/// Raw grey samples of all frames (no rescale), frame-major, column fastest.
pub(crate) struct RawFrames {
    pub rows: usize,
    pub cols: usize,
    pub frames: usize,
    pub data: Pixels,
    pub notes: Vec<String>,
}

/// The samples of [`RawFrames`]: grey values, or 16-bit stored values as read from the file
/// (the common uncompressed MR image), turned into grey values where they are placed.
pub(crate) enum Pixels {
    Grey(Vec<f32>),
    Stored16(Vec<u16>, Stored),
}

impl Pixels {
    pub(crate) fn into_grey(self) -> Vec<f32> {
        match self {
            Pixels::Grey(v) => v,
            Pixels::Stored16(v, s) => v.into_iter().map(|x| s.grey(u32::from(x))).collect(),
        }
    }
}

/// How a stored sample becomes a grey value: its low `bits` bits, sign-extended when `signed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Stored {
    /// 1 to 32.
    bits: u32,
    signed: bool,
}

impl Stored {
    #[inline]
    pub(crate) fn grey(self, raw: u32) -> f32 {
        let v = if self.bits >= 32 {
            raw
        } else {
            raw & ((1u32 << self.bits) - 1)
        };
        if self.signed {
            let shift = 32 - self.bits;
            ((v << shift) as i32 >> shift) as f32
        } else {
            v as f32
        }
    }
}

/// A short human name for a transfer syntax UID.
pub(crate) fn ts_name(uid: &str) -> String {
    match TransferSyntaxRegistry.get(uid) {
        Some(ts) => format!("{} ({uid})", ts.name()),
        None => format!("unknown transfer syntax {uid}"),
    }
}

/// Checks up front whether this build can decode `uid` with `decoders`.
pub(crate) fn check_transfer_syntax(uid: &str, decoders: Decoders) -> Result<(), ImageError> {
    let pure = decoders == Decoders::PureRust || cfg!(target_arch = "wasm32");
    if codec::codec_for(uid).is_some() {
        return Ok(());
    }
    let refuse = |reason: String| Err(ImageError::TransferSyntax(reason));
    if pure && HTJ2K_UIDS.contains(&uid) {
        return refuse(format!(
            "{} cannot be decoded here: there is no pure-Rust HTJ2K decoder (the mrisr command \
             decodes it with openjp2)",
            ts_name(uid)
        ));
    }
    match TransferSyntaxRegistry.get(uid) {
        None => refuse(format!("unknown transfer syntax UID {uid}")),
        Some(ts) if !ts.can_decode_all() => refuse(format!(
            "transfer syntax {} ({uid}) cannot be decoded here (no pure-Rust decoder for it)",
            ts.name()
        )),
        Some(_) => Ok(()),
    }
}

/// Decodes all frames of a fully read object into raw grey samples (taking uncompressed pixel
/// data out of the object rather than copying it).
pub(crate) fn decode_raw(obj: DefaultDicomObject) -> Result<RawFrames, ImageError> {
    decode_raw_with(obj, Decoders::Default)
}

fn decode_raw_with(
    mut obj: DefaultDicomObject,
    decoders: Decoders,
) -> Result<RawFrames, ImageError> {
    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches(['\0', ' '])
        .to_string();
    check_transfer_syntax(&ts, decoders)?;
    // Refuse absurd sizes before a decoder allocates for them.
    let info = file_info(&obj)?;
    let want = voxel_count(&[info.rows, info.cols, info.number_of_frames]);
    if want > MAX_VOXELS {
        return Err(ImageError::TooLarge {
            cols: info.cols,
            rows: info.rows,
            frames: info.number_of_frames,
        });
    }
    let Some(pixel_data) = obj.get(tags::PIXEL_DATA) else {
        return float_pixel_data(&obj, &info);
    };
    let own = match codec::codec_for(&ts) {
        Some(Codec::Jpeg2000)
            if decoders == Decoders::OpenJpeg && cfg!(not(target_arch = "wasm32")) =>
        {
            None
        }
        other => other,
    };
    let bits_allocated = obj
        .get(tags::BITS_ALLOCATED)
        .and_then(|e| e.to_int::<u16>().ok());
    if own.is_none()
        && bits_allocated == Some(1)
        && !matches!(pixel_data.value(), DicomValue::PixelSequence(_))
    {
        let bytes = pixel_data
            .to_bytes()
            .map_err(|e| ImageError::PixelData(e.to_string()))?;
        return unpack_bits(bytes.as_ref(), &info);
    }
    if own.is_none()
        && let Some(layout) = native_layout(&obj, &info, pixel_data.value())
    {
        return native_grey(&mut obj, &layout);
    }
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match own {
        Some(c) => own_codec(&obj, &info, c).map_err(|e| e.in_transfer_syntax(ts_name(&ts))),
        None => obj
            .decode_pixel_data()
            .map_err(|e| ImageError::Decoder {
                ts: ts_name(&ts),
                reason: error_chain(&e),
            })
            .and_then(|px| to_grey(&px).map_err(|e| e.in_transfer_syntax(ts_name(&ts)))),
    }));
    decoded.unwrap_or_else(|_| Err(ImageError::DecoderPanicked { ts: ts_name(&ts) }))
}

/// JPEG 2000 / JPEG-LS through [`codec`], then the common grey conversion.
fn own_codec(obj: &DefaultDicomObject, info: &FileInfo, c: Codec) -> Result<RawFrames, ImageError> {
    let ba = get_int(obj, tags::BITS_ALLOCATED).unwrap_or(16);
    let bits_allocated = match ba {
        1 | 8 | 16 | 32 => ba as u16,
        other => return Err(ImageError::BitsAllocated(other)),
    };
    let bits_stored = get_int(obj, tags::BITS_STORED)
        .filter(|&b| (1..=32).contains(&b))
        .map_or(bits_allocated, |b| b as u16);
    let spp = info.samples_per_pixel;
    if spp != 1 && spp != 3 {
        return Err(ImageError::SamplesPerPixel(spp));
    }
    let spec = FrameSpec {
        rows: info.rows,
        cols: info.cols,
        samples_per_pixel: spp,
        bits_allocated,
    };
    let frames = info.number_of_frames;
    let samples = codec::decode_frames(obj, c, spec, frames)?;
    let pi_text = get_str(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
    let pi = if samples.rgb {
        PhotometricInterpretation::Rgb
    } else {
        PhotometricInterpretation::from(pi_text.as_str())
    };
    let layout = Layout {
        rows: info.rows,
        cols: info.cols,
        frames,
        spp,
        // One-bit images come out of the decoders one sample per value.
        bits_allocated: bits_allocated.max(8),
        bits_stored: bits_stored.min(bits_allocated.max(8)),
        signed: get_int(obj, tags::PIXEL_REPRESENTATION) == Some(1),
        pi,
        planar: false,
    };
    let data = samples.data;
    grey(&layout, data.len(), |i| data[i])
}

/// The layout of uncompressed grey 8- or 16-bit pixel data, the most common MR file, which
/// [`native_grey`] reads straight from the parsed element. None for anything else.
fn native_layout(
    obj: &DefaultDicomObject,
    info: &FileInfo,
    value: &DicomValue<InMemDicomObject, InMemFragment>,
) -> Option<Layout> {
    let ba = get_int(obj, tags::BITS_ALLOCATED)?;
    let pi = get_str(obj, tags::PHOTOMETRIC_INTERPRETATION).unwrap_or_default();
    if info.samples_per_pixel != 1 || !matches!(pi.as_str(), "MONOCHROME1" | "MONOCHROME2") {
        return None;
    }
    let stored = matches!(
        (ba, value),
        (16, DicomValue::Primitive(PrimitiveValue::U16(_)))
            | (8, DicomValue::Primitive(PrimitiveValue::U8(_)))
    );
    if !stored {
        return None;
    }
    let bits_stored = get_int(obj, tags::BITS_STORED)
        .filter(|&b| (1..=ba).contains(&b))
        .unwrap_or(ba) as u16;
    Some(Layout {
        rows: info.rows,
        cols: info.cols,
        frames: info.number_of_frames,
        spp: 1,
        bits_allocated: ba as u16,
        bits_stored,
        signed: get_int(obj, tags::PIXEL_REPRESENTATION) == Some(1),
        pi: PhotometricInterpretation::from(pi.as_str()),
        planar: false,
    })
}

/// Takes the Pixel Data of a [`native_layout`] file out of `obj` (no copy into
/// dicom-pixeldata's buffer first): 16-bit samples stay as stored ([`Pixels::Stored16`]).
fn native_grey(obj: &mut DefaultDicomObject, layout: &Layout) -> Result<RawFrames, ImageError> {
    let value = obj.take(tags::PIXEL_DATA).map(|e| e.into_value());
    match value {
        Some(DicomValue::Primitive(PrimitiveValue::U16(v))) => {
            let (n, _) = sample_count(layout, v.len())?;
            let mut v = v.into_vec();
            v.truncate(n);
            Ok(RawFrames {
                rows: layout.rows,
                cols: layout.cols,
                frames: layout.frames,
                data: Pixels::Stored16(v, layout.stored()),
                notes: Vec::new(),
            })
        }
        Some(DicomValue::Primitive(PrimitiveValue::U8(v))) => {
            grey(layout, v.len(), |i| u32::from(v[i]))
        }
        _ => Err(ImageError::PixelData(
            "Pixel Data is not 8- or 16-bit samples".into(),
        )),
    }
}

/// Float / Double Float Pixel Data (parametric maps): values as stored.
fn float_pixel_data(obj: &DefaultDicomObject, info: &FileInfo) -> Result<RawFrames, ImageError> {
    let e = obj
        .get(tags::FLOAT_PIXEL_DATA)
        .or_else(|| obj.get(tags::DOUBLE_FLOAT_PIXEL_DATA))
        .ok_or_else(|| {
            ImageError::PixelData("no Pixel Data element (file truncated or not an image)".into())
        })?;
    let n = info.rows * info.cols * info.number_of_frames;
    let v = e
        .to_multi_float64()
        .map_err(|e| ImageError::PixelData(format!("cannot read float pixel data: {e}")))?;
    if v.len() < n {
        return Err(ImageError::PixelData(format!(
            "float pixel data too short: {} values for {n} pixels",
            v.len()
        )));
    }
    Ok(RawFrames {
        rows: info.rows,
        cols: info.cols,
        frames: info.number_of_frames,
        data: Pixels::Grey(v[..n].iter().map(|&x| x as f32).collect()),
        notes: Vec::new(),
    })
}

/// 1-bit images (segmentations): bits are packed across frame boundaries, least significant
/// bit first, which dicom-pixeldata 0.10 gets wrong for sizes not a multiple of 8.
fn unpack_bits(bytes: &[u8], info: &FileInfo) -> Result<RawFrames, ImageError> {
    let n = info.rows * info.cols * info.number_of_frames;
    if bytes.len() < n.div_ceil(8) {
        return Err(ImageError::PixelData(format!(
            "pixel data too short: {} bytes for {n} one-bit pixels",
            bytes.len()
        )));
    }
    Ok(RawFrames {
        rows: info.rows,
        cols: info.cols,
        frames: info.number_of_frames,
        data: Pixels::Grey(
            (0..n)
                .map(|i| ((bytes[i / 8] >> (i % 8)) & 1) as f32)
                .collect(),
        ),
        notes: Vec::new(),
    })
}

/// How decoded samples are laid out, from the decoder or the header.
struct Layout {
    rows: usize,
    cols: usize,
    frames: usize,
    spp: usize,
    bits_allocated: u16,
    bits_stored: u16,
    signed: bool,
    pi: PhotometricInterpretation,
    planar: bool,
}

impl Layout {
    /// How a sample of this layout becomes a grey value (BitsStored, sign).
    fn stored(&self) -> Stored {
        let bits_stored = self.bits_stored.clamp(1, self.bits_allocated.max(1));
        Stored {
            bits: u32::from(bits_stored.min(32)),
            signed: self.signed,
        }
    }
}

/// The pixels of `layout` and the samples they take, checked against the `available` samples:
/// absurd sizes and short pixel data are refused.
fn sample_count(layout: &Layout, available: usize) -> Result<(usize, usize), ImageError> {
    let Layout {
        rows,
        cols,
        frames,
        spp,
        bits_allocated: ba,
        ..
    } = *layout;
    let n = voxel_count(&[rows, cols, frames]);
    if n > MAX_VOXELS {
        return Err(ImageError::TooLarge { cols, rows, frames });
    }
    // YBR_FULL_422 without compression stores Y Y Cb Cr for each pair of pixels.
    let ybr422 = spp == 3 && layout.pi == PhotometricInterpretation::YbrFull422;
    let samples = voxel_count(&[n, if ybr422 { 2 } else { spp }]);
    if available < samples {
        return Err(ImageError::TooShort {
            available,
            cols,
            rows,
            frames,
            spp,
            bits: ba,
            expected: samples,
        });
    }
    Ok((n, samples))
}

/// dicom-pixeldata's decoded samples to grey values.
fn to_grey(px: &DecodedPixelData<'_>) -> Result<RawFrames, ImageError> {
    let layout = Layout::of_decoded(px);
    let data = px.data();
    let width = match layout.bits_allocated {
        1 | 8 => 1usize,
        16 => 2,
        32 => 4,
        other => return Err(ImageError::BitsAllocated(other.into())),
    };
    grey(&layout, data.len() / width, |i| {
        stored_sample(data, width, i)
    })
}

impl Layout {
    fn of_decoded(px: &DecodedPixelData<'_>) -> Layout {
        Layout {
            rows: px.rows() as usize,
            cols: px.columns() as usize,
            frames: px.number_of_frames().max(1) as usize,
            spp: px.samples_per_pixel().max(1) as usize,
            bits_allocated: px.bits_allocated(),
            bits_stored: px.bits_stored(),
            signed: px.pixel_representation() == PixelRepresentation::Signed,
            pi: px.photometric_interpretation().clone(),
            planar: px.planar_configuration() == PlanarConfiguration::PixelFirst,
        }
    }
}

/// The bit pattern of sample `i` of `data`, `width` bytes a sample in native byte order.
fn stored_sample(data: &[u8], width: usize, i: usize) -> u32 {
    match width {
        1 => data[i] as u32,
        2 => u16::from_ne_bytes([data[2 * i], data[2 * i + 1]]) as u32,
        _ => u32::from_ne_bytes([
            data[4 * i],
            data[4 * i + 1],
            data[4 * i + 2],
            data[4 * i + 3],
        ]),
    }
}

/// Grey values from raw samples (`raw(i)`: the stored bit pattern of sample i, `available` of
/// them): BitsStored applied (sign-extended when signed), colour converted to luminance.
fn grey(
    layout: &Layout,
    available: usize,
    raw: impl Fn(usize) -> u32,
) -> Result<RawFrames, ImageError> {
    let (n, _) = sample_count(layout, available)?;
    let stored = layout.stored();
    let one_bit = layout.bits_allocated == 1;
    let sample = |i: usize| -> f32 {
        let raw = raw(i);
        if one_bit {
            raw as f32
        } else {
            stored.grey(raw)
        }
    };
    let (data, note) = luminance(layout, n, sample);
    Ok(RawFrames {
        rows: layout.rows,
        cols: layout.cols,
        frames: layout.frames,
        data: Pixels::Grey(data),
        notes: note.into_iter().collect(),
    })
}

/// The `n` pixels' grey values from their samples (`sample(i)`: the value of sample i), and a
/// note when anything but a grey image was turned into one.
fn luminance(
    layout: &Layout,
    n: usize,
    sample: impl Fn(usize) -> f32,
) -> (Vec<f32>, Option<String>) {
    let (spp, pi) = (layout.spp, &layout.pi);
    if spp == 1 {
        let note = (*pi == PhotometricInterpretation::PaletteColor)
            .then(|| "PALETTE COLOR image: palette indices kept as values".to_string());
        return ((0..n).map(sample).collect(), note);
    }
    if spp == 3 && *pi == PhotometricInterpretation::YbrFull422 {
        // Uncompressed YBR_FULL_422 stores Y Y Cb Cr for each pair of pixels.
        let y = (0..n).map(|p| sample((p / 2) * 4 + (p % 2))).collect();
        return (y, Some("YBR_FULL_422 colour: luminance (Y) kept".into()));
    }
    if spp != 3 {
        let first = (0..n).map(|p| sample(p * spp)).collect();
        return (
            first,
            Some(format!("{spp} samples per pixel: first sample kept")),
        );
    }
    let (planar, plane) = (layout.planar, layout.rows * layout.cols);
    let ybr = matches!(
        pi,
        PhotometricInterpretation::YbrFull | PhotometricInterpretation::YbrPartial420
    );
    let note = if ybr {
        "YBR colour: luminance (Y) kept"
    } else {
        "colour image converted to luminance"
    };
    let grey = (0..n)
        .map(|p| {
            let (f, q) = (p / plane, p % plane);
            let at = |c: usize| {
                if planar {
                    sample(f * plane * 3 + c * plane + q)
                } else {
                    sample(p * 3 + c)
                }
            };
            if ybr {
                at(0)
            } else {
                0.299 * at(0) + 0.587 * at(1) + 0.114 * at(2)
            }
        })
        .collect();
    (grey, Some(note.into()))
}

/// Decodes every frame of one file into grey values with the modality rescale applied.
/// Errors name the file and the reason (unsupported transfer syntax, truncated data...).
pub fn decode_input(input: &DicomInput) -> Result<DecodedImage> {
    decode_input_with(input, Decoders::Default)
}

/// [`decode_input`] with a choice of decoders ([`Decoders::PureRust`]: what the page does).
pub fn decode_input_with(input: &DicomInput, decoders: Decoders) -> Result<DecodedImage> {
    let err = |reason: String| Error::dicom(input.error_path(), reason);
    let obj = read::open(input, false).map_err(|e| err(e.reason().to_string()))?;
    let info = file_info(&obj).map_err(|e| err(e.to_string()))?;
    let raw = decode_raw_with(obj, decoders).map_err(|e| err(e.to_string()))?;
    let plane = raw.rows * raw.cols;
    let mut data = raw.data.into_grey();
    for (f, chunk) in data.chunks_mut(plane.max(1)).enumerate() {
        let (s, i) = info
            .frames
            .get(f)
            .map(|fr| (fr.slope, fr.intercept))
            .unwrap_or((1.0, 0.0));
        if s != 1.0 || i != 0.0 {
            for v in chunk.iter_mut() {
                *v = (*v as f64 * s + i) as f32;
            }
        }
    }
    Ok(DecodedImage {
        rows: raw.rows,
        cols: raw.cols,
        frames: raw.frames,
        data,
        transfer_syntax: info.transfer_syntax,
        notes: raw.notes,
    })
}
