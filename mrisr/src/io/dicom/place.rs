//! Placing decoded 2D images in a volume's output grid.
//!
//! Images arrive in the natural grid (i = column, j = row, k = slice) and go to the grid dcm2niix
//! writes, a permutation with flips of it ([`AxisMap`]). Copied one image at a time, an image of
//! a sagittal or coronal 3D series reoriented to RAS+ would be written with a stride of a whole
//! output row: one cache line per value. [`place`] instead takes several images of consecutive
//! slices at once and fills the output block by block in its own order (the output's fastest
//! axis innermost), converting stored samples to grey values on the way; natively the blocks are
//! filled in parallel.

use super::geometry::AxisMap;

/// Images for the consecutive natural slices `k0, k0 + 1, ...` of one volume.
pub(crate) struct Slab<'a, S> {
    /// Natural slice index of the first image.
    pub k0: usize,
    /// Each image's values from its first pixel on: row j starts at `j * stride`.
    pub images: Vec<&'a [S]>,
    /// Distance between image rows in `images`.
    pub stride: usize,
    /// Rescale (slope, intercept) of each image; `None` where it is the identity.
    pub rescale: Vec<Option<(f64, f64)>>,
}

/// How [`place`] cuts the output into work.
#[derive(Clone, Copy, Debug)]
struct Blocks {
    /// Output values filled per parallel task (whole output planes, at least one).
    chunk_values: usize,
    /// Block edge along the output's two fastest axes.
    edge: usize,
}

/// Tasks of about 256 KiB of f32, blocks of 64 x 64 values.
const BLOCKS: Blocks = Blocks {
    chunk_values: 1 << 16,
    edge: 64,
};

/// Writes the voxels of `slab` to `out`, the output grid of `map` for a volume of natural dims
/// `nd`; `grey` turns a stored sample into its grey value (before the rescale).
///
/// Panics if the slab does not fit `nd` or an image is shorter than `nd` says (the caller
/// checks frame sizes against the header first).
pub(crate) fn place<S: Copy + Sync>(
    out: &mut [f32],
    nd: [usize; 3],
    map: &AxisMap,
    slab: &Slab<'_, S>,
    grey: impl Fn(S) -> f32 + Sync,
) {
    place_in(BLOCKS, out, nd, map, slab, grey);
}

fn place_in<S: Copy + Sync>(
    blocks: Blocks,
    out: &mut [f32],
    nd: [usize; 3],
    map: &AxisMap,
    slab: &Slab<'_, S>,
    grey: impl Fn(S) -> f32 + Sync,
) {
    let n = slab.images.len();
    assert!(slab.k0 + n <= nd[2] && slab.rescale.len() == n);
    if n == 0 || nd[0] == 0 || nd[1] == 0 {
        return;
    }
    let od = map.out_dims(nd);
    let plane = od[0] * od[1];
    assert_eq!(out.len(), plane * od[2]);
    // The slab's natural box, then its range along each output axis.
    let nat_lo = [0, 0, slab.k0];
    let nat_hi = [nd[0], nd[1], slab.k0 + n];
    let range = |a: usize| {
        let p = map.perm[a];
        if map.flip[a] {
            (nd[p] - nat_hi[p], nd[p] - nat_lo[p])
        } else {
            (nat_lo[p], nat_hi[p])
        }
    };
    let ((lo0, hi0), (lo1, hi1), (lo2, hi2)) = (range(0), range(1), range(2));
    // Output coordinate along axis a -> natural coordinate along axis perm[a].
    let nat = |a: usize, o: usize| {
        if map.flip[a] {
            nd[map.perm[a]] - 1 - o
        } else {
            o
        }
    };
    let rescaled = |x: f32, r: Option<(f64, f64)>| match r {
        None => x,
        Some((slope, intercept)) => (x as f64 * slope + intercept) as f32,
    };
    let stride = slab.stride;
    let (p0, p1, p2) = (map.perm[0], map.perm[1], map.perm[2]);
    // One run of the output's fastest axis, o0 in b0..e0, at natural coordinates `c` along the
    // two other axes.
    let run = |dst: &mut [f32], c: [usize; 3], b0: usize, e0: usize| match p0 {
        // Along an image row: contiguous in the image too.
        0 => {
            let s = c[2] - slab.k0;
            let (img, r) = (slab.images[s], slab.rescale[s]);
            let row = c[1] * stride;
            if map.flip[0] {
                let src = &img[row + nd[0] - e0..row + nd[0] - b0];
                for (d, &x) in dst.iter_mut().zip(src.iter().rev()) {
                    *d = rescaled(grey(x), r);
                }
            } else if r.is_none() {
                for (d, &x) in dst.iter_mut().zip(&img[row + b0..row + e0]) {
                    *d = grey(x);
                }
            } else {
                for (d, &x) in dst.iter_mut().zip(&img[row + b0..row + e0]) {
                    *d = rescaled(grey(x), r);
                }
            }
        }
        // Down an image column.
        1 => {
            let s = c[2] - slab.k0;
            let (img, r) = (slab.images[s], slab.rescale[s]);
            for (d, o) in dst.iter_mut().zip(b0..e0) {
                *d = rescaled(grey(img[nat(0, o) * stride + c[0]]), r);
            }
        }
        // Across the images, one value from each.
        _ => {
            let at = c[1] * stride + c[0];
            for (d, o) in dst.iter_mut().zip(b0..e0) {
                let s = nat(0, o) - slab.k0;
                *d = rescaled(grey(slab.images[s][at]), slab.rescale[s]);
            }
        }
    };
    // When the output's fastest axis is not the image row but its second one is, a block is
    // filled image row by image row instead (contiguous reads, writes `od[0]` apart), in long
    // rows: short runs from many images at once leave the memory system waiting on each read.
    let by_source_row = p0 != 0 && p1 == 0;
    let (block0, block1) = if by_source_row {
        (blocks.edge, (blocks.chunk_values / od[0]).max(blocks.edge))
    } else {
        (blocks.edge, blocks.edge)
    };
    let source_row = |out_plane: &mut [f32], o0: usize, c: [usize; 3], b1: usize, e1: usize| {
        let (s, row) = if p0 == 2 {
            (nat(0, o0) - slab.k0, c[1] * stride)
        } else {
            (c[2] - slab.k0, nat(0, o0) * stride)
        };
        let (img, r) = (slab.images[s], slab.rescale[s]);
        let dst = out_plane[b1 * od[0] + o0..].iter_mut().step_by(od[0]);
        if map.flip[1] {
            let src = &img[row + nd[0] - e1..row + nd[0] - b1];
            for (d, &x) in dst.zip(src.iter().rev()) {
                *d = rescaled(grey(x), r);
            }
        } else if r.is_none() {
            for (d, &x) in dst.zip(&img[row + b1..row + e1]) {
                *d = grey(x);
            }
        } else {
            for (d, &x) in dst.zip(&img[row + b1..row + e1]) {
                *d = rescaled(grey(x), r);
            }
        }
    };
    let per_chunk = (blocks.chunk_values / plane).clamp(1, hi2 - lo2);
    let fill = |(chunk_index, chunk): (usize, &mut [f32])| {
        let first = lo2 + chunk_index * per_chunk;
        for b1 in (lo1..hi1).step_by(block1) {
            let e1 = (b1 + block1).min(hi1);
            for b0 in (lo0..hi0).step_by(block0) {
                let e0 = (b0 + block0).min(hi0);
                for (z, out_plane) in chunk.chunks_mut(plane).enumerate() {
                    let mut c = [0; 3];
                    c[p2] = nat(2, first + z);
                    if by_source_row {
                        for o0 in b0..e0 {
                            source_row(out_plane, o0, c, b1, e1);
                        }
                        continue;
                    }
                    for o1 in b1..e1 {
                        c[p1] = nat(1, o1);
                        run(&mut out_plane[o1 * od[0] + b0..o1 * od[0] + e0], c, b0, e0);
                    }
                }
            }
        }
    };
    let region = &mut out[lo2 * plane..hi2 * plane];
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        region
            .par_chunks_mut(per_chunk * plane)
            .enumerate()
            .for_each(fill);
    }
    #[cfg(target_arch = "wasm32")]
    region
        .chunks_mut(per_chunk * plane)
        .enumerate()
        .for_each(fill);
}

/// A zeroed output grid of `n` values. On Linux a large grid asks for transparent huge pages
/// (effective where `/sys/kernel/mm/transparent_hugepage/enabled` is `madvise` or `always`):
/// the first write to each 4 KiB page of fresh memory costs a page fault, and for the knee
/// (84 MB) those 20 000 faults took about a quarter of the load time; with 2 MiB pages there
/// are about 40.
pub(crate) fn zeroed_grid(n: usize) -> Vec<f32> {
    let grid = vec![0.0f32; n];
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 1 << 21;
        let (at, bytes) = (grid.as_ptr() as usize, std::mem::size_of_val(&grid[..]));
        // Only whole huge pages inside the allocation.
        let start = at.next_multiple_of(HUGE);
        let end = (at + bytes) / HUGE * HUGE;
        if end > start {
            // SAFETY: the range lies inside `grid`'s allocation, which is alive and owned
            // here; MADV_HUGEPAGE only changes how the kernel backs those pages, never their
            // contents. A failure (no THP support) leaves ordinary pages: the result is ignored.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Large enough for huge pages on Linux: still zeroed, still `n` values.
    #[test]
    fn zeroed_grid_is_zeroed_at_any_size() {
        for n in [0, 1, 1000, (5 << 20) + 3] {
            let g = zeroed_grid(n);
            assert_eq!(g.len(), n);
            assert!(g.iter().all(|&x| x == 0.0));
        }
    }

    /// Every axis order and flip, odd sizes, slabs of one and of several slices, rows wider
    /// than the image (a mosaic tile), a rescale on some images, the default blocks and small
    /// ones (partial blocks and several tasks): the same voxels as `AxisMap::apply` on the
    /// natural grid.
    #[test]
    fn place_matches_the_axis_map_for_every_order_and_flip() {
        // Sizes around the block edge so partial blocks and chunks are covered too.
        for nd in [[3, 5, 7], [67, 2, 9], [1, 70, 3], [5, 4, 1]] {
            let stride = nd[0] + 2;
            let nvox = nd[0] * nd[1] * nd[2];
            // Stored images: value = natural index + 1, in rows `stride` apart.
            let images: Vec<Vec<u16>> = (0..nd[2])
                .map(|k| {
                    let mut img = vec![0u16; stride * nd[1]];
                    for j in 0..nd[1] {
                        for i in 0..nd[0] {
                            img[j * stride + i] = (i + nd[0] * (j + nd[1] * k) + 1) as u16;
                        }
                    }
                    img
                })
                .collect();
            let rescale = |k: usize| (k % 3 == 1).then_some((2.0, -1.0));
            let natural: Vec<f32> = (0..nvox)
                .map(|x| {
                    let v = (x + 1) as f32;
                    match rescale(x / (nd[0] * nd[1])) {
                        Some((s, i)) => (v as f64 * s + i) as f32,
                        None => v,
                    }
                })
                .collect();
            for perm in crate::volume::AXIS_ORDERS {
                for bits in 0..8 {
                    let map = AxisMap {
                        perm,
                        flip: [bits & 1 != 0, bits & 2 != 0, bits & 4 != 0],
                    };
                    let want = map.apply(nd, &natural);
                    // One slab of every slice, then slabs of two slices, then single slices.
                    for per_slab in [nd[2], 2, 1] {
                        for blocks in [
                            BLOCKS,
                            Blocks {
                                chunk_values: 5,
                                edge: 2,
                            },
                        ] {
                            let mut out = vec![f32::NAN; nvox];
                            for k0 in (0..nd[2]).step_by(per_slab) {
                                let ks = k0..(k0 + per_slab).min(nd[2]);
                                let slab = Slab {
                                    k0,
                                    images: ks.clone().map(|k| &images[k][..]).collect(),
                                    stride,
                                    rescale: ks.map(rescale).collect(),
                                };
                                place_in(blocks, &mut out, nd, &map, &slab, f32::from);
                            }
                            assert_eq!(
                                out, want,
                                "{nd:?} {map:?}, {per_slab} slices a slab, {blocks:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
