//! Super-resolution inside the page's Web Worker: one model, one request at a time.
//!
//! The worker calls [`sr_init`] with the weight bytes and the backend it wants, then
//! [`sr_run`] per volume. Progress goes to a JavaScript callback `(done, total)` after each
//! tile; [`sr_cancel`] (from the worker's message handler, which runs whenever the WebGPU
//! path awaits a read-back) makes the run stop at the next tile. On the CPU path the run
//! rarely yields, so the page also stops a cancelled worker by terminating it.
//!
//! Tiles are sized so the largest buffer of one tile stays inside the adapter's
//! `maxStorageBufferBindingSize` / `maxBufferSize`, which the worker reads from
//! `navigator.gpu` and passes in; the tiles overlap by the network's receptive radius, so the
//! stitched result has no seams (see `mrisr::tiles`).

use std::cell::{Cell, RefCell};

use burn::tensor::Device;
use burn::tensor::wgpu::WgpuBackend;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::handle::VolumeHandle;
use crate::js_error;

thread_local! {
    static MODEL: RefCell<Option<Loaded>> = const { RefCell::new(None) };
    static CANCEL: Cell<bool> = const { Cell::new(false) };
}

/// A model ready to run on one device.
struct Loaded {
    device: Device,
    model: model::Model,
}

/// What [`sr_init`] reports to the page.
#[derive(Serialize)]
struct Ready {
    backend: &'static str,
    card: serde_json::Value,
}

/// The device for `backend`: `"webgpu"` (fails when the browser has no usable adapter) or `"cpu"`.
async fn device_for(backend: &str) -> Result<(Device, &'static str), JsValue> {
    match backend {
        "webgpu" => {
            let dev = Device::wgpu_options()
                .graphics_api(WgpuBackend::WebGpu)
                .init_async()
                .await
                .map_err(|e| js_error(format!("WebGPU is not available: {e:?}")))?;
            Ok((dev, "webgpu"))
        }
        "cpu" => Ok((Device::flex(), "cpu")),
        other => Err(js_error(format!(
            "unknown backend {other:?} (expected webgpu or cpu)"
        ))),
    }
}

/// Checks that `backend` computes: a small conv3d (ones * ones, 2 -> 3 channels, 4x4x4) must
/// sum to 6000. Also compiles the first shaders, so a later run starts faster. Returns the sum.
#[wasm_bindgen]
pub async fn sr_probe(backend: String) -> Result<f32, JsValue> {
    use burn::tensor::Tensor;
    use burn::tensor::module::conv3d;
    use burn::tensor::ops::ConvOptions;
    let (device, _) = device_for(&backend).await?;
    let x = Tensor::<5>::ones([1, 2, 4, 4, 4], &device);
    let w = Tensor::<5>::ones([3, 2, 3, 3, 3], &device);
    let y = conv3d(
        x,
        w,
        None,
        ConvOptions::new([1, 1, 1], [1, 1, 1], [1, 1, 1], 1),
    );
    let s: f32 = y
        .sum()
        .into_scalar_async::<f32>()
        .await
        .map_err(|e| js_error(format!("{backend}: reading the result back failed: {e:?}")))?;
    if (s - 6000.0).abs() > 1e-3 {
        return Err(js_error(format!(
            "{backend}: a test convolution gave {s} instead of 6000"
        )));
    }
    Ok(s)
}

/// Loads the weights onto `backend` ("webgpu" or "cpu") and keeps the model for [`sr_run`].
/// Returns `{backend, card}` as JSON, `card` being the model card stored with the weights.
#[wasm_bindgen]
pub async fn sr_init(weights: Vec<u8>, backend: String) -> Result<String, JsValue> {
    let (device, backend) = device_for(&backend).await?;
    let model = model::load(&weights, &device)?;
    let card = model.card_json();
    MODEL.with(|m| *m.borrow_mut() = Some(Loaded { device, model }));
    serde_json::to_string(&Ready { backend, card }).map_err(js_error)
}

/// Reads the model card from weight bytes without keeping the model (for the page's card).
#[wasm_bindgen]
pub fn sr_model_card(weights: Vec<u8>) -> Result<String, JsValue> {
    let model = model::load(&weights, &Device::flex())?;
    serde_json::to_string(&model.card_json()).map_err(js_error)
}

/// Asks the running [`sr_run`] to stop at the next tile.
#[wasm_bindgen]
pub fn sr_cancel() {
    CANCEL.with(|c| c.set(true));
}

/// Tile options for a run: `tile` is the core edge in input voxels (0 = derive from
/// `max_buffer_bytes`), `overlap` the halo (0 = the network's receptive radius).
#[wasm_bindgen]
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    pub tile: usize,
    pub overlap: usize,
    pub max_buffer_bytes: f64,
}

#[wasm_bindgen]
impl RunOptions {
    #[wasm_bindgen(constructor)]
    pub fn new(tile: usize, overlap: usize, max_buffer_bytes: f64) -> RunOptions {
        RunOptions {
            tile,
            overlap,
            max_buffer_bytes,
        }
    }
}

/// Super-resolves `input` with the model from [`sr_init`]; `progress(done, total)` is called
/// after every tile. Rejects with "cancelled" after [`sr_cancel`].
#[wasm_bindgen]
pub async fn sr_run(
    input: VolumeHandle,
    opts: RunOptions,
    progress: js_sys::Function,
) -> Result<VolumeHandle, JsValue> {
    CANCEL.with(|c| c.set(false));
    // The model is moved out for the run (one request at a time) and put back afterwards.
    let loaded = MODEL
        .with(|m| m.borrow_mut().take())
        .ok_or_else(|| js_error("no model loaded (call sr_init first)"))?;
    let mut report = |done: usize, total: usize| -> bool {
        let _ = progress.call2(
            &JsValue::NULL,
            &(done as f64).into(),
            &(total as f64).into(),
        );
        !CANCEL.with(|c| c.get())
    };
    let result = loaded
        .model
        .upscale(&input.vol, opts, &loaded.device, &mut report)
        .await;
    MODEL.with(|m| *m.borrow_mut() = Some(loaded));
    let out = result?;
    Ok(VolumeHandle::new(out))
}

/// The one place that calls into `mrisr::model` / `mrisr::pipeline`.
mod model {
    use burn::tensor::Device;
    use mrisr::infer::{Progress, TileOptions};
    use mrisr::model::{ModelCard, SrNet, weights};
    use wasm_bindgen::JsValue;

    use super::RunOptions;
    use crate::lib_error;

    pub struct Model {
        net: SrNet,
        card: ModelCard,
    }

    pub fn load(bytes: &[u8], device: &Device) -> Result<Model, JsValue> {
        let (net, card) = weights::load("weights", bytes, device).map_err(lib_error)?;
        Ok(Model { net, card })
    }

    impl Model {
        pub fn card_json(&self) -> serde_json::Value {
            serde_json::to_value(&self.card).unwrap_or_default()
        }

        pub async fn upscale(
            &self,
            vol: &mrisr::Volume,
            opts: RunOptions,
            device: &Device,
            progress: &mut dyn FnMut(usize, usize) -> bool,
        ) -> Result<mrisr::Volume, JsValue> {
            // The widest activation of a tile is `channels` floats per voxel; keep it (with a
            // factor 2 for the residual branch) inside the adapter's largest buffer.
            let per_voxel = 4 * 2 * self.card.net.channels.max(1);
            let budget = (opts.max_buffer_bytes.max(1.0) as usize / per_voxel).max(1);
            let mut tiles = TileOptions::for_net(&self.card.net, budget);
            if opts.tile > 0 {
                tiles.core = opts.tile;
            }
            if opts.overlap > 0 {
                tiles.halo = opts.overlap;
            }
            let mut report = |p: Progress| progress(p.tiles_done, p.tiles_total);
            mrisr::pipeline::upscale(&self.net, &self.card, vol, None, tiles, device, &mut report)
                .await
                .map_err(lib_error)
        }
    }
}
