//! mrisr: 3D MRI super-resolution that runs where the data is.
//!
//! Data flows through the modules in this order (see ARCHITECTURE.md):
//! `io` (DICOM folder / NIfTI -> [`Volume`]) -> `normalize`, `degrade` / `resample` and `task`
//! (simulated acquisition, baseline upsampling, the network's frame) -> `model` + `infer` +
//! `pipeline` (the network, tiled) -> `metrics` -> `io` (NIfTI / DICOM).
//!
//! The network runs on mrisr's own CPU engine (`engine`, no burn) or on burn (`model::{net,
//! weights}`, `infer`: feature `nn`, for GPUs and training). Everything builds for
//! wasm32-unknown-unknown.

pub mod adapt;
#[cfg(feature = "args")]
pub mod args;
pub mod degrade;
pub mod engine;
pub mod error;
pub mod geometry;
pub mod io;
pub mod metrics;
pub mod model;
pub mod normalize;
pub mod pipeline;
pub mod resample;
pub mod scan;
pub mod task;
pub mod tiles;
pub mod view;
pub mod volume;

#[cfg(feature = "nn")]
pub mod infer;

pub use error::{Error, Result};
pub use volume::{Affine, Metadata, Volume};
