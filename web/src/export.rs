//! Files a person takes home: the (derived) volume as NIfTI with its BIDS sidecar, or as a
//! DICOM series in a zip.

use mrisr::io::bids;
use mrisr::io::dicom::WriteOptions;
use mrisr::io::nifti::write_nifti_bytes;
use mrisr::io::zip::{DateTime, date_time, dicom_series_zip};
use mrisr::model::ModelCard;
use wasm_bindgen::prelude::*;

use crate::handle::VolumeHandle;
use crate::{js_error, lib_error};

#[wasm_bindgen]
impl VolumeHandle {
    /// The volume as a float32 NIfTI-1 file (`.nii`, or `.nii.gz` when `gzip`).
    pub fn nifti(&self, gzip: bool) -> Result<Vec<u8>, JsValue> {
        write_nifti_bytes(&self.vol, gzip).map_err(lib_error)
    }

    /// The BIDS sidecar (the `.json` dcm2niix writes beside a NIfTI, as the `mrisr` command
    /// does): the source series' fields and, for a result, what mrisr did: `card_json` (the
    /// model card the page ran) and `input_spacing` (mm) of the volume it was given.
    pub fn sidecar(
        &self,
        card_json: Option<String>,
        input_spacing: Option<Vec<f64>>,
    ) -> Result<String, JsValue> {
        let done = match (card_json, input_spacing) {
            (Some(card), Some(sp)) if sp.len() == 3 => {
                let card: ModelCard = serde_json::from_str(&card)
                    .map_err(|e| js_error(format!("sidecar: model card: {e}")))?;
                Some(bids::done_with_spacing(
                    &card,
                    [sp[0], sp[1], sp[2]],
                    self.vol.spacing,
                ))
            }
            _ => None,
        };
        serde_json::to_string_pretty(&bids::sidecar(&self.vol, done)).map_err(js_error)
    }

    /// The volume as a new DICOM series (one file per slice) in an uncompressed zip.
    ///
    /// `description_suffix` is appended to the source SeriesDescription; `seed` (16 random bytes
    /// from `crypto.getRandomValues`) makes the new UIDs unique. Files are named
    /// `<folder>/IM00001.dcm`, ...
    #[wasm_bindgen(js_name = dicomZip)]
    pub fn dicom_zip(
        &self,
        folder: &str,
        description_suffix: &str,
        seed: Vec<u8>,
    ) -> Result<Vec<u8>, JsValue> {
        let uid_seed = (seed.len() >= 16)
            .then(|| u128::from_le_bytes(seed[..16].try_into().expect("16 bytes")));
        let opts = WriteOptions {
            description_suffix: description_suffix.to_string(),
            series_number: None,
            uid_seed,
        };
        dicom_series_zip(&self.vol, &opts, folder, now()).map_err(lib_error)
    }
}

/// The local time now, as a zip timestamp.
fn now() -> DateTime {
    #[cfg(target_arch = "wasm32")]
    {
        let d = js_sys::Date::new_0();
        date_time(
            d.get_full_year(),
            d.get_month() + 1,
            d.get_date(),
            d.get_hours(),
            d.get_minutes(),
            d.get_seconds(),
        )
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        date_time(1980, 1, 1, 0, 0, 0)
    }
}
