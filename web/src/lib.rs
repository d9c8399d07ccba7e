//! WebAssembly glue between the mrisr page (`www/`) and the mrisr library.
//!
//! The page is a thin JavaScript shell; everything that touches voxels happens here:
//! - [`load`]: files handed over by the page (DICOM folder, NIfTI) -> series list -> volume;
//! - [`handle`]: a volume kept on the Rust side, moved between page and workers as plain parts;
//! - [`view`]: the three orthogonal planes with window/level, as RGBA for a canvas;
//! - [`export`]: NIfTI bytes and a zipped DICOM series of a (derived) volume;
//! - [`sr`]: super-resolution on WebGPU or CPU, run inside a Web Worker with progress and cancel;
//! - [`learn`]: "Learn from this scan": a network learned from the scan's own in-plane detail.
//!
//! The logic behind them is in `mrisr` (`view`, `geometry`, `io::zip`, the pipeline), where
//! `tests/run.sh` runs its tests natively; this crate converts between JavaScript and Rust. Errors reach
//! JavaScript as `Error` objects whose message names the file and the reason.

use wasm_bindgen::prelude::*;

pub mod export;
pub mod handle;
pub mod learn;
pub mod load;
pub mod sr;
pub mod view;

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

/// The module's version (mrisr's), for the page's diagnostics.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// A JavaScript `Error` with `msg` as its message.
pub(crate) fn js_error(msg: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&msg.to_string()).into()
}

/// The library's errors already name the file and the reason; they are passed on as is.
pub(crate) fn lib_error(e: mrisr::Error) -> JsValue {
    js_error(e)
}
