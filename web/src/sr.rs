//! Super-resolution inside the page's Web Worker: one model, one request at a time.
//!
//! The worker calls [`sr_init`] with the weight bytes and the backend it wants, then
//! [`sr_run`] per volume. Progress goes to a JavaScript callback `(done, total)` in voxels;
//! [`sr_cancel`] (from the worker's message handler, which runs whenever the WebGPU path
//! awaits a read-back) makes the run stop at the next tile. The CPU path (mrisr's engine) runs
//! without yielding, so the page stops a cancelled worker by terminating it.
//!
//! On WebGPU, tiles are sized so the largest buffer of one tile stays inside the adapter's
//! `maxStorageBufferBindingSize` / `maxBufferSize`, which the worker reads from
//! `navigator.gpu` and passes in; the tiles overlap by the network's receptive radius, so the
//! stitched result has no seams (see `mrisr::tiles`). The CPU engine streams plane by plane
//! (see `mrisr::engine`).

use std::cell::{Cell, RefCell};

use burn::tensor::Device;
use burn::tensor::wgpu::WgpuBackend;
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::handle::VolumeHandle;
use crate::js_error;

thread_local! {
    /// The model [`sr_init`] loaded, on its engine.
    static MODEL: RefCell<Option<model::Model>> = const { RefCell::new(None) };
    /// Between [`sr_prepare`] and [`sr_finish`]: how to map the network's output back.
    static PREPARED: RefCell<Option<(mrisr::pipeline::Prepared, mrisr::Metadata)>> =
        const { RefCell::new(None) };
    static CANCEL: Cell<bool> = const { Cell::new(false) };
}

/// What [`sr_init`] reports to the page.
#[derive(Serialize)]
struct Ready {
    backend: &'static str,
    card: serde_json::Value,
    /// The network's receptive radius: the overlap slabs of a split run need.
    halo: usize,
}

/// The device for `backend`: `"webgpu"` (fails when the browser has no usable adapter) or `"cpu"`.
pub(crate) async fn device_for(backend: &str) -> Result<(Device, &'static str), JsValue> {
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
    let halo = model.halo();
    MODEL.with(|m| *m.borrow_mut() = Some(model));
    serde_json::to_string(&Ready {
        backend,
        card,
        halo,
    })
    .map_err(js_error)
}

/// Reads the model card from weight bytes without keeping the model (for the page's card):
/// `{card, summary}`, `summary` being [`mrisr::model::ModelCard::summary`]'s rows.
#[wasm_bindgen]
pub fn sr_model_card(weights: Vec<u8>) -> Result<String, JsValue> {
    let card = model::card_of(&weights)?;
    let summary = card.summary();
    serde_json::to_string(&serde_json::json!({ "card": card, "summary": summary }))
        .map_err(js_error)
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
    let mut loaded = MODEL
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
    let result = loaded.upscale(&input.vol, opts, &mut report).await;
    MODEL.with(|m| *m.borrow_mut() = Some(loaded));
    let out = result?;
    Ok(VolumeHandle::new(out))
}

/// A run split over several workers (the page's CPU path), step 1 of 3: the network's inputs
/// for `input` (upsampled, in the network's frame, normalised), on the lead worker: one view
/// for a generic model, two for one learned from a scan (its two in-plane orientations).
/// Returns the number of views; [`sr_view`] gives each. The page cuts each into overlapping
/// slabs for [`sr_network`] and gives the stitched outputs to [`sr_finish`] on the same
/// worker.
#[wasm_bindgen]
pub fn sr_prepare(input: VolumeHandle) -> Result<usize, JsValue> {
    let prepared = MODEL.with(|m| {
        let m = m.borrow();
        let loaded = m
            .as_ref()
            .ok_or_else(|| js_error("no model loaded (call sr_init first)"))?;
        loaded.prepare(&input.vol)
    })?;
    let views = prepared.views.len();
    PREPARED.with(|p| *p.borrow_mut() = Some((prepared, input.vol.meta.clone())));
    Ok(views)
}

/// View `i` of the prepared input (see [`sr_prepare`]).
#[wasm_bindgen]
pub fn sr_view(i: usize) -> Result<VolumeHandle, JsValue> {
    PREPARED.with(|p| {
        let p = p.borrow();
        let (prepared, _) = p
            .as_ref()
            .ok_or_else(|| js_error("nothing prepared (call sr_prepare first)"))?;
        let view = prepared
            .views
            .get(i)
            .ok_or_else(|| js_error(format!("no view {i}")))?;
        Ok(VolumeHandle::new(view.input.clone()))
    })
}

/// Step 2: the network alone on a slab of the prepared volume (CPU engine), with
/// `progress(done, total)` in voxels. Only the slab's planes `[k0, k1)` along k are wanted (the
/// rest is context, computed only as far as they need, and comes out as zeros).
#[wasm_bindgen]
pub fn sr_network(
    input: VolumeHandle,
    k0: usize,
    k1: usize,
    progress: js_sys::Function,
) -> Result<VolumeHandle, JsValue> {
    let mut report = |p: mrisr::tiles::Progress| -> bool {
        let _ = progress.call2(
            &JsValue::NULL,
            &(p.voxels_done as f64).into(),
            &(p.voxels_total as f64).into(),
        );
        true
    };
    MODEL
        .with(|m| {
            let m = m.borrow();
            let loaded = m
                .as_ref()
                .ok_or_else(|| js_error("no model loaded (call sr_init first)"))?;
            loaded.network(&input.vol, [k0, k1], &mut report)
        })
        .map(VolumeHandle::new)
}

/// Step 3: the stitched network outputs (one per view, in order) back in the scan's frame and
/// intensities.
#[wasm_bindgen]
pub fn sr_finish(outputs: Vec<VolumeHandle>) -> Result<VolumeHandle, JsValue> {
    let (prepared, meta) = PREPARED
        .with(|p| p.borrow_mut().take())
        .ok_or_else(|| js_error("nothing prepared (call sr_prepare first)"))?;
    let card = MODEL.with(|m| m.borrow().as_ref().map(|l| l.card().clone()));
    let card = card.ok_or_else(|| js_error("no model loaded (call sr_init first)"))?;
    if outputs.len() != prepared.views.len() {
        return Err(js_error(format!(
            "{} outputs for {} views",
            outputs.len(),
            prepared.views.len()
        )));
    }
    for (o, v) in outputs.iter().zip(&prepared.views) {
        if o.vol.dims != v.input.dims {
            return Err(js_error(format!(
                "the stitched output has {:?} voxels, the prepared input {:?}",
                o.vol.dims, v.input.dims
            )));
        }
    }
    let outputs: Vec<mrisr::Volume> = outputs.into_iter().map(|o| o.vol).collect();
    Ok(VolumeHandle::new(prepared.finish(&outputs, &card, &meta)))
}

/// The one place that calls into `mrisr::model` / `mrisr::engine` / `mrisr::pipeline`.
mod model {
    use burn::tensor::Device;
    use mrisr::engine::{ColumnPlan, CpuNet};
    use mrisr::infer::{Progress, TileOptions};
    use mrisr::model::ModelCard;
    use mrisr::pipeline::Network;
    use wasm_bindgen::JsValue;

    use super::RunOptions;
    use crate::lib_error;

    /// Plane buffers of the CPU engine per worker: a tab has less memory than a workstation.
    const CPU_MEMORY_BUDGET: usize = mrisr::engine::DEFAULT_MEMORY_BUDGET / 4;

    /// The network on the engine that runs it: burn on WebGPU, mrisr's CPU engine on the CPU
    /// (direct simd128 convolutions; several times faster than burn's CPU backend).
    pub struct Model {
        net: Network,
        card: ModelCard,
    }

    /// Reads the weights for `device`: the CPU engine when it is burn's CPU device. WebGPU
    /// tiles are sized per run, from the adapter's limits ([`Model::upscale`]).
    pub fn load(bytes: &[u8], device: &Device) -> Result<Model, JsValue> {
        let gpu = (*device != Device::flex()).then_some(device);
        let (net, card) =
            Network::load("weights", bytes, gpu, CPU_MEMORY_BUDGET, 1).map_err(lib_error)?;
        Ok(Model { net, card })
    }

    /// The model card of a weight file, checked against its tensors, without keeping them.
    pub fn card_of(bytes: &[u8]) -> Result<ModelCard, JsValue> {
        CpuNet::from_weight_file("weights", bytes)
            .map(|(_, card)| card)
            .map_err(lib_error)
    }

    impl Model {
        pub fn card_json(&self) -> serde_json::Value {
            serde_json::to_value(&self.card).unwrap_or_default()
        }

        pub fn card(&self) -> &ModelCard {
            &self.card
        }

        pub fn halo(&self) -> usize {
            self.card.net.receptive_radius()
        }

        pub fn prepare(&self, vol: &mrisr::Volume) -> Result<mrisr::pipeline::Prepared, JsValue> {
            mrisr::pipeline::prepare(&self.card, vol, None).map_err(lib_error)
        }

        /// The network on a prepared volume (or a slab of one, of which the planes `planes`
        /// along k are wanted), on the CPU engine.
        pub fn network(
            &self,
            vol: &mrisr::Volume,
            planes: [usize; 2],
            progress: &mut dyn FnMut(Progress) -> bool,
        ) -> Result<mrisr::Volume, JsValue> {
            let Network::Cpu { net, memory } = &self.net else {
                return Err(lib_error(mrisr::Error::Invalid(
                    "a split run needs the CPU engine (sr_init with \"cpu\")".into(),
                )));
            };
            let plan = ColumnPlan::for_budget(net, vol.dims, *memory);
            mrisr::engine::run_planes(net, vol, plan, planes, progress).map_err(lib_error)
        }

        pub async fn upscale(
            &mut self,
            vol: &mrisr::Volume,
            opts: RunOptions,
            progress: &mut dyn FnMut(usize, usize) -> bool,
        ) -> Result<mrisr::Volume, JsValue> {
            if let Network::Burn { tiles, .. } = &mut self.net {
                // The widest activation of a tile is `channels` floats per voxel; keep it (with
                // a factor 2 for the residual branch) inside the adapter's largest buffer.
                let per_voxel = 4 * 2 * self.card.net.channels.max(1);
                let budget = (opts.max_buffer_bytes.max(1.0) as usize / per_voxel).max(1);
                *tiles = TileOptions::for_net(&self.card.net, budget);
                if opts.tile > 0 {
                    tiles.core = opts.tile;
                }
                if opts.overlap > 0 {
                    tiles.halo = opts.overlap;
                }
            }
            let mut report = |p: Progress| progress(p.voxels_done, p.voxels_total);
            self.net
                .upscale(&self.card, vol, None, &mut report)
                .await
                .map_err(lib_error)
        }
    }
}
