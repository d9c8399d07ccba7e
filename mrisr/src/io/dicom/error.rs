//! Why the images of one file cannot be read. The reader's functions return these; where a
//! file is known, [`crate::Error::Dicom`] turns one into a message that names the file (the
//! text of each variant is the reason a user sees).

use super::MAX_VOXELS;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ImageError {
    /// The file could not be opened or parsed as DICOM.
    #[error("{0}")]
    Open(String),
    /// The header does not describe an image the reader can use.
    #[error(transparent)]
    Header(#[from] HeaderError),
    /// No decoder in this build for the file's transfer syntax; the text names it.
    #[error("{0}")]
    TransferSyntax(String),
    #[error("image too large: {cols}x{rows}x{frames} pixels (limit {MAX_VOXELS})")]
    TooLarge {
        cols: usize,
        rows: usize,
        frames: usize,
    },
    #[error(
        "pixel data too short: {available} samples for {cols}x{rows}x{frames} pixels of {spp} sample(s) at {bits} bits (expected {expected})"
    )]
    TooShort {
        available: usize,
        cols: usize,
        rows: usize,
        frames: usize,
        spp: usize,
        bits: u16,
        expected: usize,
    },
    #[error("unsupported BitsAllocated {0}")]
    BitsAllocated(i64),
    #[error("SamplesPerPixel {0} is not supported")]
    SamplesPerPixel(usize),
    /// Pixel data that is not what the header promises (other than too short).
    #[error("{0}")]
    PixelData(String),
    /// Compressed data that mrisr's own JPEG 2000 / JPEG-LS / RLE decoding refused.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// dicom-pixeldata could not decode the pixel data.
    #[error("cannot decode pixel data ({ts}): {reason}")]
    Decoder { ts: String, reason: String },
    /// A decoder panicked (caught).
    #[error("the pixel decoder failed on malformed data ({ts})")]
    DecoderPanicked { ts: String },
    /// `source`, while decoding data of transfer syntax `ts`.
    #[error("{source} ({ts})")]
    InTransferSyntax { source: Box<ImageError>, ts: String },
    #[error("decoded image is {cols}x{rows}, header said {header_cols}x{header_rows}")]
    SizeMismatch {
        cols: usize,
        rows: usize,
        header_cols: usize,
        header_rows: usize,
    },
    #[error("frame {frame} missing: only {decoded} decoded")]
    FrameMissing { frame: usize, decoded: usize },
    #[error("mosaic tile {0} outside the image")]
    TileOutside(usize),
}

/// Why a file's header does not describe an image mrisr can read (a scan lists the file as
/// skipped with this reason).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HeaderError {
    #[error("DICOMDIR (a directory index, not an image)")]
    Dicomdir,
    #[error(
        "no image ({}no Rows/Columns)",
        .modality.as_ref().map(|m| format!("modality {m}, ")).unwrap_or_default()
    )]
    NoRowsColumns { modality: Option<String> },
    #[error("invalid image size {cols}x{rows}")]
    ImageSize { cols: i64, rows: i64 },
    #[error("invalid NumberOfFrames {0}")]
    NumberOfFrames(i64),
}

/// Why [`super::codec`] could not decode compressed pixel data: the frames could not be found
/// in the encapsulated data, or a frame's codestream was refused (the codec's own words).
#[derive(Debug, thiserror::Error)]
pub(crate) enum CodecError {
    #[error("no Pixel Data element (file truncated or not an image)")]
    NoPixelData,
    #[error("Pixel Data is not encapsulated although the transfer syntax is compressed")]
    NotEncapsulated,
    #[error("encapsulated Pixel Data holds no fragments")]
    NoFragments,
    #[error(
        "NumberOfFrames is {frames} but the encapsulated Pixel Data holds {codestreams} codestreams ({fragments} fragments, no usable offset table)"
    )]
    FrameCount {
        frames: usize,
        codestreams: usize,
        fragments: usize,
    },
    #[error("{0}")]
    Rle(String),
    #[error("{0}")]
    Jpeg2000(String),
    #[error("{0}")]
    JpegLs(String),
    /// `source`, in frame `frame` (1-based) of a multi-frame file.
    #[error("frame {frame} of {frames}: {source}")]
    InFrame {
        frame: usize,
        frames: usize,
        source: Box<CodecError>,
    },
}

/// Why the images of one group do not make volumes (the series' `problem`, found by the scan).
#[derive(Debug, thiserror::Error)]
pub(crate) enum SeriesProblem {
    #[error("invalid ImageOrientationPatient {0:?}")]
    Orientation([f64; 6]),
    #[error("mosaic of {images} images does not fit a {cols}x{rows} image")]
    MosaicTooSmall {
        images: usize,
        cols: usize,
        rows: usize,
    },
    #[error("mosaic without ImagePositionPatient")]
    MosaicWithoutPosition,
    #[error("{missing} of {images} images have no ImagePositionPatient")]
    MissingPositions { missing: usize, images: usize },
    #[error(
        "{images} images at {positions} slice positions with {lo} to {hi} images each: incomplete or mixed volumes"
    )]
    UnevenPositions {
        images: usize,
        positions: usize,
        lo: usize,
        hi: usize,
    },
    #[error(
        "too large: {volumes} volumes of {}x{}x{} voxels (limit {MAX_VOXELS} voxels)",
        .dims[0], .dims[1], .dims[2]
    )]
    TooLarge { volumes: usize, dims: [usize; 3] },
}

impl ImageError {
    /// The same error, said to have happened while decoding transfer syntax `ts`.
    pub(crate) fn in_transfer_syntax(self, ts: String) -> ImageError {
        ImageError::InTransferSyntax {
            source: Box::new(self),
            ts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts users see, word for word as the reader wrote them before it had a type.
    #[test]
    fn messages_read_as_before() {
        let short = ImageError::TooShort {
            available: 10,
            cols: 4,
            rows: 3,
            frames: 1,
            spp: 1,
            bits: 16,
            expected: 12,
        };
        assert_eq!(
            short.to_string(),
            "pixel data too short: 10 samples for 4x3x1 pixels of 1 sample(s) at 16 bits (expected 12)"
        );
        assert_eq!(
            short
                .in_transfer_syntax("JPEG-LS Lossless (1.2.840.10008.1.2.4.80)".into())
                .to_string(),
            "pixel data too short: 10 samples for 4x3x1 pixels of 1 sample(s) at 16 bits \
             (expected 12) (JPEG-LS Lossless (1.2.840.10008.1.2.4.80))"
        );
        let large = ImageError::TooLarge {
            cols: 65535,
            rows: 65535,
            frames: 9,
        };
        assert_eq!(
            large.to_string(),
            format!("image too large: 65535x65535x9 pixels (limit {MAX_VOXELS})")
        );
        let cases = [
            (
                ImageError::BitsAllocated(12),
                "unsupported BitsAllocated 12",
            ),
            (
                ImageError::SamplesPerPixel(4),
                "SamplesPerPixel 4 is not supported",
            ),
            (
                ImageError::Decoder {
                    ts: "RLE Lossless (1.2.840.10008.1.2.5)".into(),
                    reason: "bad segment".into(),
                },
                "cannot decode pixel data (RLE Lossless (1.2.840.10008.1.2.5)): bad segment",
            ),
            (
                ImageError::DecoderPanicked {
                    ts: "X (1.2)".into(),
                },
                "the pixel decoder failed on malformed data (X (1.2))",
            ),
            (
                ImageError::SizeMismatch {
                    cols: 4,
                    rows: 3,
                    header_cols: 8,
                    header_rows: 6,
                },
                "decoded image is 4x3, header said 8x6",
            ),
            (
                ImageError::FrameMissing {
                    frame: 5,
                    decoded: 4,
                },
                "frame 5 missing: only 4 decoded",
            ),
            (
                ImageError::TileOutside(7),
                "mosaic tile 7 outside the image",
            ),
            (
                HeaderError::NoRowsColumns { modality: None }.into(),
                "no image (no Rows/Columns)",
            ),
            (
                HeaderError::NoRowsColumns {
                    modality: Some("SR".into()),
                }
                .into(),
                "no image (modality SR, no Rows/Columns)",
            ),
            (
                HeaderError::ImageSize {
                    cols: 0,
                    rows: 70000,
                }
                .into(),
                "invalid image size 0x70000",
            ),
            (
                HeaderError::NumberOfFrames(0).into(),
                "invalid NumberOfFrames 0",
            ),
            (
                HeaderError::Dicomdir.into(),
                "DICOMDIR (a directory index, not an image)",
            ),
            (
                CodecError::InFrame {
                    frame: 2,
                    frames: 3,
                    source: Box::new(CodecError::JpegLs("JPEG-LS stream holds no scan".into())),
                }
                .into(),
                "frame 2 of 3: JPEG-LS stream holds no scan",
            ),
            (
                CodecError::FrameCount {
                    frames: 3,
                    codestreams: 2,
                    fragments: 5,
                }
                .into(),
                "NumberOfFrames is 3 but the encapsulated Pixel Data holds 2 codestreams (5 \
                 fragments, no usable offset table)",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
        }
        let problems = [
            (
                SeriesProblem::Orientation([1.0, 0.0, 0.0, 0.0, 0.0, 0.0]),
                "invalid ImageOrientationPatient [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]",
            ),
            (
                SeriesProblem::MosaicTooSmall {
                    images: 36,
                    cols: 4,
                    rows: 4,
                },
                "mosaic of 36 images does not fit a 4x4 image",
            ),
            (
                SeriesProblem::MosaicWithoutPosition,
                "mosaic without ImagePositionPatient",
            ),
            (
                SeriesProblem::MissingPositions {
                    missing: 2,
                    images: 9,
                },
                "2 of 9 images have no ImagePositionPatient",
            ),
            (
                SeriesProblem::UnevenPositions {
                    images: 9,
                    positions: 4,
                    lo: 2,
                    hi: 3,
                },
                "9 images at 4 slice positions with 2 to 3 images each: incomplete or mixed volumes",
            ),
        ];
        for (p, text) in problems {
            assert_eq!(p.to_string(), text);
        }
        assert_eq!(
            SeriesProblem::TooLarge {
                volumes: 2,
                dims: [3, 4, 5]
            }
            .to_string(),
            format!("too large: 2 volumes of 3x4x5 voxels (limit {MAX_VOXELS} voxels)")
        );
    }
}
