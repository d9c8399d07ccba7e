//! Arbitrary bytes through the in-memory scan, series assembly and decoding: nothing may panic
//! (errors are fine). Run: `cargo +nightly fuzz run dicom_scan` in mrisr/.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mrisr::io::dicom::{DicomInput, decode_input, load_series, scan_inputs};

fuzz_target!(|data: &[u8]| {
    // One file as given, and the same bytes behind a standard preamble + "DICM".
    let mut with_preamble = vec![0u8; 128];
    with_preamble.extend_from_slice(b"DICM");
    with_preamble.extend_from_slice(data);
    for bytes in [data.to_vec(), with_preamble] {
        let input = DicomInput::memory("fuzz.dcm", bytes);
        let _ = decode_input(&input);
        let report = scan_inputs(vec![input]);
        for s in &report.series {
            let _ = load_series(s);
        }
    }
});
