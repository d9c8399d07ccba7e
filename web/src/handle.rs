//! A volume kept on the Rust side of one wasm instance (page or worker).
//!
//! Page and workers each run their own instance, so a volume crosses between them as plain
//! parts (`dims`, `spacing`, `affine`, voxels as a transferable `Float32Array`, metadata as JSON):
//! [`VolumeHandle::to_parts`] on one side, [`VolumeHandle::from_parts`] on the other.

use mrisr::view::robust_range;
use mrisr::{Metadata, Volume};
use serde::Serialize;
use wasm_bindgen::prelude::*;

use crate::js_error;

#[wasm_bindgen]
pub struct VolumeHandle {
    pub(crate) vol: Volume,
}

impl VolumeHandle {
    pub(crate) fn new(vol: Volume) -> Self {
        Self { vol }
    }
}

/// What the page shows about a volume and needs to lay it out.
#[derive(Serialize)]
struct Info<'a> {
    description: &'a str,
    source: &'a str,
    dims: [usize; 3],
    spacing: [f64; 3],
    affine: [[f64; 4]; 4],
    min: f32,
    max: f32,
    /// Robust display range (0.5th and 99.5th percentile), the "Auto" window.
    p_lo: f32,
    p_hi: f32,
    from_dicom: bool,
}

#[wasm_bindgen]
impl VolumeHandle {
    /// Rebuilds a volume from the parts another instance made with [`VolumeHandle::to_parts`].
    #[wasm_bindgen(js_name = fromParts)]
    pub fn from_parts(
        dims: Vec<u32>,
        spacing: Vec<f64>,
        affine: Vec<f64>,
        data: Vec<f32>,
        meta_json: &str,
    ) -> Result<VolumeHandle, JsValue> {
        if dims.len() != 3 || spacing.len() != 3 || affine.len() != 16 {
            return Err(js_error(
                "volume parts: need 3 dims, 3 spacings and 16 affine values",
            ));
        }
        let dims = [dims[0] as usize, dims[1] as usize, dims[2] as usize];
        if dims.iter().product::<usize>() != data.len() {
            return Err(js_error(format!(
                "volume parts: {} voxels do not fill {}x{}x{}",
                data.len(),
                dims[0],
                dims[1],
                dims[2]
            )));
        }
        let meta: Metadata = serde_json::from_str(meta_json)
            .map_err(|e| js_error(format!("volume parts: metadata: {e}")))?;
        let affine = std::array::from_fn(|r| std::array::from_fn(|c| affine[r * 4 + c]));
        Ok(VolumeHandle::new(Volume {
            dims,
            spacing: [spacing[0], spacing[1], spacing[2]],
            affine,
            data,
            meta,
        }))
    }

    /// `{dims, spacing, affine (16, row-major), data: Float32Array (a copy), meta (JSON)}`.
    #[wasm_bindgen(js_name = toParts)]
    pub fn to_parts(&self) -> Result<JsValue, JsValue> {
        let v = &self.vol;
        let obj = js_sys::Object::new();
        let set = |k: &str, val: JsValue| js_sys::Reflect::set(&obj, &k.into(), &val).map(|_| ());
        let dims: Vec<u32> = v.dims.iter().map(|&d| d as u32).collect();
        set("dims", js_sys::Uint32Array::from(&dims[..]).into())?;
        set("spacing", js_sys::Float64Array::from(&v.spacing[..]).into())?;
        let aff: Vec<f64> = v.affine.iter().flatten().copied().collect();
        set("affine", js_sys::Float64Array::from(&aff[..]).into())?;
        set("data", js_sys::Float32Array::from(&v.data[..]).into())?;
        let meta = serde_json::to_string(&v.meta).map_err(js_error)?;
        set("meta", meta.into())?;
        Ok(obj.into())
    }

    /// Description, geometry, value range and the robust display range, as JSON.
    pub fn info(&self) -> String {
        let v = &self.vol;
        let (min, max) = v.min_max();
        let (p_lo, p_hi) = robust_range(&v.data);
        serde_json::to_string(&Info {
            description: &v.meta.description,
            source: &v.meta.source,
            dims: v.dims,
            spacing: v.spacing,
            affine: v.affine,
            min,
            max,
            p_lo,
            p_hi,
            from_dicom: v.meta.dicom.is_some(),
        })
        .expect("info serialises")
    }

    /// The voxel value at `(i, j, k)`, or NaN outside the volume.
    pub fn value(&self, i: i32, j: i32, k: i32) -> f32 {
        let v = &self.vol;
        let ijk = [i, j, k];
        if (0..3).any(|a| ijk[a] < 0 || ijk[a] as usize >= v.dims[a]) {
            return f32::NAN;
        }
        v.get(i as usize, j as usize, k as usize)
    }

    /// RAS+ mm of voxel `(i, j, k)` (fractional allowed): `[x, y, z]`.
    pub fn world(&self, i: f64, j: f64, k: f64) -> Vec<f64> {
        self.vol.world([i, j, k]).to_vec()
    }

    /// Voxel coordinates (fractional) of RAS+ point `(x, y, z)`; NaNs if the affine is singular.
    pub fn voxel(&self, x: f64, y: f64, z: f64) -> Vec<f64> {
        self.vol
            .voxel([x, y, z])
            .map_or(vec![f64::NAN; 3], |ijk| ijk.to_vec())
    }

    /// The sub-volume `start .. start + size` (clamped to the volume), in the same patient space.
    pub fn crop(&self, start: Vec<u32>, size: Vec<u32>) -> Result<VolumeHandle, JsValue> {
        if start.len() != 3 || size.len() != 3 {
            return Err(js_error("crop: need 3 start and 3 size values"));
        }
        let v = &self.vol;
        let s: [usize; 3] = std::array::from_fn(|a| (start[a] as usize).min(v.dims[a] - 1));
        let n: [usize; 3] = std::array::from_fn(|a| (size[a] as usize).clamp(1, v.dims[a] - s[a]));
        Ok(VolumeHandle::new(mrisr::volume::crop(v, s, n)))
    }
}
