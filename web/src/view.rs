//! The three orthogonal planes of a volume for the page's canvases: the layouts and pixels
//! come from `mrisr::view` (radiological convention, tested natively there).

use mrisr::view::{PlaneLayout, plane_layout, render_rgba};
use wasm_bindgen::prelude::*;

use crate::handle::VolumeHandle;
use crate::js_error;

#[wasm_bindgen]
impl VolumeHandle {
    /// The layouts of the axial, coronal and sagittal planes, as a JSON array.
    pub fn layout(&self) -> String {
        let v = &self.vol;
        let l: Vec<PlaneLayout> = (0..3)
            .map(|p| plane_layout(v.dims, v.spacing, &v.affine, p))
            .collect();
        serde_json::to_string(&l).expect("layout serialises")
    }

    /// RGBA pixels (`width * height * 4`) of slice `slice` of plane `plane`, ready for `ImageData`.
    pub fn render(
        &self,
        plane: usize,
        slice: usize,
        center: f32,
        width: f32,
    ) -> Result<js_sys::Uint8ClampedArray, JsValue> {
        if plane > 2 {
            return Err(js_error(format!(
                "plane {plane}: expected 0 (axial), 1 (coronal) or 2 (sagittal)"
            )));
        }
        let v = &self.vol;
        let l = plane_layout(v.dims, v.spacing, &v.affine, plane);
        let px = render_rgba(v, &l, slice, center, width);
        Ok(js_sys::Uint8ClampedArray::from(&px[..]))
    }
}
