//! mrisr: 3D MRI super-resolution that runs where the data is.
//!
//! Data flows through the modules in this order (see ARCHITECTURE.md):
//! `io` (DICOM folder / NIfTI -> [`Volume`]) -> `degrade` / `resample` (simulated acquisition,
//! baseline upsampling) -> `model` + `infer` (the network, tiled) -> `metrics` -> `io` (NIfTI / DICOM).
//!
//! Everything except `model` and `infer` builds without burn (feature `nn`), and all of it builds
//! for wasm32-unknown-unknown.

pub mod degrade;
pub mod error;
pub mod io;
pub mod metrics;
pub mod normalize;
pub mod resample;
pub mod tiles;
pub mod volume;


pub use error::{Error, Result};
pub use volume::{Affine, Metadata, Volume};
