//! Bounded fuzzing in the normal test run (issue 12 item 5): deterministic, structure-aware
//! mutations of real slices (element lengths, VRs, sequence items and delimiters, pixel data,
//! transfer syntax UIDs, truncation), each scanned, loaded and decoded. Nothing may panic
//! (not even a panic that the reader's own guards would catch), and no single allocation may
//! exceed a cap however large the lengths a header declares: a counting allocator measures
//! the largest request made on the test's thread.
//!
//! The cargo-fuzz target (`mrisr/fuzz`, nightly only) explores further; this test is what CI
//! runs every time. The counting allocator is the whole test binary's: it only passes calls on
//! to the system allocator, noting sizes on the thread that runs a mutation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use crate::support::data_dir;
use mrisr::io::dicom::{DicomInput, decode_input, load_series, scan_inputs};

/// The largest single allocation any input may cause: far below the 2-4 GiB that a mutated
/// length declares, far above the largest real slice here (a 512 x 512 frame in f32 is 1 MiB).
const CAP: usize = 64 << 20;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Set from MRISR_FUZZ_TRACE: print where an allocation past the cap comes from.
static TRACE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn note(size: usize) {
    let _ = ARMED.try_with(|a| {
        if a.get() {
            let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
            if size > CAP && TRACE.load(std::sync::atomic::Ordering::Relaxed) {
                a.set(false);
                eprintln!(
                    "allocation of {size} bytes at\n{}",
                    std::backtrace::Backtrace::force_capture()
                );
                a.set(true);
            }
        }
    });
}

// SAFETY: every call is passed through to the system allocator unchanged; only sizes are noted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        note(new);
        unsafe { System.realloc(p, l, new) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// xorshift64*: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const VRS: [&[u8; 2]; 14] = [
    b"OB", b"OW", b"SQ", b"UN", b"UT", b"US", b"UL", b"FD", b"DS", b"IS", b"CS", b"LO", b"XX",
    b"\0\0",
];
const LONG_LENGTHS: [u32; 8] = [
    0xFFFF_FFFF,
    0xFFFF_FFFE,
    0x8000_0000, // 2 GB
    0x7FFF_FFFF,
    0x1000_0000,
    0,
    1,
    3,
];
const UIDS: [&str; 10] = [
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.5",
    "1.2.3.4.5.6.7.8.9",
];

/// Offsets of explicit-VR element headers (a tag followed by a known VR).
fn vr_offsets(b: &[u8]) -> Vec<usize> {
    let known: [&[u8; 2]; 20] = [
        b"AE", b"AS", b"CS", b"DA", b"DS", b"FD", b"FL", b"IS", b"LO", b"OB", b"OW", b"PN", b"SH",
        b"SQ", b"TM", b"UI", b"UL", b"UN", b"US", b"UT",
    ];
    (0..b.len().saturating_sub(8))
        .filter(|&i| known.iter().any(|v| &b[i + 4..i + 6] == *v) && b[i].is_multiple_of(2))
        .collect()
}

fn find_all(b: &[u8], pat: &[u8]) -> Vec<usize> {
    b.windows(pat.len())
        .enumerate()
        .filter(|(_, w)| *w == pat)
        .map(|(i, _)| i)
        .collect()
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    if at + 4 <= b.len() {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
}

/// The file with its (0002,0010) value replaced by `uid` (group length adjusted).
fn with_transfer_syntax(b: &[u8], uid: &str) -> Option<Vec<u8>> {
    let at = find_all(b, &[0x02, 0x00, 0x10, 0x00, b'U', b'I'])
        .into_iter()
        .next()?;
    let old = u16::from_le_bytes([b[at + 6], b[at + 7]]) as usize;
    let mut v = uid.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(0);
    }
    let mut out = b[..at + 6].to_vec();
    out.extend((v.len() as u16).to_le_bytes());
    out.extend(&v);
    out.extend(b.get(at + 8 + old..)?);
    // (0002,0000) UL group length, when present.
    if let Some(g) = find_all(&out[..at], &[0x02, 0x00, 0x00, 0x00, b'U', b'L']).first() {
        let len = u32::from_le_bytes(out[g + 8..g + 12].try_into().ok()?);
        let len = (len as i64 + v.len() as i64 - old as i64) as u32;
        put_u32(&mut out, g + 8, len);
    }
    Some(out)
}

/// One mutation of `b`, and what kind it was.
fn mutate(b: &[u8], rng: &mut Rng) -> (&'static str, Vec<u8>) {
    let mut m = b.to_vec();
    let headers = vr_offsets(b);
    let pixel = find_all(b, &[0xE0, 0x7F, 0x10, 0x00]).last().copied();
    match rng.below(7) {
        0 if !headers.is_empty() => {
            // A declared length: long form (OB, SQ...) or the 2-byte form.
            let at = *rng.pick(&headers);
            let long = matches!(&b[at + 4..at + 6], b"OB" | b"OW" | b"SQ" | b"UN" | b"UT");
            if long {
                put_u32(&mut m, at + 8, *rng.pick(&LONG_LENGTHS));
            } else {
                let v = *rng.pick(&[0xFFFFu16, 0xFFFE, 0, 1, 0x8000]);
                m[at + 6..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            ("length", m)
        }
        1 if !headers.is_empty() => {
            let at = *rng.pick(&headers);
            m[at + 4..at + 6].copy_from_slice(*rng.pick(&VRS));
            ("VR", m)
        }
        2 => {
            // Sequence structure: items and delimiters swapped, their lengths corrupted.
            let marks: Vec<usize> = [
                [0xFE, 0xFF, 0x00, 0xE0],
                [0xFE, 0xFF, 0x0D, 0xE0],
                [0xFE, 0xFF, 0xDD, 0xE0],
            ]
            .iter()
            .flat_map(|p| find_all(b, p))
            .collect();
            if marks.is_empty() {
                return ("truncation", b[..rng.below(b.len())].to_vec());
            }
            let at = *rng.pick(&marks);
            if rng.below(2) == 0 {
                m[at + 2] = *rng.pick(&[0x00u8, 0x0D, 0xDD, 0x11]);
            } else {
                put_u32(&mut m, at + 4, *rng.pick(&LONG_LENGTHS));
            }
            ("sequence", m)
        }
        3 if pixel.is_some() => {
            // Pixel data: its length, or bytes of its value (codestream markers included).
            let at = pixel.unwrap_or(0);
            if rng.below(3) == 0 {
                put_u32(&mut m, at + 8, *rng.pick(&LONG_LENGTHS));
            } else {
                for _ in 0..1 + rng.below(8) {
                    let i = at + 12 + rng.below(b.len().saturating_sub(at + 12).min(4096));
                    if i < m.len() {
                        m[i] = rng.next() as u8;
                    }
                }
            }
            ("pixel data", m)
        }
        4 => match with_transfer_syntax(b, rng.pick::<&str>(&UIDS)) {
            Some(m) => ("transfer syntax", m),
            None => ("truncation", b[..rng.below(b.len())].to_vec()),
        },
        5 => ("truncation", b[..rng.below(b.len())].to_vec()),
        _ => {
            // A few random bytes in the header region.
            let end = pixel.unwrap_or(b.len()).max(1);
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(end);
                m[i] = rng.next() as u8;
            }
            ("header bytes", m)
        }
    }
}

/// Scans, loads and decodes one input on this thread; returns (largest allocation, panics).
fn exercise(name: &str, bytes: Vec<u8>) -> (usize, usize) {
    let input = DicomInput::memory(name, bytes);
    LARGEST.with(|m| m.set(0));
    PANICS.with(|p| p.set(0));
    ARMED.with(|a| a.set(true));
    let escaped = std::panic::catch_unwind(|| {
        let report = scan_inputs(vec![input.clone()]);
        for s in report.series.iter().filter(|s| s.problem.is_none()) {
            let _ = load_series(s);
        }
        let _ = decode_input(&input);
    })
    .is_err();
    ARMED.with(|a| a.set(false));
    (
        LARGEST.with(Cell::get),
        PANICS.with(Cell::get) + usize::from(escaped),
    )
}

#[test]
fn mutated_real_slices_never_panic_and_never_allocate_past_the_cap() {
    // Count panics on this thread, also those the reader's guards catch.
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if ARMED.with(Cell::get) {
            PANICS.with(|p| p.set(p.get() + 1));
        } else {
            default(info);
        }
    }));
    TRACE.store(
        std::env::var_os("MRISR_FUZZ_TRACE").is_some(),
        std::sync::atomic::Ordering::Relaxed,
    );
    let conf = data_dir().join("conformance/pydicom-data");
    let files: Vec<(String, Vec<u8>)> = [
        "pydicom-test_files/MR_small.dcm",
        "pydicom-test_files/MR_small_implicit.dcm",
        "pydicom-test_files/MR_small_bigendian.dcm",
        "pydicom-test_files/MR_small_jp2klossless.dcm",
        "pydicom-test_files/MR_small_jpeg_ls_lossless.dcm",
        "pydicom-test_files/MR_small_RLE.dcm",
        "pydicom-test_files/image_dfl.dcm",
        "pydicom-test_files/JPEG2000.dcm",
        "pydicom-data/emri_small_jpeg_2k_lossless.dcm",
    ]
    .iter()
    .map(|p| conf.join(p))
    .chain([data_dir().join("dicom/pykneer_subject01_DESS_echo1/IM-0001-0041-0001.dcm")])
    .map(|p: std::path::PathBuf| {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        (
            name,
            std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
        )
    })
    .collect();
    // The unmutated files decode (so the mutations start from something that works).
    for (name, b) in &files {
        decode_input(&DicomInput::memory(name.as_str(), b.clone()))
            .unwrap_or_else(|e| panic!("{name} does not decode before mutation: {e}"));
    }
    let per_file: usize = std::env::var("MRISR_FUZZ_PER_FILE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let mut slowest = (std::time::Duration::ZERO, String::new());
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut failures = Vec::new();
    let mut largest = (0usize, String::new());
    let mut kinds: std::collections::BTreeMap<&str, usize> = Default::default();
    for (name, b) in &files {
        for n in 0..per_file {
            let (kind, m) = mutate(b, &mut rng);
            *kinds.entry(kind).or_default() += 1;
            let label = format!("{name} mutation {n} ({kind})");
            let t = std::time::Instant::now();
            let (big, panics) = exercise(&label, m.clone());
            if t.elapsed() > slowest.0 {
                slowest = (t.elapsed(), label.clone());
            }
            let keep = || {
                let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("fuzz-{n}-{name}"));
                let _ = std::fs::write(&p, &m);
                p.display().to_string()
            };
            if panics > 0 {
                failures.push(format!(
                    "{label}: {panics} panic(s), input kept in {}",
                    keep()
                ));
            }
            if big > CAP {
                failures.push(format!(
                    "{label}: an allocation of {big} bytes (cap {CAP}), input kept in {}",
                    keep()
                ));
            }
            if big > largest.0 {
                largest = (big, label);
            }
        }
    }
    let _ = std::panic::take_hook();
    println!(
        "{} mutations of {} real files: {kinds:?}; largest allocation {} bytes ({}); slowest {:?} ({})",
        per_file * files.len(),
        files.len(),
        largest.0,
        largest.1,
        slowest.0,
        slowest.1
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Decodes the inputs a failed run kept (MRISR_FUZZ_REPLAY: a folder), printing each panic's
/// location: `cargo test -p mrisr --test integration dicom_fuzz::replay -- --ignored --nocapture`.
#[test]
#[ignore]
fn replay() {
    let Some(dir) = std::env::var_os("MRISR_FUZZ_REPLAY") else {
        return;
    };
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        eprintln!("== {}", p.display());
        TRACE.store(true, std::sync::atomic::Ordering::Relaxed);
        let (big, panics) = exercise(&p.display().to_string(), std::fs::read(&p).unwrap());
        eprintln!("-> largest allocation {big}, {panics} panic(s)");
    }
}

/// A slice whose Pixel Data says it holds 2 GB: it scans (a scan stops before the pixel data),
/// and loading it fails with a message naming the file and the length, having reserved
/// nothing near that size. The page shows the same message (tests/e2e).
#[test]
fn a_two_gigabyte_pixel_data_element_is_refused_by_name() {
    let knee = data_dir().join("dicom/pykneer_subject01_DESS_echo1/IM-0001-0041-0001.dcm");
    let mut b = std::fs::read(knee).unwrap();
    let at = find_all(&b, &[0xE0, 0x7F, 0x10, 0x00, b'O'])
        .pop()
        .expect("a Pixel Data header");
    put_u32(&mut b, at + 8, 0x8000_0000);
    let input = DicomInput::memory("declares-2GB.dcm", b);
    let report = scan_inputs(vec![input.clone()]);
    assert_eq!(report.series.len(), 1, "{:?}", report.skipped);
    ARMED.with(|a| a.set(true));
    LARGEST.with(|m| m.set(0));
    let err = load_series(&report.series[0]).unwrap_err().to_string();
    let e2 = decode_input(&input).unwrap_err().to_string();
    ARMED.with(|a| a.set(false));
    for e in [&err, &e2] {
        assert!(
            e.contains("declares-2GB.dcm") && e.contains("declares 2147483648 bytes"),
            "{e}"
        );
    }
    let big = LARGEST.with(Cell::get);
    assert!(big <= CAP, "an allocation of {big} bytes");
}
