//! Per-volume intensity normalisation and a simple foreground mask.
//!
//! MRI intensities have no absolute scale, so the network sees every volume divided by a
//! robust maximum (a high percentile of the foreground), clipped above. The scale is returned
//! so the network's output can be put back on the input's scale.

use serde::{Deserialize, Serialize};

use crate::Volume;

/// The `q`-th percentile (0..=100) of the finite voxels selected by `mask` (all if `None`),
/// interpolated linearly between ranks like numpy's default. `None` if nothing is selected.
pub fn percentile(vol: &Volume, q: f64, mask: Option<&[bool]>) -> Option<f32> {
    let mut vals: Vec<f32> = match mask {
        None => vol.data.iter().copied().filter(|v| v.is_finite()).collect(),
        Some(m) => {
            assert_eq!(m.len(), vol.data.len(), "mask size must match the volume");
            vol.data
                .iter()
                .zip(m)
                .filter(|(v, m)| **m && v.is_finite())
                .map(|(v, _)| *v)
                .collect()
        }
    };
    if vals.is_empty() {
        return None;
    }
    let pos = (q.clamp(0.0, 100.0) / 100.0) * (vals.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = pos - lo as f64;
    let (_, &mut a, rest) = vals.select_nth_unstable_by(lo, f32::total_cmp);
    if frac == 0.0 || rest.is_empty() {
        return Some(a);
    }
    let b = rest.iter().copied().fold(f32::INFINITY, f32::min);
    Some((a as f64 + frac * (b as f64 - a as f64)) as f32)
}

/// Otsu's threshold over a 256-bin histogram of the finite voxels: the value that best splits
/// them into two classes (background and tissue). Returns the minimum for a constant volume.
pub fn otsu_threshold(vol: &Volume) -> f32 {
    const BINS: usize = 256;
    let (lo, hi) = vol.min_max();
    if hi <= lo {
        return lo;
    }
    let width = (hi - lo) as f64 / BINS as f64;
    let mut hist = [0u64; BINS];
    for &v in vol.data.iter().filter(|v| v.is_finite()) {
        let b = (((v - lo) as f64 / width) as usize).min(BINS - 1);
        hist[b] += 1;
    }
    let total: u64 = hist.iter().sum();
    let sum_all: f64 = hist
        .iter()
        .enumerate()
        .map(|(b, &c)| b as f64 * c as f64)
        .sum();
    let (mut w0, mut sum0) = (0u64, 0.0f64);
    let (mut best, mut best_b) = (-1.0f64, 0usize);
    for (b, &c) in hist.iter().enumerate().take(BINS - 1) {
        w0 += c;
        sum0 += b as f64 * c as f64;
        let w1 = total - w0;
        if w0 == 0 || w1 == 0 {
            continue;
        }
        let m0 = sum0 / w0 as f64;
        let m1 = (sum_all - sum0) / w1 as f64;
        let between = w0 as f64 * w1 as f64 * (m0 - m1) * (m0 - m1);
        if between > best {
            best = between;
            best_b = b;
        }
    }
    // Upper edge of the last background bin.
    (lo as f64 + (best_b + 1) as f64 * width) as f32
}

/// Foreground mask: voxels above the Otsu threshold (see [`otsu_threshold`]).
pub fn foreground_mask(vol: &Volume) -> Vec<bool> {
    let t = otsu_threshold(vol);
    vol.data.iter().map(|&v| v > t).collect()
}

/// How a volume's intensities were scaled: `normalised = min(original / scale, clip)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// The divisor (the chosen percentile of the foreground).
    pub scale: f32,
    /// Upper clip applied after dividing.
    pub clip: f32,
}

impl Normalization {
    /// Divides by the `q`-th percentile of the foreground ([`foreground_mask`], or all voxels if
    /// it is empty) and clips at `clip` (e.g. `q = 99.5`, `clip = 1.5`). Voxels below zero are
    /// left alone. A scale that would be 0 or not finite becomes 1.
    pub fn fit(vol: &Volume, q: f64, clip: f32) -> Self {
        let mask = foreground_mask(vol);
        let p = percentile(vol, q, Some(&mask)).or_else(|| percentile(vol, q, None));
        let scale = p.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(1.0);
        Normalization { scale, clip }
    }

    /// The normalised copy of `vol`.
    pub fn apply(&self, vol: &Volume) -> Volume {
        let mut out = vol.clone();
        let inv = 1.0 / self.scale;
        out.data
            .iter_mut()
            .for_each(|v| *v = (*v * inv).min(self.clip));
        out
    }

    /// Back to the original scale (clipped voxels stay at `clip * scale`).
    pub fn undo(&self, vol: &Volume) -> Volume {
        let mut out = vol.clone();
        out.data.iter_mut().for_each(|v| *v *= self.scale);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_like_numpy() {
        let v = Volume::from_data([5, 1, 1], [1.0; 3], vec![4.0, 1.0, 3.0, 2.0, 5.0]);
        assert_eq!(percentile(&v, 0.0, None), Some(1.0));
        assert_eq!(percentile(&v, 100.0, None), Some(5.0));
        assert_eq!(percentile(&v, 50.0, None), Some(3.0));
        assert_eq!(percentile(&v, 62.5, None), Some(3.5)); // numpy: 3.5
        let mask = [true, false, false, false, true];
        assert_eq!(percentile(&v, 50.0, Some(&mask)), Some(4.5));
        assert_eq!(percentile(&v, 50.0, Some(&[false; 5])), None);
    }

    #[test]
    fn otsu_separates_two_populations_and_normalisation_undoes() {
        // 60% background near 10, 40% tissue near 500.
        let data: Vec<f32> = (0..1000)
            .map(|i| {
                if i % 5 < 3 {
                    10.0 + (i % 7) as f32
                } else {
                    500.0 + (i % 11) as f32 * 3.0
                }
            })
            .collect();
        let v = Volume::from_data([10, 10, 10], [1.0; 3], data);
        let t = otsu_threshold(&v);
        assert!(t > 16.0 && t < 500.0, "{t}");
        let mask = foreground_mask(&v);
        assert_eq!(mask.iter().filter(|&&m| m).count(), 400);
        let n = Normalization::fit(&v, 99.5, 1.5);
        assert!(n.scale >= 500.0 && n.scale <= 530.0, "{}", n.scale);
        let x = n.apply(&v);
        assert!(x.data.iter().all(|&y| y <= 1.5));
        let back = n.undo(&x);
        for (a, b) in back.data.iter().zip(&v.data) {
            assert!((a - b).abs() < 1e-3);
        }
    }
}
