//! Training pairs cut from the scan itself: an in-plane line is sharp, so it is sampled the
//! way the scanner sampled the thick axis (slices of the series' thickness and profile at its
//! slice spacing), put back on the output grid with the baseline interpolator (the network's
//! input), and read again with thin slices at the output spacing (the target). Stacked line
//! by line, a pair is a 2D patch whose axis 0 imitates the thick axis and whose axis 1 is the
//! other in-plane axis: exactly what the network sees in the scan's through-plane planes.

use super::Task;
use crate::resample::{Taps, bspline_coefficients};
use crate::scan::profile_weights;
use crate::{Error, Result, Volume};

/// Thick samples of context kept on each side of a patch, so the baseline interpolator's
/// edge handling never reaches it.
const MARGIN: usize = 2;

/// A small, fast, seedable generator (SplitMix64): pairs are reproducible from a seed, on
/// every target including the page.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// (the in-plane axis that imitates the thick one, the other in-plane axis).
fn axes(g: &crate::scan::ScanGeometry, swap: bool) -> (usize, usize) {
    let [a, b] = g.in_plane;
    if swap { (b, a) } else { (a, b) }
}

/// Where one pair is cut.
#[derive(Clone, Debug)]
pub struct Cut {
    /// Plane along the thick axis.
    pub plane: usize,
    /// The second in-plane axis imitates the thick one (else the first).
    pub swap: bool,
    /// Start of the window of thick samples along that axis, from the line's outer edge (mm).
    pub start_mm: f64,
    /// First line along the other in-plane axis.
    pub other: usize,
    /// Mirror the patch along its axis 0 / axis 1.
    pub flip: [bool; 2],
}

/// Cuts pairs from one (normalised) volume for one task.
pub struct PairSampler<'a> {
    vol: &'a Volume,
    task: &'a Task,
    /// Patch size: `[along the imitated thick axis (output samples), along the other axis]`.
    pub patch: [usize; 2],
    /// Thick samples per window and output samples they give.
    pub window: (usize, usize),
    taps: Taps,
}

impl<'a> PairSampler<'a> {
    /// `wanted`, made smaller where the scan's in-plane field of view cannot hold it (at least
    /// 8 x 8: smaller scans get the error of [`PairSampler::new`]).
    pub fn fitting_patch(vol: &Volume, task: &Task, wanted: [usize; 2]) -> [usize; 2] {
        let g = &task.geometry;
        let line_mm = g
            .in_plane
            .iter()
            .map(|&a| vol.dims[a] as f64 * vol.spacing[a])
            .fold(f64::INFINITY, f64::min);
        // Thick samples a line holds, less the margins and one for the window's phase.
        let slices = (line_mm / g.slice_spacing()).floor() - (2 * MARGIN + 1) as f64;
        let p0 = ((slices * task.factor).floor().max(8.0) as usize).min(wanted[0]);
        let shortest = g.in_plane.iter().map(|&a| vol.dims[a]).min().unwrap_or(0);
        [p0, wanted[1].min(shortest).max(8)]
    }

    /// Checks that both in-plane axes are long enough for `patch`.
    pub fn new(vol: &'a Volume, task: &'a Task, patch: [usize; 2]) -> Result<Self> {
        let f = task.factor;
        let m = (patch[0] as f64 / f).ceil() as usize + 2 * MARGIN;
        let n_out = crate::scan::ScanGeometry::output_slices(m, f);
        let g = &task.geometry;
        for &d in &g.in_plane {
            let other = g.in_plane[0] + g.in_plane[1] - d;
            let line_mm = vol.dims[d] as f64 * vol.spacing[d];
            if line_mm < m as f64 * g.slice_spacing() || vol.dims[other] < patch[1] {
                return Err(Error::Invalid(format!(
                    "{}: the in-plane field of view ({} x {} voxels) is too small for training \
                     pairs of {} slices of {:.2} mm",
                    vol.meta.source,
                    vol.dims[g.in_plane[0]],
                    vol.dims[g.in_plane[1]],
                    m,
                    g.slice_spacing()
                )));
            }
        }
        Ok(PairSampler {
            vol,
            task,
            patch,
            window: (m, n_out),
            taps: Taps::resampling(m, n_out, task.baseline),
        })
    }

    /// One random pair, written into `input` and `target` (each `patch[0] * patch[1]`, axis 0
    /// fastest), mostly of tissue: a patch that is mostly air (mean under a tenth of the
    /// normalised range) is drawn again, a few times at most.
    pub fn sample(&self, rng: &mut Rng, input: &mut [f32], target: &mut [f32]) {
        for _ in 0..8 {
            self.sample_any(rng, input, target);
            let mean = target.iter().sum::<f32>() / target.len() as f32;
            if mean > 0.1 {
                return;
            }
        }
    }

    /// One random pair, air or not.
    fn sample_any(&self, rng: &mut Rng, input: &mut [f32], target: &mut [f32]) {
        let g = &self.task.geometry;
        let v = self.vol;
        let plane = rng.below(v.dims[g.thick_axis]);
        let swap = rng.below(2) == 1;
        let (d, e) = axes(g, swap);
        let line_mm = v.dims[d] as f64 * v.spacing[d];
        let window_mm = self.window.0 as f64 * g.slice_spacing();
        let cut = Cut {
            plane,
            swap,
            start_mm: rng.unit() * (line_mm - window_mm).max(0.0),
            other: rng.below(v.dims[e] - self.patch[1] + 1),
            flip: [rng.below(2) == 1, rng.below(2) == 1],
        };
        self.cut(&cut, input, target);
    }

    /// The pair at `cut`.
    pub fn cut(&self, cut: &Cut, input: &mut [f32], target: &mut [f32]) {
        let g = &self.task.geometry;
        let v = self.vol;
        let [p0, p1] = self.patch;
        let (m, n_out) = self.window;
        let (plane, e0, [flip0, flip1]) = (cut.plane, cut.other, cut.flip);
        let (d, e) = axes(g, cut.swap);
        let pixel = v.spacing[d];
        let spacing = g.slice_spacing();
        let out_step = m as f64 * spacing / n_out as f64;
        // Window start in mm (pixel 0 is centred at 0, its outer edge at -pixel / 2).
        let x0 = -pixel / 2.0 + cut.start_mm;
        let first_out = (n_out - p0) / 2;

        let mut line = vec![0f32; v.dims[d]];
        let mut thick = vec![0f32; m];
        let mut coef = vec![0f32; m];
        let mut up = vec![0f32; n_out];
        let mut w = Vec::new();
        let read = |line: &[f32], centre: f64, width: f64, w: &mut Vec<f64>| -> f32 {
            let first = profile_weights(pixel, centre, width, g.profile, w);
            let last = line.len() as isize - 1;
            w.iter()
                .enumerate()
                .map(|(t, &wt)| wt as f32 * line[(first + t as isize).clamp(0, last) as usize])
                .sum()
        };
        for r in 0..p1 {
            let mut at = [0usize; 3];
            at[g.thick_axis] = plane;
            at[e] = e0 + r;
            for (i, x) in line.iter_mut().enumerate() {
                at[d] = i;
                *x = v.get(at[0], at[1], at[2]);
            }
            // The thick acquisition, then the baseline back onto the output grid.
            for (k, t) in thick.iter_mut().enumerate() {
                let centre = x0 + (k as f64 + 0.5) * spacing;
                *t = read(&line, centre, g.thickness_mm, &mut w);
            }
            if self.task.baseline == crate::resample::Method::BSpline {
                bspline_coefficients(&thick, &mut coef);
                self.taps.apply(&coef, &mut up);
            } else {
                self.taps.apply(&thick, &mut up);
            }
            let rr = if flip1 { p1 - 1 - r } else { r };
            for j in 0..p0 {
                let jj = if flip0 { p0 - 1 - j } else { j };
                let o = first_out + j;
                input[rr * p0 + jj] = up[o];
                // The target: thin slices at the output spacing, contiguous.
                let centre = x0 + (o as f64 + 0.5) * out_step;
                target[rr * p0 + jj] = read(&line, centre, out_step, &mut w);
            }
        }
    }
}
