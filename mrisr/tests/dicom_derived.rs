//! A derived series names where it comes from and how to show it: one WindowCenter/Width for
//! every slice, the source series and all its images in ReferencedSeriesSequence, and in each
//! slice's SourceImageSequence the source image it lies on (or the two it lies between).

use std::collections::{HashMap, HashSet};

use dicom_dictionary_std::tags;
use dicom_object::{DefaultDicomObject, InMemDicomObject, OpenFileOptions};
use mrisr::io::dicom::{
    DicomInput, WriteOptions, load_series, scan_dir, scan_inputs, write_series,
};
use mrisr::{Affine, Volume};

use crate::support::data_dir;

fn parse(bytes: &[u8]) -> DefaultDicomObject {
    OpenFileOptions::new()
        .from_reader(&bytes[128..])
        .unwrap_or_else(|e| panic!("derived file does not parse: {e}"))
}

fn text(obj: &InMemDicomObject, tag: dicom_core::Tag) -> String {
    obj.element(tag)
        .unwrap_or_else(|_| panic!("{tag} missing"))
        .to_str()
        .unwrap()
        .trim_end_matches(['\0', ' '])
        .to_string()
}

fn items(obj: &InMemDicomObject, tag: dicom_core::Tag) -> Vec<InMemDicomObject> {
    obj.element(tag)
        .ok()
        .and_then(|e| e.items())
        .map(|v| v.to_vec())
        .unwrap_or_default()
}

fn ipp(obj: &InMemDicomObject) -> [f64; 3] {
    let v = obj
        .element(tags::IMAGE_POSITION_PATIENT)
        .unwrap()
        .to_multi_float64()
        .unwrap();
    [v[0], v[1], v[2]]
}

/// A 2D axial-ish series on disk-free memory: written once (no source), read back, so the
/// volume's source images are those files.
fn source_series() -> (Vec<(String, Vec<u8>)>, Volume) {
    let dims = [24, 20, 6];
    let n: usize = dims.iter().product();
    let data = (0..n).map(|i| (i % 97) as f32 * 3.0 + 10.0).collect();
    let mut v = Volume::from_data(dims, [1.0; 3], data);
    // Left-handed (as 2D DICOM reads), 0.8 x 0.9 mm pixels, 3 mm slices, slightly oblique.
    let affine: Affine = [
        [-0.8, 0.0, 0.0, 40.0],
        [0.0, 0.9, 0.1, -20.0],
        [0.0, 0.0, -3.0, 15.0],
        [0.0, 0.0, 0.0, 1.0],
    ];
    v.affine = affine;
    v.spacing = Volume::spacing_from_affine(&affine);
    let files = write_series(&v, &WriteOptions::default()).unwrap();
    let report = scan_inputs(
        files
            .iter()
            .map(|(n, b)| DicomInput::memory(n.clone(), b.clone()))
            .collect(),
    );
    let vol = load_series(&report.series[0]).unwrap().remove(0);
    (files, vol)
}

/// (SOP instance UID -> ImagePositionPatient) of a series' files.
fn positions(files: &[(String, Vec<u8>)]) -> HashMap<String, [f64; 3]> {
    files
        .iter()
        .map(|(_, b)| {
            let o = parse(b);
            (text(&o, tags::SOP_INSTANCE_UID), ipp(&o))
        })
        .collect()
}

/// Distance between the planes of slices at `p` and `q` (orientation of `o`).
fn plane_distance(o: &InMemDicomObject, p: [f64; 3], q: [f64; 3]) -> f64 {
    let v = o
        .element(tags::IMAGE_ORIENTATION_PATIENT)
        .unwrap()
        .to_multi_float64()
        .unwrap();
    let n = [
        v[1] * v[5] - v[2] * v[4],
        v[2] * v[3] - v[0] * v[5],
        v[0] * v[4] - v[1] * v[3],
    ];
    let len = (n[0] * n[0] + n[1] * n[1] + n[2] * n[2]).sqrt();
    ((p[0] - q[0]) * n[0] + (p[1] - q[1]) * n[1] + (p[2] - q[2]) * n[2]).abs() / len
}

fn window(o: &InMemDicomObject) -> (String, String) {
    (text(o, tags::WINDOW_CENTER), text(o, tags::WINDOW_WIDTH))
}

#[test]
fn derived_slices_reference_the_source_images_they_lie_on() {
    let (src_files, vol) = source_series();
    let src_pos = positions(&src_files);
    let src_series = text(&parse(&src_files[0].1), tags::SERIES_INSTANCE_UID);
    let out = write_series(&vol, &WriteOptions::default()).unwrap();
    let first = parse(&out[0].1);
    for (_, b) in &out {
        let o = parse(b);
        // One window for the series.
        assert_eq!(window(&o), window(&first));
        // The source series and all its images.
        let series = items(&o, tags::REFERENCED_SERIES_SEQUENCE);
        assert_eq!(series.len(), 1);
        assert_eq!(text(&series[0], tags::SERIES_INSTANCE_UID), src_series);
        let listed: HashSet<String> = items(&series[0], tags::REFERENCED_INSTANCE_SEQUENCE)
            .iter()
            .map(|i| text(i, tags::REFERENCED_SOP_INSTANCE_UID))
            .collect();
        assert_eq!(listed, src_pos.keys().cloned().collect());
        // Same grid: each slice comes from the source image at its position.
        let refs = items(&o, tags::SOURCE_IMAGE_SEQUENCE);
        assert_eq!(refs.len(), 1);
        let uid = text(&refs[0], tags::REFERENCED_SOP_INSTANCE_UID);
        let p = src_pos[&uid];
        let q = ipp(&o);
        let d = plane_distance(&o, p, q);
        assert!(d < 1e-3, "slice at {q:?} references the image at {p:?}");
        assert_eq!(
            text(&refs[0], tags::REFERENCED_SOP_CLASS_UID),
            "1.2.840.10008.5.1.4.1.1.4"
        );
    }
}

#[test]
fn interpolated_slices_reference_both_neighbours() {
    let (src_files, vol) = source_series();
    let src_pos = positions(&src_files);
    // Twice as many slices: even ones on the source planes, odd ones half-way.
    let [ni, nj, nk] = vol.dims;
    let plane = ni * nj;
    let mut data = Vec::with_capacity(plane * (2 * nk - 1));
    for k in 0..2 * nk - 1 {
        let s = &vol.data[(k / 2) * plane..(k / 2 + 1) * plane];
        data.extend_from_slice(s);
    }
    let mut fine = Volume::from_data([ni, nj, 2 * nk - 1], [1.0; 3], data);
    fine.affine = vol.affine;
    for r in 0..3 {
        fine.affine[r][2] /= 2.0;
    }
    fine.spacing = Volume::spacing_from_affine(&fine.affine);
    fine.meta = vol.meta.clone();
    let out = write_series(&fine, &WriteOptions::default()).unwrap();
    assert_eq!(out.len(), 2 * nk - 1);
    let mut twos = 0;
    for (_, b) in &out {
        let o = parse(b);
        let q = ipp(&o);
        let refs: Vec<[f64; 3]> = items(&o, tags::SOURCE_IMAGE_SEQUENCE)
            .iter()
            .map(|r| src_pos[&text(r, tags::REFERENCED_SOP_INSTANCE_UID)])
            .collect();
        match refs.len() {
            1 => assert!(plane_distance(&o, refs[0], q) < 1e-3),
            2 => {
                twos += 1;
                // Half a source slice (about 1.5 mm) from each.
                for p in refs {
                    let d = plane_distance(&o, p, q);
                    assert!((d - vol.spacing[2] / 2.0).abs() < 0.1, "{d}");
                }
            }
            n => panic!("{n} source images"),
        }
    }
    assert_eq!(twos, nk - 1);
}

#[test]
fn knee_derived_series_references_its_80_images() {
    let dir = data_dir().join("dicom/pykneer_subject01_DESS_echo1");
    let report = scan_dir(&dir).unwrap();
    let knee = load_series(&report.series[0]).unwrap().remove(0);
    let src: HashSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            let o = dicom_object::open_file(&p).ok()?;
            Some(text(&o, tags::SOP_INSTANCE_UID))
        })
        .collect();
    assert_eq!(src.len(), 80);
    let out = write_series(&knee, &WriteOptions::default()).unwrap();
    let first = parse(&out[0].1);
    let (wc, ww) = window(&first);
    let (lo, hi) = knee.min_max();
    let (wc, ww): (f64, f64) = (wc.parse().unwrap(), ww.parse().unwrap());
    assert!(wc > lo as f64 && wc < hi as f64 && ww >= 1.0 && ww <= (hi - lo) as f64);
    println!("knee: window {wc} / {ww} (values {lo}..{hi})");
    for (_, b) in &out {
        let o = parse(b);
        assert_eq!(window(&o), window(&first));
        let series = items(&o, tags::REFERENCED_SERIES_SEQUENCE);
        let listed: HashSet<String> = items(&series[0], tags::REFERENCED_INSTANCE_SEQUENCE)
            .iter()
            .map(|i| text(i, tags::REFERENCED_SOP_INSTANCE_UID))
            .collect();
        assert_eq!(listed, src);
        let refs = items(&o, tags::SOURCE_IMAGE_SEQUENCE);
        assert!((1..=2).contains(&refs.len()));
        for r in refs {
            assert!(src.contains(&text(&r, tags::REFERENCED_SOP_INSTANCE_UID)));
        }
    }
    // And the derived series still reads back.
    let back = scan_inputs(
        out.into_iter()
            .map(|(n, b)| DicomInput::memory(n, b))
            .collect(),
    );
    assert_eq!(back.series.len(), 1);
    assert_eq!(load_series(&back.series[0]).unwrap()[0].data, knee.data);
}

#[test]
fn a_volume_without_dicom_source_has_no_references() {
    let v = Volume::from_data([4, 3, 2], [1.0; 3], (0..24).map(|i| i as f32).collect());
    for (_, b) in write_series(&v, &WriteOptions::default()).unwrap() {
        let o = parse(&b);
        assert!(o.element(tags::SOURCE_IMAGE_SEQUENCE).is_err());
        assert!(o.element(tags::REFERENCED_SERIES_SEQUENCE).is_err());
        assert!(o.element(tags::WINDOW_CENTER).is_ok());
    }
}
