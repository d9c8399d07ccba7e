//! mrisr's CPU engine kernels: the 3x3x3 convolution of one output plane, in SIMD (pulp: AVX-512 or AVX2+FMA on x86-64,
//! NEON on aarch64, simd128 in WebAssembly, chosen at run time where the CPU decides).
//!
//! Layout: a plane is `(ny + 2) x (nx + 2)` voxels, x fastest, each voxel `stride` channels
//! (channels-last), with a one-voxel border that stays zero: that border is the network's
//! "same" zero padding, so the inner loops need no bounds checks. A plane outside the volume
//! (above the top or below the bottom slice) is a plane of zeros.
//!
//! Register blocking: one call computes `XB` neighbouring voxels of a row times `VB` SIMD
//! vectors of output channels, all in registers, over the 27 taps and every input channel:
//! per (tap, input channel) `VB` weight loads and `XB` broadcasts feed `XB * VB` FMAs.
//! Bias, ReLU and the residual add (`skip + scale * conv`) are applied before the one store.
//!
//! Multiply-adds use pulp's `mul_add_e_f32s` (fused where the CPU has FMA, multiply then add
//! elsewhere): its exact `mul_add_f32s` is a per-lane software FMA in WebAssembly, which made
//! the page's network 25x slower (BENCHMARKS.md).
//!
//! Tested through `mrisr::engine` (against a plain convolution and against burn).

use pulp::Simd;

/// Weights of one convolution, packed for the kernel: `[tap][cin][cout_p]` with the 27 taps in
/// (dz, dy, dx) order and output channels padded with zeros to `cout_p`.
#[derive(Clone, Debug)]
pub struct PackedConv {
    pub cin: usize,
    pub cout: usize,
    pub cout_p: usize,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    /// Every tap outside the middle plane (dz = 0 or 2) is zero: a 2D convolution within each
    /// plane (the "learn from this scan" networks), so only the middle plane's 9 taps are run.
    pub planar: bool,
}

impl PackedConv {
    /// Packs PyTorch/burn weights `[cout][cin][3][3][3]` (cross-correlation, depth first).
    pub fn pack(cin: usize, cout: usize, cout_p: usize, weight: &[f32], bias: &[f32]) -> Self {
        assert_eq!(weight.len(), cout * cin * 27);
        assert_eq!(bias.len(), cout);
        let mut weights = vec![0.0; 27 * cin * cout_p];
        for co in 0..cout {
            for ci in 0..cin {
                for tap in 0..27 {
                    weights[(tap * cin + ci) * cout_p + co] = weight[(co * cin + ci) * 27 + tap];
                }
            }
        }
        let mut b = vec![0.0; cout_p];
        b[..cout].copy_from_slice(bias);
        let per_plane = 9 * cin * cout_p;
        let planar = weights[..per_plane]
            .iter()
            .chain(&weights[2 * per_plane..])
            .all(|&w| w == 0.0);
        Self {
            cin,
            cout,
            cout_p,
            weights,
            bias: b,
            planar,
        }
    }
}

impl PackedConv {
    /// The input planes (dz) whose taps are not all zero.
    #[inline(always)]
    fn planes(&self) -> std::ops::Range<usize> {
        if self.planar { 1..2 } else { 0..3 }
    }
}

/// The part of a plane to compute: interior rows `y0..y1` and columns `x0..x1` (0-based,
/// without the border), and the plane's interior width `nx`.
#[derive(Clone, Copy, Debug)]
pub struct Region {
    pub nx: usize,
    pub x0: usize,
    pub x1: usize,
    pub y0: usize,
    pub y1: usize,
}

/// What is done to the sum before it is stored.
#[derive(Clone, Copy)]
pub struct Epilogue<'a> {
    pub relu: bool,
    /// `out = skip + scale * conv`, `skip` laid out like the output plane.
    pub skip: Option<(&'a [f32], f32)>,
}

/// Input planes z-1, z, z+1 with their channel stride.
#[derive(Clone, Copy)]
pub struct Inputs<'a> {
    pub planes: [&'a [f32]; 3],
    pub stride: usize,
}

/// Computes rows `region.y0..region.y1` of an output plane whose rows from `region.y0` on are
/// `out` (that is, `out` starts at padded row `region.y0 + 1`). Output channel stride is
/// `conv.cout_p`. Splitting `out` by rows is how callers run threads.
pub fn conv_rows(conv: &PackedConv, input: Inputs, region: Region, epi: Epilogue, out: &mut [f32]) {
    let job = ConvRows {
        conv,
        input,
        region,
        epi,
        out,
    };
    // MRISR_SIMD=v3 holds an AVX-512 machine to AVX2 (benchmarks of the two paths).
    #[cfg(target_arch = "x86_64")]
    static AVX2_ONLY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    #[cfg(target_arch = "x86_64")]
    if *AVX2_ONLY.get_or_init(|| std::env::var("MRISR_SIMD").as_deref() == Ok("v3"))
        && let Some(v3) = pulp::x86::V3::try_new()
    {
        return pulp::Simd::vectorize(v3, job);
    }
    pulp::Arch::new().dispatch(job);
}

/// Like [`conv_rows`] for a convolution with one output channel (the network's tail), written
/// to a plain `nx`-wide plane without border or channels (`out` starts at row `region.y0`).
/// Its input channels must be packed as many as the input's stride (zero weights on padding).
/// A skip plane here is a one-channel plane with the border (the network's input).
pub fn conv_rows_to_scalar(
    conv: &PackedConv,
    input: Inputs,
    region: Region,
    epi: Epilogue,
    out: &mut [f32],
) {
    pulp::Arch::new().dispatch(DotRows(ConvRows {
        conv,
        input,
        region,
        epi,
        out,
    }));
}

/// One call's work: rows of `region` of an output plane (see [`conv_rows`]).
struct ConvRows<'a> {
    conv: &'a PackedConv,
    input: Inputs<'a>,
    region: Region,
    epi: Epilogue<'a>,
    out: &'a mut [f32],
}

impl pulp::WithSimd for ConvRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let lanes = S::F32_LANES;
        assert_eq!(
            self.conv.cout_p % lanes,
            0,
            "output channels padded to the SIMD width"
        );
        let vectors = self.conv.cout_p / lanes;
        // Accumulators fill the register file: 32 vector registers with AVX-512 (and NEON),
        // 16 elsewhere, less the weights and the broadcast.
        let wide = lanes == 16;
        let widest = if wide || lanes == 4 { 4 } else { 2 };
        let vb = [4, 2, 1]
            .into_iter()
            .find(|&v| v <= widest && vectors.is_multiple_of(v))
            .unwrap_or(1);
        // WebAssembly engines keep a scratch register of their 16 (V8 on x86-64): fewer
        // accumulators there.
        let narrow = lanes == 4;
        match (vb, wide, narrow) {
            (4, _, true) => run::<S, 4, 2>(simd, self),
            (4, _, _) => run::<S, 4, 6>(simd, self),
            (2, true, _) => run::<S, 2, 12>(simd, self),
            (1, true, _) => run::<S, 1, 24>(simd, self),
            (2, false, true) => run::<S, 2, 4>(simd, self),
            (2, false, false) => run::<S, 2, 6>(simd, self),
            (_, _, true) => run::<S, 1, 8>(simd, self),
            _ => run::<S, 1, 12>(simd, self),
        }
    }
}

#[inline(always)]
fn run<S: Simd, const VB: usize, const XB: usize>(simd: S, job: ConvRows) {
    // The input's channel stride as a constant where it is a common one: the XB broadcasts of
    // a block then address one base register with constant offsets instead of XB registers.
    match job.input.stride {
        1 => rows::<S, VB, XB, 1>(simd, job),
        16 => rows::<S, VB, XB, 16>(simd, job),
        32 => rows::<S, VB, XB, 32>(simd, job),
        64 => rows::<S, VB, XB, 64>(simd, job),
        _ => rows::<S, VB, XB, 0>(simd, job),
    }
}

/// [`run`] with the input's channel stride `CS` known at compile time (0: not known).
#[inline(always)]
fn rows<S: Simd, const VB: usize, const XB: usize, const CS: usize>(simd: S, job: ConvRows) {
    let ConvRows {
        conv,
        input,
        region,
        epi,
        out,
    } = job;
    let lanes = S::F32_LANES;
    let cs = conv.cout_p;
    let row_len = (region.nx + 2) * cs;
    let rows = region.y1 - region.y0;
    assert!(out.len() >= rows * row_len);
    // Rows up to padded row y1 + 1 are read.
    let plane_len = (region.nx + 2) * (region.y1 + 2) * input.stride;
    for p in input.planes {
        assert!(p.len() >= plane_len, "input plane too short for the region");
    }
    assert!(region.x1 <= region.nx && region.x0 <= region.x1);
    assert!(conv.weights.len() == 27 * conv.cin * cs && conv.bias.len() == cs);
    if let Some((skip, _)) = epi.skip {
        assert!(skip.len() >= (region.y1 + 1) * row_len);
    }
    for y in region.y0..region.y1 {
        let out_row = &mut out[(y - region.y0) * row_len..(y - region.y0 + 1) * row_len];
        for g in (0..cs).step_by(VB * lanes) {
            // SAFETY (the blocks): the asserts above bound every index a block touches:
            // rows y..y+2 of planes holding region.y1 + 2 rows, columns up to x1 + 1 < nx + 2.
            let width = region.x1 - region.x0;
            if width >= XB {
                // Whole blocks; the last one ends at x1 and may redo a few voxels of the one
                // before (same inputs, same result), so no slow remainder loop is needed.
                let mut x = region.x0;
                loop {
                    let at = x.min(region.x1 - XB);
                    unsafe {
                        block::<S, VB, XB, CS>(simd, conv, input, region.nx, y, at, g, epi, out_row)
                    };
                    x += XB;
                    if x >= region.x1 {
                        break;
                    }
                }
            } else {
                // Narrower than a block (small volumes): blocks of 4 with the same overlap, then
                // single voxels.
                let mut x = region.x0;
                while width >= 4 && x < region.x1 {
                    let at = x.min(region.x1 - 4);
                    unsafe {
                        block::<S, VB, 4, CS>(simd, conv, input, region.nx, y, at, g, epi, out_row)
                    };
                    x += 4;
                }
                while x < region.x1 {
                    unsafe {
                        block::<S, VB, 1, CS>(simd, conv, input, region.nx, y, x, g, epi, out_row)
                    };
                    x += 1;
                }
            }
        }
    }
}

/// `XB` voxels starting at interior column `x` of interior row `y`, output channels
/// `g..g + VB * lanes`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn block<S: Simd, const VB: usize, const XB: usize, const CS: usize>(
    simd: S,
    conv: &PackedConv,
    input: Inputs,
    nx: usize,
    y: usize,
    x: usize,
    g: usize,
    epi: Epilogue,
    out_row: &mut [f32],
) {
    let lanes = S::F32_LANES;
    let cs_out = conv.cout_p;
    let cs_in = if CS > 0 { CS } else { input.stride };
    let cin = conv.cin;
    let w = conv.weights.as_ptr();
    let mut acc = [[simd.splat_f32s(0.0); VB]; XB];
    for (v, a) in acc[0].iter_mut().enumerate() {
        *a = unsafe { load::<S>(conv.bias.as_ptr().add(g + v * lanes)) };
    }
    for xb in 1..XB {
        acc[xb] = acc[0];
    }
    let row_stride = (nx + 2) * cs_in;
    for dz in conv.planes() {
        let p = input.planes[dz].as_ptr();
        for dy in 0..3 {
            // Padded row y + dy holds interior row y + dy - 1: the tap's row.
            let row = unsafe { p.add((y + dy) * row_stride) };
            for dx in 0..3 {
                let tap = (dz * 3 + dy) * 3 + dx;
                // Padded column x + xb + dx is interior column x + xb + dx - 1.
                let src = unsafe { row.add((x + dx) * cs_in) };
                let wt = unsafe { w.add(tap * cin * cs_out + g) };
                for ci in 0..cin {
                    let mut wv = [simd.splat_f32s(0.0); VB];
                    for (v, wv) in wv.iter_mut().enumerate() {
                        *wv = unsafe { load::<S>(wt.add(ci * cs_out + v * lanes)) };
                    }
                    for (xb, acc) in acc.iter_mut().enumerate() {
                        let a = simd.splat_f32s(unsafe { *src.add(xb * cs_in + ci) });
                        for v in 0..VB {
                            acc[v] = simd.mul_add_e_f32s(a, wv[v], acc[v]);
                        }
                    }
                }
            }
        }
    }
    let skip_row = epi.skip.map(|(s, scale)| {
        // The skip plane has the output's layout; its padded row y + 1 is this row.
        (
            unsafe { s.as_ptr().add((y + 1) * (nx + 2) * cs_out) },
            scale,
        )
    });
    let zero = simd.splat_f32s(0.0);
    for (xb, acc) in acc.iter().enumerate() {
        let off = (x + 1 + xb) * cs_out + g;
        for (v, &a) in acc.iter().enumerate() {
            let mut r = a;
            if epi.relu {
                r = simd.max_f32s(r, zero);
            }
            if let Some((s, scale)) = skip_row {
                let sv = unsafe { load::<S>(s.add(off + v * lanes)) };
                r = simd.mul_add_e_f32s(r, simd.splat_f32s(scale), sv);
            }
            debug_assert!(off + (v + 1) * lanes <= out_row.len());
            unsafe { store::<S>(out_row.as_mut_ptr().add(off + v * lanes), r) };
        }
    }
}

/// A [`ConvRows`] job for a one-channel output (the dot-product kernel).
struct DotRows<'a>(ConvRows<'a>);

impl pulp::WithSimd for DotRows<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let DotRows(ConvRows {
            conv,
            input,
            region,
            epi,
            out,
        }) = self;
        let lanes = S::F32_LANES;
        let cs = input.stride;
        // One output channel, weights packed [tap][cin] with cin = the input's stride (padded
        // with zero weights by the caller): a tap's weights are whole vectors as they lie.
        assert!(conv.cout == 1 && conv.cout_p == 1, "a one-channel output");
        assert!(
            conv.cin == cs && cs.is_multiple_of(lanes),
            "input channels padded to the SIMD width, weights with them"
        );
        let w = &conv.weights;
        let nx = region.nx;
        let row_stride = (nx + 2) * cs;
        assert!(out.len() >= (region.y1 - region.y0) * nx);
        for p in input.planes {
            assert!(p.len() >= (region.y1 + 2) * row_stride);
        }
        if let Some((skip, _)) = epi.skip {
            // A one-channel plane with the border (the network's input).
            assert!(skip.len() >= (region.y1 + 1) * (nx + 2));
        }
        for y in region.y0..region.y1 {
            for x in region.x0..region.x1 {
                let mut acc = simd.splat_f32s(0.0);
                for dz in conv.planes() {
                    let plane = input.planes[dz];
                    for dy in 0..3 {
                        for dx in 0..3 {
                            let tap = (dz * 3 + dy) * 3 + dx;
                            let src = (y + dy) * row_stride + (x + dx) * cs;
                            for c in (0..cs).step_by(lanes) {
                                // SAFETY: bounded by the asserts on plane lengths above.
                                let (a, b) = unsafe {
                                    (
                                        load::<S>(plane.as_ptr().add(src + c)),
                                        load::<S>(w.as_ptr().add(tap * cs + c)),
                                    )
                                };
                                acc = simd.mul_add_e_f32s(a, b, acc);
                            }
                        }
                    }
                }
                let mut r = simd.reduce_sum_f32s(acc) + conv.bias[0];
                if epi.relu {
                    r = r.max(0.0);
                }
                if let Some((s, scale)) = epi.skip {
                    r = s[(y + 1) * (nx + 2) + x + 1] + scale * r;
                }
                out[(y - region.y0) * nx + x] = r;
            }
        }
    }
}

#[inline(always)]
unsafe fn load<S: Simd>(p: *const f32) -> S::f32s {
    unsafe { (p as *const S::f32s).read_unaligned() }
}

#[inline(always)]
unsafe fn store<S: Simd>(p: *mut f32, v: S::f32s) {
    unsafe { (p as *mut S::f32s).write_unaligned(v) }
}

/// The weight gradient of a convolution over one output plane, for training: adds to
/// `acc[tap][ci][co]` (27 taps in (dz, dy, dx) order, `cout_p` floats per input channel) the sum
/// over the plane's interior voxels (y, x) of `input[dz][y + dy][x + dx][ci] * grad[y + 1][x + 1][co]`.
/// `input` holds the padded planes z-1, z, z+1 of the layer's input (channel stride `cin`);
/// `grad` the padded plane z of the gradient at the layer's output (channel stride `cout_p`, a
/// multiple of the SIMD width). With `planar`, only the middle plane's taps are computed.
///
/// Register blocking as in [`conv_rows`] turned around: `J` input channels of one tap times `VB`
/// vectors of output channels stay in registers along a row, fed per voxel by `VB` loads of the
/// gradient and `J` broadcasts of the input.
#[allow(clippy::too_many_arguments)]
pub fn weight_grad(
    planar: bool,
    cin: usize,
    cout_p: usize,
    input: Inputs,
    grad: &[f32],
    nx: usize,
    ny: usize,
    acc: &mut [f32],
) {
    pulp::Arch::new().dispatch(WeightGrad {
        planar,
        cin,
        cout_p,
        input,
        grad,
        nx,
        ny,
        acc,
    });
}

struct WeightGrad<'a> {
    planar: bool,
    cin: usize,
    cout_p: usize,
    input: Inputs<'a>,
    grad: &'a [f32],
    nx: usize,
    ny: usize,
    acc: &'a mut [f32],
}

impl pulp::WithSimd for WeightGrad<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let lanes = S::F32_LANES;
        assert!(
            self.cout_p.is_multiple_of(lanes),
            "output channels padded to the SIMD width"
        );
        let vectors = self.cout_p / lanes;
        let vb = [4, 2, 1]
            .into_iter()
            .find(|&v| vectors.is_multiple_of(v))
            .unwrap();
        // Accumulators: most of the register file (32 vector registers with AVX-512, 16 else;
        // WebAssembly engines keep one of their 16 for themselves).
        let budget = match lanes {
            16 => 24,
            4 => 8,
            _ => 12,
        } / vb;
        let j = [16, 8, 4, 2, 1]
            .into_iter()
            .find(|&j| j <= budget.max(1) && self.cin.is_multiple_of(j))
            .unwrap();
        match (vb, j) {
            (4, 16 | 8 | 4) => grad_rows::<S, 4, 4>(simd, self),
            (4, 2) => grad_rows::<S, 4, 2>(simd, self),
            (4, _) => grad_rows::<S, 4, 1>(simd, self),
            (2, 16 | 8) => grad_rows::<S, 2, 8>(simd, self),
            (2, 4) => grad_rows::<S, 2, 4>(simd, self),
            (2, 2) => grad_rows::<S, 2, 2>(simd, self),
            (2, _) => grad_rows::<S, 2, 1>(simd, self),
            (_, 16) => grad_rows::<S, 1, 16>(simd, self),
            (_, 8) => grad_rows::<S, 1, 8>(simd, self),
            (_, 4) => grad_rows::<S, 1, 4>(simd, self),
            (_, 2) => grad_rows::<S, 1, 2>(simd, self),
            _ => grad_rows::<S, 1, 1>(simd, self),
        }
    }
}

#[inline(always)]
fn grad_rows<S: Simd, const VB: usize, const J: usize>(simd: S, job: WeightGrad) {
    let WeightGrad {
        planar,
        cin,
        cout_p,
        input,
        grad,
        nx,
        ny,
        acc,
    } = job;
    let lanes = S::F32_LANES;
    let cs_in = input.stride;
    assert!(cin <= cs_in && cin.is_multiple_of(J));
    let in_row = (nx + 2) * cs_in;
    let g_row = (nx + 2) * cout_p;
    for p in input.planes {
        assert!(p.len() >= (ny + 2) * in_row, "input plane too short");
    }
    assert!(grad.len() >= (ny + 2) * g_row, "gradient plane too short");
    assert!(acc.len() >= 27 * cin * cout_p);
    let planes = if planar { 1..2 } else { 0..3 };
    for y in 0..ny {
        // SAFETY: rows y..y+2 of the input planes and row y+1 of the gradient plane are in
        // bounds (asserts above); columns run to nx + 1 < nx + 2.
        let g = unsafe { grad.as_ptr().add((y + 1) * g_row + cout_p) };
        for dz in planes.clone() {
            for dy in 0..3 {
                let row = unsafe { input.planes[dz].as_ptr().add((y + dy) * in_row) };
                for dx in 0..3 {
                    let tap = (dz * 3 + dy) * 3 + dx;
                    for ci in (0..cin).step_by(J) {
                        let src = unsafe { row.add(dx * cs_in + ci) };
                        for co in (0..cout_p).step_by(VB * lanes) {
                            let mut a = [[simd.splat_f32s(0.0); VB]; J];
                            for x in 0..nx {
                                let mut gv = [simd.splat_f32s(0.0); VB];
                                for (v, gv) in gv.iter_mut().enumerate() {
                                    *gv = unsafe { load::<S>(g.add(x * cout_p + co + v * lanes)) };
                                }
                                for (j, a) in a.iter_mut().enumerate() {
                                    let b = simd.splat_f32s(unsafe { *src.add(x * cs_in + j) });
                                    for v in 0..VB {
                                        a[v] = simd.mul_add_e_f32s(b, gv[v], a[v]);
                                    }
                                }
                            }
                            for (j, a) in a.iter().enumerate() {
                                for (v, &a) in a.iter().enumerate() {
                                    let at = (tap * cin + ci + j) * cout_p + co + v * lanes;
                                    let dst = &mut acc[at..at + lanes];
                                    let sum = simd.add_f32s(unsafe { load::<S>(dst.as_ptr()) }, a);
                                    unsafe { store::<S>(dst.as_mut_ptr(), sum) };
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// [`weight_grad`] for a convolution with one output channel (the network's tail): `grad` is a
/// padded one-channel plane, and `acc[tap][ci]` gets the sums, vectorised over the input
/// channels (`cin`, the input's stride, a multiple of the SIMD width).
pub fn weight_grad_to_scalar(
    planar: bool,
    input: Inputs,
    grad: &[f32],
    nx: usize,
    ny: usize,
    acc: &mut [f32],
) {
    pulp::Arch::new().dispatch(WeightGradScalar(WeightGrad {
        planar,
        cin: input.stride,
        cout_p: 1,
        input,
        grad,
        nx,
        ny,
        acc,
    }));
}

/// A [`WeightGrad`] job for a one-channel output (vectorised over the input channels).
struct WeightGradScalar<'a>(WeightGrad<'a>);

impl pulp::WithSimd for WeightGradScalar<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: Simd>(self, simd: S) {
        let WeightGradScalar(WeightGrad {
            planar,
            input,
            grad,
            nx,
            ny,
            acc,
            ..
        }) = self;
        let lanes = S::F32_LANES;
        let cs = input.stride;
        assert!(
            cs.is_multiple_of(lanes),
            "input channels padded to the SIMD width"
        );
        let in_row = (nx + 2) * cs;
        for p in input.planes {
            assert!(p.len() >= (ny + 2) * in_row, "input plane too short");
        }
        assert!(grad.len() >= (ny + 2) * (nx + 2));
        assert!(acc.len() >= 27 * cs);
        let planes = if planar { 1..2 } else { 0..3 };
        for dz in planes {
            for dy in 0..3 {
                for dx in 0..3 {
                    let tap = (dz * 3 + dy) * 3 + dx;
                    // Channel vectors of this tap, four at a time in registers along a row.
                    for c0 in (0..cs).step_by(4 * lanes) {
                        let n = ((cs - c0) / lanes).min(4);
                        let mut a = [simd.splat_f32s(0.0); 4];
                        for y in 0..ny {
                            let g = &grad[(y + 1) * (nx + 2) + 1..(y + 1) * (nx + 2) + 1 + nx];
                            // SAFETY: rows y + dy <= ny + 1 and columns x + dx <= nx + 1 of
                            // planes holding ny + 2 rows of nx + 2 voxels (asserts above).
                            let row = unsafe {
                                input.planes[dz]
                                    .as_ptr()
                                    .add((y + dy) * in_row + dx * cs + c0)
                            };
                            for (x, &gx) in g.iter().enumerate() {
                                let b = simd.splat_f32s(gx);
                                for (k, a) in a.iter_mut().enumerate().take(n) {
                                    let v = unsafe { load::<S>(row.add(x * cs + k * lanes)) };
                                    *a = simd.mul_add_e_f32s(b, v, *a);
                                }
                            }
                        }
                        for (k, a) in a.iter().enumerate().take(n) {
                            let at = tap * cs + c0 + k * lanes;
                            let dst = &mut acc[at..at + lanes];
                            let sum = simd.add_f32s(unsafe { load::<S>(dst.as_ptr()) }, *a);
                            unsafe { store::<S>(dst.as_mut_ptr(), sum) };
                        }
                    }
                }
            }
        }
    }
}
