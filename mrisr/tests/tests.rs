//! The integration tests, one binary (as ripgrep's tests/tests.rs): each module is one subject,
//! `support` holds what they share. Run one subject with `cargo test -p mrisr --test integration
//! dicom_conformance`.

mod support;

#[cfg(feature = "nn")]
mod adapt_learn;
#[cfg(feature = "cli")]
mod cli_upscale;
mod degrade_acquisition;
mod dicom_codecs;
mod dicom_conformance;
mod dicom_derived;
mod dicom_knee;
mod dicom_qa;
mod dicom_robustness;
mod dicom_roundtrip;
mod dicom_scaling;
mod metrics_quality;
#[cfg(feature = "nn")]
mod model_weights;
mod nifti_io;
mod resample_accuracy;
