//! JPEG 2000, JPEG-LS and HTJ2K against references: each compressed conformance file whose
//! uncompressed twin is in the data (pydicom's pixel references name the pairs: the lossy
//! files decode to their `_UNCI` twins, the lossless ones to the originals) must decode to the
//! same values, with the pure-Rust decoders the page uses and natively; spot values from
//! pydicom's references for the rest. Truncated or corrupt codestreams must give an error that
//! names the file, never a degraded image.

use std::path::{Path, PathBuf};

use dicom_core::value::{PixelFragmentSequence, Value};
use dicom_core::{DataElement, VR};
use dicom_dictionary_std::tags;
use mrisr::io::dicom::{DecodedImage, Decoders, DicomInput, decode_input_with};

use crate::support::data_dir;

fn file(rel: &str) -> PathBuf {
    data_dir().join("conformance/pydicom-data").join(rel)
}

fn decode(path: &Path, d: Decoders) -> Result<DecodedImage, String> {
    decode_input_with(&DicomInput::Path(path.to_path_buf()), d).map_err(|e| e.to_string())
}

/// Like `unwrap`, without printing a whole image on failure.
fn ok(r: Result<DecodedImage, String>) -> DecodedImage {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Largest absolute difference between two decodes of the same size.
fn max_diff(a: &DecodedImage, b: &DecodedImage) -> f32 {
    assert_eq!(
        (a.rows, a.cols, a.frames),
        (b.rows, b.cols, b.frames),
        "sizes differ"
    );
    a.data
        .iter()
        .zip(&b.data)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// (compressed, uncompressed twin): equal values expected (pydicom's pixel references).
const TWINS: &[(&str, &str)] = &[
    // JPEG 2000 lossless
    (
        "pydicom-test_files/MR_small_jp2klossless.dcm",
        "pydicom-test_files/MR_small.dcm",
    ),
    (
        "pydicom-data/emri_small_jpeg_2k_lossless.dcm",
        "pydicom-data/emri_small.dcm",
    ),
    ("pydicom-data/693_J2KR.dcm", "pydicom-data/693_UNCR.dcm"),
    ("pydicom-data/MR2_J2KR.dcm", "pydicom-data/MR2_UNCR.dcm"),
    ("pydicom-data/US1_J2KR.dcm", "pydicom-data/US1_UNCR.dcm"),
    // JPEG 2000 lossy: the `_UNCI` files hold the decoded lossy image
    (
        "pydicom-test_files/693_J2KI.dcm",
        "pydicom-data/693_UNCI.dcm",
    ),
    ("pydicom-data/MR2_J2KI.dcm", "pydicom-data/MR2_UNCI.dcm"),
    ("pydicom-data/US1_J2KI.dcm", "pydicom-data/US1_UNCI.dcm"),
    (
        "pydicom-test_files/SC_rgb_gdcm_KY.dcm",
        "pydicom-data/SC_rgb_gdcm2k_uncompressed.dcm",
    ),
    // JPEG-LS lossless
    (
        "pydicom-test_files/MR_small_jpeg_ls_lossless.dcm",
        "pydicom-test_files/MR_small.dcm",
    ),
    (
        "pydicom-data/emri_small_jpeg_ls_lossless.dcm",
        "pydicom-data/emri_small.dcm",
    ),
    // RLE (mrisr's own decoder), 8, 16 and 32 bits, grey and colour, one and two frames
    (
        "pydicom-test_files/MR_small_RLE.dcm",
        "pydicom-test_files/MR_small.dcm",
    ),
    (
        "pydicom-data/emri_small_RLE.dcm",
        "pydicom-data/emri_small.dcm",
    ),
    (
        "pydicom-data/OBXXXX1A_rle_2frame.dcm",
        "pydicom-data/OBXXXX1A_2frame.dcm",
    ),
    (
        "pydicom-test_files/SC_rgb_rle_2frame.dcm",
        "pydicom-data/SC_rgb_2frame.dcm",
    ),
    (
        "pydicom-test_files/SC_rgb_rle_16bit.dcm",
        "pydicom-data/SC_rgb_16bit.dcm",
    ),
    (
        "pydicom-test_files/SC_rgb_rle_32bit_2frame.dcm",
        "pydicom-data/SC_rgb_32bit_2frame.dcm",
    ),
    (
        "pydicom-test_files/rtdose_rle.dcm",
        "pydicom-test_files/rtdose.dcm",
    ),
];

/// RescaleSlope of a file (1 when absent).
fn slope(path: &Path) -> f32 {
    let obj = dicom_object::open_file(path).unwrap();
    obj.element(tags::RESCALE_SLOPE)
        .ok()
        .and_then(|e| e.to_float32().ok())
        .unwrap_or(1.0)
}

/// Lossy JPEG 2000 goes through a floating-point wavelet: hayro-jpeg2000 may round a sample
/// one stored step off where openjp2 (pydicom's reference) does not.
fn tolerance(path: &Path, lossy: bool, d: Decoders) -> f32 {
    if lossy && d == Decoders::PureRust {
        1.001 * slope(path)
    } else {
        0.0
    }
}

/// One-bit JPEG 2000 (segmentations), which only the pure-Rust path reads.
const ONE_BIT_TWINS: &[(&str, &str)] = &[
    ("pydicom-data/liver_j2k.dcm", "pydicom-data/liver.dcm"),
    (
        "pydicom-data/liver_nonbyte_aligned_j2k.dcm",
        "pydicom-data/liver_nonbyte_aligned.dcm",
    ),
];

#[test]
fn compressed_files_decode_to_their_uncompressed_twins() {
    let mut problems = Vec::new();
    let pairs = TWINS.iter().map(|p| (p, false));
    for (&(c, u), one_bit) in pairs.chain(ONE_BIT_TWINS.iter().map(|p| (p, true))) {
        let reference = ok(decode(&file(u), Decoders::Default));
        let lossy = c.contains("J2KI") || c.contains("_KY");
        let decoders: &[Decoders] = if one_bit {
            &[Decoders::PureRust]
        } else {
            &[Decoders::PureRust, Decoders::OpenJpeg]
        };
        for &d in decoders {
            match decode(&file(c), d) {
                Ok(img) => {
                    let diff = max_diff(&img, &reference);
                    println!("{c:<52} {d:?}: max |diff| {diff}");
                    if diff > tolerance(&file(c), lossy, d) {
                        problems.push(format!("{c} ({d:?}): max |diff| {diff} from {u}"));
                    }
                }
                Err(e) => problems.push(format!("{c} ({d:?}): {e}")),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// pydicom's spot values for files without a twin.
#[test]
fn spot_values_match_pydicom() {
    let at = |img: &DecodedImage, r: usize, c: usize| img.data[r * img.cols + c];
    for d in [Decoders::PureRust, Decoders::OpenJpeg] {
        // Codestream unsigned, PixelRepresentation 1: the dataset's sign wins.
        let img = ok(decode(
            &file("pydicom-test_files/J2K_pixelrep_mismatch.dcm"),
            d,
        ));
        assert_eq!(at(&img, 0, 0), -2000.0, "{d:?}");
        let col: Vec<f32> = (47..57).map(|r| at(&img, r, 279)).collect();
        assert_eq!(
            col,
            [
                621., 412., 138., -193., -520., -767., -907., -966., -988., -995.
            ],
            "{d:?}"
        );
        let col: Vec<f32> = (328..338).map(|r| at(&img, r, 106)).collect();
        assert_eq!(
            col,
            [
                -377., -121., 141., 383., 633., 910., 1198., 1455., 1638., 1732.
            ],
            "{d:?}"
        );
        // A JP2 file instead of a codestream, YBR_RCT: RGB (223,32,32), (255,0,0), grey 128.
        let img = ok(decode(&file("pydicom-test_files/GDCMJ2K_TextGBR.dcm"), d));
        let lum = |r: f32, g: f32, b: f32| 0.299 * r + 0.587 * g + 0.114 * b;
        assert!(
            (at(&img, 45, 140) - lum(223., 32., 32.)).abs() < 1e-3,
            "{d:?}"
        );
        assert!(
            (at(&img, 46, 140) - lum(255., 0., 0.)).abs() < 1e-3,
            "{d:?}"
        );
        assert!((at(&img, 350, 195) - 128.0).abs() < 1e-3, "{d:?}");
    }
    // JPEG-LS, signed 16-bit.
    let img = decode(
        &file("pydicom-test_files/MR_small_jpeg_ls_lossless.dcm"),
        Decoders::PureRust,
    )
    .unwrap();
    let col: Vec<f32> = (55..64).map(|r| at(&img, r, 35)).collect();
    assert_eq!(
        col,
        [170., 193., 191., 373., 1293., 2053., 1879., 1683., 1711.]
    );
}

/// The pure-Rust JPEG 2000 decoder against openjp2 on every JPEG 2000 file: it reads every
/// file openjp2 reads, to the same values (lossless) or within one stored step (lossy).
#[test]
fn pure_rust_jpeg2000_matches_openjp2_everywhere() {
    let base = data_dir().join("conformance");
    let manifest = std::fs::read_to_string(base.join("MANIFEST.tsv")).unwrap();
    let mut n = 0;
    let mut problems = Vec::new();
    for line in manifest.lines().skip(1) {
        let f: Vec<&str> = line.split('\t').collect();
        if !matches!(f[2], "1.2.840.10008.1.2.4.90" | "1.2.840.10008.1.2.4.91") {
            continue;
        }
        let path = base.join(f[0]);
        let (a, b) = match (
            decode(&path, Decoders::OpenJpeg),
            decode(&path, Decoders::PureRust),
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Ok(_), Err(e)) => {
                problems.push(format!(
                    "{}: openjp2 reads it, hayro-jpeg2000 not: {e}",
                    f[0]
                ));
                continue;
            }
            (Err(e), Ok(_)) => {
                println!("{:<72} only hayro-jpeg2000 reads it (openjp2: {e})", f[0]);
                continue;
            }
            (Err(e), Err(_)) => {
                println!("{:<72} neither reads it: {e}", f[0]);
                continue;
            }
        };
        n += 1;
        let diff = max_diff(&a, &b);
        let tol = tolerance(&path, f[2].ends_with(".91"), Decoders::PureRust);
        println!("{:<72} max |diff| {diff}", f[0]);
        if diff > tol {
            problems.push(format!("{}: max |diff| {diff}", f[0]));
        }
    }
    assert!(n >= 15, "only {n} files compared");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Rewrites a compressed file with its first fragment cut to `keep` bytes (a well-formed
/// DICOM file whose codestream is truncated), in memory.
fn with_fragment_cut(path: &Path, keep: impl Fn(usize) -> usize) -> DicomInput {
    let mut obj = dicom_object::open_file(path).unwrap();
    let pd = obj.element(tags::PIXEL_DATA).unwrap().clone();
    let Value::PixelSequence(seq) = pd.value() else {
        panic!("not encapsulated")
    };
    let mut frags: Vec<Vec<u8>> = seq.fragments().to_vec();
    let k = keep(frags[0].len());
    frags[0].truncate(k & !1);
    obj.put(DataElement::new(
        tags::PIXEL_DATA,
        VR::OB,
        Value::PixelSequence(PixelFragmentSequence::new_fragments(frags)),
    ));
    let mut bytes = Vec::new();
    obj.write_all(&mut bytes).unwrap();
    DicomInput::memory("cut/truncated.dcm", bytes)
}

#[test]
fn truncated_codestreams_are_errors_naming_the_file() {
    let files = [
        "pydicom-test_files/MR_small_jp2klossless.dcm",
        "pydicom-data/MR2_J2KR.dcm",
        "pydicom-data/MR2_J2KI.dcm",
        "pydicom-test_files/MR_small_jpeg_ls_lossless.dcm",
        "pydicom-data/JLSL_16_15_1_1F.dcm",
    ];
    for rel in files {
        for frac in [0.1, 0.5, 0.9, 0.99] {
            let input = with_fragment_cut(&file(rel), |n| (n as f64 * frac) as usize);
            for d in [Decoders::PureRust, Decoders::OpenJpeg] {
                match decode_input_with(&input, d) {
                    Ok(_) => panic!("{rel} cut to {frac}: decoded ({d:?})"),
                    Err(e) => {
                        let msg = e.to_string();
                        assert!(msg.contains("cut/truncated.dcm"), "{msg}");
                        println!("{rel} cut to {frac} ({d:?}): {msg}");
                    }
                }
            }
        }
    }
    // This file lacks only the sequence delimiter after its last fragment: every codestream is
    // whole, so it decodes to the original.
    let p = file("pydicom-data/emri_small_jpeg_2k_lossless_too_short.dcm");
    let reference = ok(decode(
        &file("pydicom-data/emri_small.dcm"),
        Decoders::Default,
    ));
    for d in [Decoders::PureRust, Decoders::OpenJpeg] {
        assert_eq!(max_diff(&ok(decode(&p, d)), &reference), 0.0);
    }
}

#[test]
fn jpeg_ls_colour_and_near_lossless() {
    // Interleave mode 0 (one scan per component) decodes; line / sample interleave is refused.
    let ilv0 = decode(&file("pydicom-data/JLSL_RGB_ILV0.dcm"), Decoders::PureRust).unwrap();
    assert_eq!((ilv0.rows, ilv0.cols), (256, 256));
    for f in [
        "pydicom-data/JLSL_RGB_ILV1.dcm",
        "pydicom-data/JLSL_RGB_ILV2.dcm",
    ] {
        let e = decode(&file(f), Decoders::PureRust).unwrap_err();
        assert!(e.contains("interleave") && e.contains("ILV"), "{e}");
    }
    // Near-lossless, 8 and 16 bits, grey.
    for f in [
        "pydicom-test_files/JPEGLSNearLossless_08.dcm",
        "pydicom-test_files/JPEGLSNearLossless_16.dcm",
    ] {
        let img = decode(&file(f), Decoders::PureRust).unwrap();
        assert!(img.data.iter().any(|&v| v != img.data[0]), "{f} is flat");
    }
}

#[test]
fn htj2k_decodes_natively_and_is_refused_clearly_in_pure_rust() {
    for f in [
        "pydicom-data/HTJ2KLossless_08_RGB.dcm",
        "pydicom-data/HTJ2K_08_RGB.dcm",
    ] {
        let native = decode(&file(f), Decoders::Default);
        assert!(native.is_ok(), "{f}: {native:?}");
        let e = decode(&file(f), Decoders::PureRust).unwrap_err();
        assert!(e.contains("HTJ2K") || e.contains("High-Throughput"), "{e}");
        assert!(e.contains(f.rsplit('/').next().unwrap()), "{e}");
    }
}

/// Decode times of the two JPEG 2000 decoders (`--ignored --nocapture`; numbers in the README).
#[test]
#[ignore]
fn time_jpeg2000_decoders() {
    for rel in [
        "pydicom-data/MR2_J2KR.dcm",
        "pydicom-data/MR2_J2KI.dcm",
        "pydicom-data/RG3_J2KR.dcm",
        "pydicom-data/RG1_J2KI.dcm",
        "pydicom-data/US1_J2KR.dcm",
    ] {
        for d in [Decoders::OpenJpeg, Decoders::PureRust] {
            let t = std::time::Instant::now();
            let n = 5;
            for _ in 0..n {
                ok(decode(&file(rel), d));
            }
            println!(
                "{rel:<32} {d:?}: {:.1} ms",
                t.elapsed().as_secs_f64() * 1e3 / n as f64
            );
        }
    }
}

/// Deterministic byte mutations of the pure-Rust decoders' input: errors are fine, panics are
/// not (the page runs with panic=abort, where a panic would kill the worker).
#[test]
fn mutated_codestreams_never_panic() {
    let mut panics = Vec::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for rel in [
        "pydicom-test_files/MR_small_jp2klossless.dcm",
        "pydicom-test_files/693_J2KI.dcm",
        "pydicom-test_files/MR_small_jpeg_ls_lossless.dcm",
        "pydicom-test_files/JPEGLSNearLossless_16.dcm",
    ] {
        let obj = dicom_object::open_file(file(rel)).unwrap();
        let Value::PixelSequence(seq) = obj.element(tags::PIXEL_DATA).unwrap().value().clone()
        else {
            panic!("not encapsulated")
        };
        let frag = seq.fragments()[0].clone();
        let mut n_err = 0;
        for round in 0..300 {
            let mut f = frag.clone();
            // 1 to 4 bytes replaced, mostly in the first 200 bytes (the headers).
            for _ in 0..1 + next() % 4 {
                let r = next() as usize;
                let at = if r.is_multiple_of(3) {
                    r % f.len()
                } else {
                    r % f.len().min(200)
                };
                f[at] = (next() >> 8) as u8;
            }
            if round % 5 == 0 {
                let cut = next() as usize % f.len();
                f.truncate(cut.max(2));
            }
            let mut o = obj.clone();
            o.put(DataElement::new(
                tags::PIXEL_DATA,
                VR::OB,
                Value::PixelSequence(PixelFragmentSequence::new_fragments(vec![f])),
            ));
            let mut bytes = Vec::new();
            o.write_all(&mut bytes).unwrap();
            let input = DicomInput::memory("mutated.dcm", bytes);
            if let Err(e) = decode_input_with(&input, Decoders::PureRust) {
                n_err += 1;
                let msg = e.to_string();
                if msg.contains("failed on malformed data") {
                    panics.push(format!("{rel} round {round}: {msg}"));
                }
            }
        }
        println!("{rel}: {n_err} of 300 mutations refused");
    }
    assert!(panics.is_empty(), "{}", panics.join("\n"));
}
