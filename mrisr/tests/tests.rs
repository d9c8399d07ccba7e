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
mod dicom_dcm2niix;
mod dicom_derived;
mod dicom_fuzz;
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

/// A file added under tests/ without its `mod` line here would never be compiled or run
/// (Cargo.toml has `autotests = false`): refuse that.
#[test]
fn every_test_file_is_a_module_of_this_binary() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let this = std::fs::read_to_string(dir.join("tests.rs")).unwrap();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "rs")
            && stem != "tests"
            && !this.contains(&format!("mod {stem};"))
        {
            missing.push(stem);
        }
    }
    assert!(
        missing.is_empty(),
        "tests/{{{}}}.rs: add `mod NAME;` to tests/tests.rs, or they never run",
        missing.join(",")
    );
}
