//! DICOM: scan files, group them into series, assemble volumes, write derived series.
//!
//! Everything works on in-memory inputs ([`DicomInput::Memory`]) as well as on paths, because
//! the web page has no filesystem: it hands over (name, bytes) pairs. Only [`scan_dir`] and
//! [`write_series_to_dir`] touch the filesystem.
//!
//! The geometry follows dcm2niix, so a volume read here has the same voxel order and affine as
//! the NIfTI dcm2niix writes for the same files:
//! - slices are sorted along the slice normal (row x column direction cosines), not by
//!   InstanceNumber, and the slice step comes from the positions;
//! - DICOM LPS is mapped to RAS (x and y negated);
//! - 2D acquisitions have their rows flipped (j goes up, dcm2niix `nii_flipY`);
//! - 3D acquisitions (MRAcquisitionType `3D`) are instead permuted/flipped losslessly to the
//!   nearest RAS+ orientation (dcm2niix `nii_setOrtho`).
//!
//! Entry points: [`scan_inputs`] / [`scan_dir`] -> [`ScanReport`] with [`Series`];
//! [`load_series`] -> one [`Volume`](crate::Volume) per time point / volume;
//! [`write_series`] / [`write_series_to_dir`] for a derived series.

mod codec;
mod csa;
mod decode;
mod error;
mod geometry;
mod header;
mod lengths;
mod place;
mod read;
mod scan;
mod series;
mod write;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use decode::{DecodedImage, Decoders, decode_input, decode_input_with};
pub use scan::{scan_dir, scan_inputs};
pub use series::load_series;
pub use write::{WriteOptions, write_series, write_series_to_dir};

/// Volumes larger than this many voxels are refused before anything is allocated.
#[cfg(not(target_pointer_width = "32"))]
pub const MAX_VOXELS: usize = 1 << 31;
/// Volumes larger than this many voxels are refused before anything is allocated. On 32-bit
/// targets (wasm32: at most 4 GiB of linear memory, and a failed allocation aborts the page)
/// the limit is 2^28 voxels, 1 GiB of f32, leaving room for the decoded frames and a copy.
#[cfg(target_pointer_width = "32")]
pub const MAX_VOXELS: usize = 1 << 28;

/// Product of sizes taken from headers, saturating instead of overflowing (`usize` is 32 bits
/// on wasm32, where 65535 x 65535 x frames does not fit), for comparing with [`MAX_VOXELS`].
pub(crate) fn voxel_count(sizes: &[usize]) -> usize {
    sizes.iter().fold(1usize, |acc, &n| acc.saturating_mul(n))
}

/// One DICOM file to read: a path (native) or bytes already in memory (the page).
#[derive(Clone)]
pub enum DicomInput {
    /// A file on disk.
    Path(PathBuf),
    /// A file's bytes with the name to show in messages (for example the path inside a zip).
    Memory { name: String, bytes: Arc<[u8]> },
}

impl DicomInput {
    /// Wraps bytes already in memory.
    pub fn memory(name: impl Into<String>, bytes: impl Into<Arc<[u8]>>) -> Self {
        DicomInput::Memory {
            name: name.into(),
            bytes: bytes.into(),
        }
    }

    /// The name to show a person: the path, or the given name.
    pub fn name(&self) -> String {
        match self {
            DicomInput::Path(p) => p.display().to_string(),
            DicomInput::Memory { name, .. } => name.clone(),
        }
    }

    /// The name as a path, for [`crate::Error::Dicom`].
    pub fn error_path(&self) -> PathBuf {
        match self {
            DicomInput::Path(p) => p.clone(),
            DicomInput::Memory { name, .. } => PathBuf::from(name),
        }
    }
}

// Bytes are not printed: a series can hold hundreds of megabytes.
impl std::fmt::Debug for DicomInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DicomInput::Path(p) => f.debug_tuple("Path").field(p).finish(),
            DicomInput::Memory { name, bytes } => f
                .debug_struct("Memory")
                .field("name", name)
                .field("len", &bytes.len())
                .finish(),
        }
    }
}

/// What a scan found: the usable series and the files that were left out (and why).
#[derive(Clone, Debug, Default)]
pub struct ScanReport {
    pub series: Vec<Series>,
    pub skipped: Vec<Skipped>,
}

/// A file that is not part of any series, with the reason (not DICOM, DICOMDIR, no image...).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// One image series, split like dcm2niix splits (SeriesInstanceUID, orientation, matrix size,
/// echo, image type), ready for [`load_series`].
#[derive(Clone, Debug)]
pub struct Series {
    /// SeriesInstanceUID.
    pub uid: String,
    /// SeriesNumber, if present.
    pub number: Option<i64>,
    /// SeriesDescription (or ProtocolName when there is no description).
    pub description: String,
    /// Modality (MR, CT, ...).
    pub modality: String,
    /// Voxels along i, j, k of each volume, in the order [`load_series`] returns them.
    pub dims: [usize; 3],
    /// Voxel size in mm along i, j, k.
    pub spacing: [f64; 3],
    /// Number of volumes (time points, repeated acquisitions).
    pub volumes: usize,
    /// Echo number when the series was split by echo.
    pub echo: Option<i64>,
    /// Names of the files that make up the series.
    pub files: Vec<String>,
    /// Things a person should know (uneven slice gaps, missing positions...).
    pub warnings: Vec<String>,
    /// Why the series cannot be assembled, if it cannot (checked again by [`load_series`]).
    pub problem: Option<String>,
    pub(crate) plan: series::Plan,
}

// Kept with the volume's metadata (crate::volume); re-exported where the reader and writer
// look for them.
pub use crate::volume::{SourceAttributes, SourceImage};

/// Full error text of a library error and its sources (dicom-rs nests the useful part).
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
