//! The super-resolution network, its presets and its weight files.
//!
//! `card` (what a weight file says about itself) builds without burn so the page and the CLI can
//! show it cheaply; the network and the weight loading need the `nn` feature.

pub mod card;
#[cfg(feature = "nn")]
pub mod cpu_conv;
#[cfg(feature = "nn")]
pub mod net;
#[cfg(feature = "cli")]
pub mod published;
#[cfg(feature = "nn")]
pub mod weights;

pub use card::{ModelCard, Preset};
#[cfg(feature = "nn")]
pub use net::{SrNet, SrNetConfig};
