//! Reading and writing volumes: DICOM series (in and out) and NIfTI-1.

pub mod dicom;
pub mod nifti;
