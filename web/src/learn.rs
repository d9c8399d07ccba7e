//! "Learn from this scan" in the page: the scan's own task ([`learn_task`], cheap, on the page's
//! thread, to show the factor and the slice spacing it gives) and the learning itself
//! ([`sr_learn`], in a worker: `mrisr::adapt::learn::learn_async` on WebGPU or burn's CPU
//! device, posting progress after every step). The result is a weight file like any other: the worker that
//! runs the super-resolution loads it with `sr_init`.
//!
//! On the CPU the learning runs without yielding, so the page cancels it by terminating the worker
//! (nothing is lost: the scan stays in the page). Time is measured with JavaScript's clock
//! (`Date.now`): `std::time` panics on wasm32.

use mrisr::adapt::learn::{Settings, Step};
use mrisr::adapt::{self, Task};
use mrisr::degrade::SliceProfile;
use mrisr::scan::ScanGeometry;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::handle::VolumeHandle;
use crate::{js_error, lib_error};

/// What the page asks for (JSON); absent fields take the library's defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Options {
    /// Output slices per input slice (default: the task's).
    factor: Option<f64>,
    steps: Option<u64>,
    batch: Option<usize>,
    /// Square patch edge.
    patch: Option<usize>,
    seed: Option<u64>,
    /// Slice thickness (mm) when it differs from the spacing.
    thickness_mm: Option<f64>,
}

/// The scan's task in numbers, for the page's factor field.
#[derive(Serialize)]
struct TaskInfo {
    /// The factor asked for, or the default one.
    factor: f64,
    default_factor: f64,
    /// Voxel axis (0, 1, 2) of the thick slices.
    thick_axis: usize,
    slices: usize,
    slices_out: usize,
    spacing_mm: f64,
    spacing_out_mm: f64,
    /// "0.31 x 0.31 x 1.50 mm, slices along i, 1.50 mm thick (no gap)".
    geometry: String,
    /// Learning steps by default (the command's `--steps` default), for the Steps field.
    default_steps: u64,
}

fn task_for(
    vol: &mrisr::Volume,
    factor: Option<f64>,
    thickness_mm: Option<f64>,
) -> Result<Task, JsValue> {
    Task::for_scan(vol, factor, thickness_mm, SliceProfile::Box).map_err(lib_error)
}

/// The task of learning from `input` at `factor` (default: the task's own): JSON
/// `{factor, default_factor, thick_axis, slices, slices_out, spacing_mm, spacing_out_mm,
/// geometry, default_steps}`. Errors with the library's message on a volume with no thick
/// axis (nearly isotropic), one too small to learn from, or a factor out of range.
#[wasm_bindgen]
pub fn learn_task(input: &VolumeHandle, factor: Option<f64>) -> Result<String, JsValue> {
    let task = task_for(&input.vol, factor, None)?;
    let g = &task.geometry;
    let slices = input.vol.dims[g.thick_axis];
    let info = TaskInfo {
        factor: task.factor,
        default_factor: g.default_factor(),
        thick_axis: g.thick_axis,
        slices,
        slices_out: ScanGeometry::output_slices(slices, task.factor),
        spacing_mm: g.slice_spacing(),
        spacing_out_mm: task.output_spacing(slices),
        geometry: g.describe(),
        default_steps: mrisr::adapt::learn::Settings::default().steps,
    };
    serde_json::to_string(&info).map_err(js_error)
}

/// Learns a network from `input` (the scan, or a region of it) and returns its weight file
/// (safetensors, the card recording the series, factor, steps and pair loss). `options` is
/// JSON `{factor?, steps?, batch?, patch?, seed?, thickness_mm?}`; `start` is the page's
/// current generic model: its weights made planar start the learning when it has the `fast`
/// 3D shape, any other model (or none) means from scratch. `backend`: "cpu" (burn's CPU
/// device) or "webgpu". `progress(step, steps, loss)` is called after every step.
#[wasm_bindgen]
pub async fn sr_learn(
    input: VolumeHandle,
    options: String,
    start: Option<Vec<u8>>,
    backend: String,
    progress: js_sys::Function,
) -> Result<Vec<u8>, JsValue> {
    let opts: Options = serde_json::from_str(&options)
        .map_err(|e| js_error(format!("learning options {options:?}: {e}")))?;
    let task = task_for(&input.vol, opts.factor, opts.thickness_mm)?;
    let defaults = Settings::default();
    let settings = Settings {
        steps: opts.steps.unwrap_or(defaults.steps),
        batch: opts.batch.unwrap_or(defaults.batch),
        // The library shrinks it where a region's field of view cannot hold it.
        patch: opts.patch.map_or(defaults.patch, |p| [p, p]),
        seed: opts.seed.unwrap_or(defaults.seed),
        ..defaults
    };
    if settings.steps == 0 || settings.batch == 0 || settings.patch.contains(&0) {
        return Err(js_error(
            "learning needs at least one step, one patch per step and patches of at least one voxel",
        ));
    }
    // WebGPU (the page asks for it on a hardware adapter) or burn's CPU device; the loss is
    // read back asynchronously, as WebGPU in a browser requires.
    let (device, _) = crate::sr::device_for(&backend).await?;
    let init = match start.as_deref() {
        Some(bytes) => starting_weights(bytes)?,
        None => None,
    };
    let started = js_sys::Date::now();
    let mut report = |s: Step| -> bool {
        let _ = progress.call3(
            &JsValue::NULL,
            &(s.step as f64).into(),
            &(s.steps as f64).into(),
            &s.loss.into(),
        );
        true
    };
    let (net, mut adaptation) = adapt::learn::learn_async(
        &input.vol,
        &task,
        &settings,
        init.as_deref().map(|b| ("the page's model (planar)", b)),
        &device,
        &mut report,
    )
    .await
    .map_err(lib_error)?;
    adaptation.seconds = (js_sys::Date::now() - started) / 1000.0;
    adapt::learn::weight_file(&net, settings.net, adaptation).map_err(lib_error)
}

/// The generic weights made planar when `bytes` is a `fast`-shaped 3D model; `None` (from
/// scratch) for any other network, e.g. weights learned from a scan before.
fn starting_weights(bytes: &[u8]) -> Result<Option<Vec<u8>>, JsValue> {
    let name = "the page's model";
    let card = mrisr::model::card::read_card(name, bytes).map_err(lib_error)?;
    if !adapt::can_start_from(&card.net) {
        return Ok(None);
    }
    adapt::planar_from_generic(name, bytes)
        .map(Some)
        .map_err(lib_error)
}
