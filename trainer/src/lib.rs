//! The mrisr trainer as a library: data, losses, the training loop and the evaluation report.
//! `main.rs` only parses flags and calls these (so tests can drive them directly).

pub mod bench;
pub mod data;
pub mod device;
pub mod eval;
pub mod perceptual;
pub mod publish;
pub mod scan_eval;
pub mod train;
pub mod train_args;
