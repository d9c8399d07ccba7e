//! Splitting a volume into overlapping tiles and stitching results back, so a fully
//! convolutional network can run on volumes of any size within a fixed memory budget.
//!
//! Each tile has a *core* (the voxels it is responsible for) and a *halo* around it (context
//! the network needs). With a halo at least as wide as the network's receptive radius, each core
//! voxel sees exactly what it would see in a whole-volume pass: no seams, and the result equals
//! the untiled one. At the volume's edges the halo is cut off, just as the whole-volume pass
//! pads there.

use crate::Volume;

/// One tile: the region read (core + halo, clipped to the volume) and the core written back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tile {
    /// First voxel and size of the region fed to the network.
    pub read_start: [usize; 3],
    pub read_size: [usize; 3],
    /// First voxel and size of the core, in volume coordinates.
    pub core_start: [usize; 3],
    pub core_size: [usize; 3],
}

impl Tile {
    pub fn read_voxels(&self) -> usize {
        self.read_size.iter().product()
    }
}

/// Progress report: tiles done and voxels done so far, out of the totals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub tiles_done: usize,
    pub tiles_total: usize,
    pub voxels_done: usize,
    pub voxels_total: usize,
}

/// Covers `dims` with tiles whose cores are at most `core` voxels per axis, each with `halo`
/// voxels of context on every side (where the volume has them).
pub fn plan(dims: [usize; 3], core: usize, halo: usize) -> Vec<Tile> {
    plan_axes(dims, [core; 3], [halo; 3])
}

/// [`plan`] with a core edge and a halo per axis (the CPU engine's columns: whole along k).
pub fn plan_axes(dims: [usize; 3], core: [usize; 3], halo: [usize; 3]) -> Vec<Tile> {
    assert!(
        core.iter().all(|&c| c > 0),
        "tile core must be at least one voxel"
    );
    let starts = |a: usize| (0..dims[a]).step_by(core[a]).collect::<Vec<_>>();
    let (si, sj, sk) = (starts(0), starts(1), starts(2));
    let mut tiles = Vec::with_capacity(si.len() * sj.len() * sk.len());
    for &k in &sk {
        for &j in &sj {
            for &i in &si {
                let core_start = [i, j, k];
                let core_size: [usize; 3] =
                    std::array::from_fn(|a| core[a].min(dims[a] - core_start[a]));
                let read_start: [usize; 3] =
                    std::array::from_fn(|a| core_start[a].saturating_sub(halo[a]));
                let read_end: [usize; 3] =
                    std::array::from_fn(|a| (core_start[a] + core_size[a] + halo[a]).min(dims[a]));
                let read_size = std::array::from_fn(|a| read_end[a] - read_start[a]);
                tiles.push(Tile {
                    read_start,
                    read_size,
                    core_start,
                    core_size,
                });
            }
        }
    }
    tiles
}

/// Copies a tile's read region out of `vol` (i fastest, like the volume).
pub fn extract(vol: &Volume, tile: &Tile) -> Vec<f32> {
    let [si, sj, sk] = tile.read_start;
    let [ni, nj, nk] = tile.read_size;
    let mut out = Vec::with_capacity(ni * nj * nk);
    for k in sk..sk + nk {
        for j in sj..sj + nj {
            let row = vol.index(si, j, k);
            out.extend_from_slice(&vol.data[row..row + ni]);
        }
    }
    out
}

/// Writes the core of a processed tile (`result` has the tile's read size, i fastest) into `out`.
pub fn stitch(out: &mut Volume, tile: &Tile, result: &[f32]) {
    let [ni, nj, _] = tile.read_size;
    let off: [usize; 3] = std::array::from_fn(|a| tile.core_start[a] - tile.read_start[a]);
    let [ci, cj, ck] = tile.core_size;
    for k in 0..ck {
        for j in 0..cj {
            let src = off[0] + ni * ((off[1] + j) + nj * (off[2] + k));
            let dst = out.index(
                tile.core_start[0],
                tile.core_start[1] + j,
                tile.core_start[2] + k,
            );
            out.data[dst..dst + ci].copy_from_slice(&result[src..src + ci]);
        }
    }
}

/// The largest core edge such that a tile (core + 2 halo) holds at most `max_voxels` voxels.
pub fn core_for_budget(max_voxels: usize, halo: usize) -> usize {
    let edge = (max_voxels as f64).cbrt().floor() as usize;
    edge.saturating_sub(2 * halo).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_cover_every_voxel_once() {
        let dims = [10, 7, 5];
        let mut seen = vec![0u8; 350];
        for t in plan(dims, 4, 2) {
            for k in 0..t.core_size[2] {
                for j in 0..t.core_size[1] {
                    for i in 0..t.core_size[0] {
                        let (i, j, k) = (
                            t.core_start[0] + i,
                            t.core_start[1] + j,
                            t.core_start[2] + k,
                        );
                        seen[i + 10 * (j + 7 * k)] += 1;
                    }
                }
            }
            for (a, &n) in dims.iter().enumerate() {
                assert!(t.read_start[a] + t.read_size[a] <= n);
                assert!(t.read_start[a] <= t.core_start[a]);
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
    }

    #[test]
    fn extract_then_stitch_is_identity() {
        let dims = [9, 6, 5];
        let data: Vec<f32> = (0..270).map(|x| x as f32).collect();
        let vol = Volume::from_data(dims, [1.0; 3], data);
        let mut out = Volume::zeros(dims, [1.0; 3]);
        for t in plan(dims, 4, 3) {
            let tile = extract(&vol, &t);
            assert_eq!(tile.len(), t.read_voxels());
            stitch(&mut out, &t, &tile);
        }
        assert_eq!(out.data, vol.data);
    }

    #[test]
    fn budget_gives_positive_core() {
        assert_eq!(core_for_budget(64 * 64 * 64, 10), 44);
        assert_eq!(core_for_budget(10, 10), 1);
    }
}
