//! Training data: volumes from folders of DICOM series and NIfTI files, grouped by subject,
//! split so no subject is on two sides, turned into (degraded input, target) pairs and sampled
//! as 3D blocks from the foreground with flips and axis swaps.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use mrisr::Volume;
use mrisr::degrade::Degradation;
use mrisr::normalize::Normalization;
use rand::Rng;
use rand::seq::IndexedRandom;

/// One volume with the name and subject it came from.
pub struct Named {
    pub name: String,
    /// Volumes with the same key come from the same person (same scan session or patient).
    pub subject: String,
    pub volume: Volume,
}

/// Finds every NIfTI file and DICOM series under `paths` (files or folders).
pub fn load_all(paths: &[PathBuf]) -> anyhow::Result<Vec<Named>> {
    let mut out = Vec::new();
    for path in paths {
        let mut nifti = Vec::new();
        if path.is_dir() {
            collect_nifti(path, &mut nifti)?;
            let report = mrisr::io::dicom::scan_dir(path)
                .with_context(|| format!("scanning {} for DICOM", path.display()))?;
            for series in &report.series {
                for (n, volume) in mrisr::io::dicom::load_series(series)?
                    .into_iter()
                    .enumerate()
                {
                    let name = format!("{}#{}", series.description, n);
                    let subject = dicom_subject(&volume).unwrap_or_else(|| name.clone());
                    out.push(Named {
                        name,
                        subject,
                        volume,
                    });
                }
            }
        } else {
            nifti.push(path.clone());
        }
        for file in nifti {
            let subject = sidecar_subject(&file).unwrap_or_else(|| file_stem(&file));
            for (n, volume) in mrisr::io::nifti::read_nifti(&file)?.into_iter().enumerate() {
                let name = if n == 0 {
                    file_stem(&file)
                } else {
                    format!("{}#{n}", file_stem(&file))
                };
                out.push(Named {
                    name,
                    subject: subject.clone(),
                    volume,
                });
            }
        }
    }
    if out.is_empty() {
        bail!("no NIfTI file or DICOM series found in {paths:?}");
    }
    Ok(out)
}

/// The NIfTI files under `dir`, depth first in name order. Symbolic links are followed; a link
/// back to a folder above it is skipped with a warning instead of being walked forever.
fn collect_nifti(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let walk = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name();
    for entry in walk {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.loop_ancestor().is_some() => {
                eprintln!("warning: skipping {e}");
                continue;
            }
            Err(e) => {
                let at = e.path().unwrap_or(dir).to_path_buf();
                return Err(e).with_context(|| format!("reading {}", at.display()));
            }
        };
        if !entry.file_type().is_dir() && is_nifti(entry.path()) {
            out.push(entry.into_path());
        }
    }
    Ok(())
}

pub fn is_nifti(p: &Path) -> bool {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with(".nii") || name.ends_with(".nii.gz")
}

pub fn file_stem(p: &Path) -> String {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("volume");
    name.trim_end_matches(".gz")
        .trim_end_matches(".nii")
        .to_string()
}

/// Subject key from a dcm2niix BIDS sidecar: the scanner and acquisition time identify a scan
/// session, so the echoes of one session (the same person) land in one group.
fn sidecar_subject(nifti: &Path) -> Option<String> {
    let sidecar = PathBuf::from(format!(
        "{}.json",
        nifti
            .to_string_lossy()
            .trim_end_matches(".gz")
            .trim_end_matches(".nii")
    ));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sidecar).ok()?).ok()?;
    let field = |k: &str| json.get(k).map(|v| v.to_string());
    if let Some(id) = field("PatientID") {
        return Some(format!("patient:{id}"));
    }
    let serial = field("DeviceSerialNumber")?;
    let time = field("AcquisitionDateTime").or_else(|| field("AcquisitionTime"))?;
    Some(format!("session:{serial}@{time}"))
}

/// Subject key of a DICOM volume: its study (one person, one visit).
fn dicom_subject(v: &Volume) -> Option<String> {
    let attrs = v.meta.dicom.as_ref()?;
    attrs
        .elements
        .iter()
        .find(|(g, e, _, _)| (*g, *e) == (0x0020, 0x000D))
        .map(|(_, _, _, value)| format!("study:{value}"))
}

/// Which volumes train, validate and test.
pub struct Split {
    pub train: Vec<Named>,
    pub val: Vec<Named>,
    pub test: Vec<Named>,
}

/// Splits by subject: every volume whose subject matches a volume named like `test` (substring)
/// goes to test, likewise `val`; the rest trains. Without `val`, the training subject with the
/// fewest voxels validates (never a test subject).
pub fn split(all: Vec<Named>, test: &[String], val: &[String]) -> anyhow::Result<Split> {
    let subjects_of = |pats: &[String], all: &[Named]| -> Vec<String> {
        all.iter()
            .filter(|n| pats.iter().any(|p| n.name.contains(p.as_str())))
            .map(|n| n.subject.clone())
            .collect()
    };
    let test_subjects = subjects_of(test, &all);
    for p in test {
        if !all.iter().any(|n| n.name.contains(p.as_str())) {
            bail!("--test {p}: no volume has that in its name");
        }
    }
    let mut val_subjects = subjects_of(val, &all);
    if val_subjects.iter().any(|s| test_subjects.contains(s)) {
        bail!("a validation volume is the same subject as a test volume");
    }
    if val_subjects.is_empty() {
        let mut sizes: BTreeMap<&str, usize> = BTreeMap::new();
        for n in all.iter().filter(|n| !test_subjects.contains(&n.subject)) {
            *sizes.entry(&n.subject).or_default() += n.volume.len();
        }
        if sizes.len() >= 2 {
            let smallest = sizes
                .iter()
                .min_by_key(|(_, v)| **v)
                .map(|(k, _)| k.to_string());
            val_subjects.extend(smallest);
        }
    }
    let mut s = Split {
        train: Vec::new(),
        val: Vec::new(),
        test: Vec::new(),
    };
    for n in all {
        if test_subjects.contains(&n.subject) {
            s.test.push(n);
        } else if val_subjects.contains(&n.subject) {
            s.val.push(n);
        } else {
            s.train.push(n);
        }
    }
    if s.train.is_empty() {
        bail!("no training volume left after holding out test and validation subjects");
    }
    Ok(s)
}

/// A degraded input and its target on the same grid, intensity-normalised.
pub struct Pair {
    pub name: String,
    pub input: Volume,
    pub target: Volume,
    /// Linear indices of foreground voxels that can be block corners.
    corners: Vec<u32>,
}

/// The three cyclic axis orders: each puts a different original axis where the degradation acts.
pub const ROTATIONS: [[usize; 3]; 3] = [[0, 1, 2], [1, 2, 0], [2, 0, 1]];

impl Pair {
    /// Normalises `hr`, rotates it by `order`, degrades it and upsamples it back to its grid.
    pub fn new(
        name: &str,
        hr: &Volume,
        order: [usize; 3],
        deg: &Degradation,
        block: usize,
    ) -> Option<Pair> {
        let norm = Normalization::for_network(hr);
        let target = norm.apply(hr).permuted(order);
        let target = deg.crop_to_multiple(&target);
        if target.dims.iter().any(|&d| d < block) {
            return None;
        }
        let input = deg.simulate(&target);
        let mask = tissue_mask(&target);
        let corners = corner_candidates(&target, &mask, block);
        (!corners.is_empty()).then(|| Pair {
            name: format!("{name}/rot{}", order[2]),
            input,
            target,
            corners,
        })
    }

    /// A random block (input, target), i fastest, with the same random flips and in-plane swap.
    pub fn sample(&self, block: usize, rng: &mut impl Rng, swap_ok: bool) -> (Vec<f32>, Vec<f32>) {
        let c = self.corners[rng.random_range(0..self.corners.len())] as usize;
        let d = self.target.dims;
        let corner = [c % d[0], (c / d[0]) % d[1], c / (d[0] * d[1])];
        let flips = [
            rng.random_bool(0.5),
            rng.random_bool(0.5),
            rng.random_bool(0.5),
        ];
        let swap = swap_ok && rng.random_bool(0.5);
        (
            read_block(&self.input, corner, block, flips, swap),
            read_block(&self.target, corner, block, flips, swap),
        )
    }
}

/// Voxels that are tissue rather than air in a normalised volume: above a tenth of the 99.5th
/// percentile. Simpler and sturdier than Otsu on crops that hold only tissue.
pub fn tissue_mask(normalised: &Volume) -> Vec<bool> {
    normalised.data.iter().map(|&v| v > 0.1).collect()
}

fn corner_candidates(v: &Volume, mask: &[bool], block: usize) -> Vec<u32> {
    let [ni, nj, nk] = v.dims;
    let h = block / 2;
    let mut out = Vec::new();
    // Every 2nd voxel is plenty of distinct blocks and keeps the list small.
    for k in (0..=nk - block).step_by(2) {
        for j in (0..=nj - block).step_by(2) {
            for i in (0..=ni - block).step_by(2) {
                if mask[v.index(i + h, j + h, k + h)] {
                    out.push(v.index(i, j, k) as u32);
                }
            }
        }
    }
    out
}

/// Copies a `block`^3 cube at `corner`, flipped per axis and with i/j swapped if asked.
pub fn read_block(
    v: &Volume,
    corner: [usize; 3],
    block: usize,
    flips: [bool; 3],
    swap: bool,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(block * block * block);
    let at = |a: usize, n: usize| if flips[a] { block - 1 - n } else { n };
    for k in 0..block {
        for j in 0..block {
            for i in 0..block {
                let (si, sj) = if swap { (j, i) } else { (i, j) };
                out.push(v.get(
                    corner[0] + at(0, si),
                    corner[1] + at(1, sj),
                    corner[2] + at(2, k),
                ));
            }
        }
    }
    out
}

/// Builds pairs for every volume in all three rotations.
pub fn make_pairs(vols: &[Named], deg: &Degradation, block: usize) -> Vec<Pair> {
    vols.iter()
        .flat_map(|n| {
            ROTATIONS
                .iter()
                .filter_map(|&o| Pair::new(&n.name, &n.volume, o, deg, block))
        })
        .collect()
}

/// Picks a pair with probability proportional to its number of candidate blocks.
pub fn choose_pair<'a>(pairs: &'a [Pair], rng: &mut impl Rng) -> &'a Pair {
    pairs
        .choose_weighted(rng, |p| p.corners.len() as f64)
        .expect("pairs is never empty")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nifti_files_are_found_in_name_order_past_a_symlink_loop() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        std::fs::create_dir_all(a.join("b")).unwrap();
        for f in ["a/y.nii.gz", "a/b/x.nii", "a/notes.txt", "z.nii"] {
            std::fs::write(tmp.path().join(f), b"").unwrap();
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(&a, a.join("b/loop")).unwrap();
        let mut found = Vec::new();
        collect_nifti(tmp.path(), &mut found).unwrap();
        let rel: Vec<_> = found
            .iter()
            .map(|p| p.strip_prefix(tmp.path()).unwrap().to_str().unwrap())
            .collect();
        assert_eq!(rel, ["a/b/x.nii", "a/y.nii.gz", "z.nii"]);
    }
}
