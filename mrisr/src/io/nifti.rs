//! NIfTI-1 reading and writing (`.nii`, `.nii.gz`, and `.hdr`/`.img` pairs for reading).
//!
//! Reading follows nibabel exactly where it matters for geometry and intensities:
//! - the affine is the sform if `sform_code > 0`, else the qform if `qform_code > 0`, else
//!   nibabel's fallback (`get_base_affine`: `diag(-pixdim1, pixdim2, pixdim3)` with the volume
//!   centre at the origin). A chosen sform or qform that is degenerate (non-finite, or a zero-length
//!   column) is skipped for the next one, because a [`Volume`] needs a positive voxel size.
//! - voxels are scaled by `scl_slope` / `scl_inter` unless the slope is 0 or not finite (then
//!   the stored values are used as they are, and the intercept is ignored).
//! - spatial units (`xyzt_units`) are not applied: the affine is taken to be in mm, as nibabel does.
//!
//! A 4D (or 5D...) file gives one [`Volume`] per 3D sub-volume, in file order (`t` slowest).
//!
//! Writing always produces a single-file NIfTI-1 (`n+1`, `vox_offset` 352) of float32 voxels
//! with `scl_slope` 1, `sform_code` = `qform_code` = 1 (scanner), the sform equal to the affine
//! and the qform the closest rigid rotation with the right handedness (`qfac` = `pixdim[0]`
//! is -1 when the affine's determinant is negative).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use nifti::{Endianness, NiftiError, NiftiHeader};

use crate::geometry::{det3, nearest_rotation};
use crate::volume::{Affine, Metadata, Volume};
use crate::{Error, Result};

/// The largest number of voxels in one file that we accept (2^31).
pub const MAX_VOXELS: u64 = 1 << 31;

/// Reads every 3D volume in a NIfTI-1 file (`.nii`, `.nii.gz`, or the `.hdr` of a pair).
///
/// Gzip is detected from the content, not the name. For a `.hdr` the voxels are read from the
/// `.img` (or `.img.gz`) next to it.
pub fn read_nifti(path: impl AsRef<Path>) -> Result<Vec<Volume>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let bytes = maybe_gunzip(path, bytes)?;
    let (hdr, desc) = parse_header(path, &bytes)?;
    let mut vols = if &hdr.magic == b"ni1\0" {
        let img = companion_image(path)?;
        let img_bytes = std::fs::read(&img).map_err(|e| Error::io(&img, e))?;
        let img_bytes = maybe_gunzip(&img, img_bytes)?;
        let offset = hdr.vox_offset.max(0.0) as usize;
        decode(&img, &hdr, desc, &img_bytes, offset)?
    } else {
        decode_single(path, &hdr, desc, &bytes)?
    };
    // A BIDS sidecar (dcm2niix's `.json` beside the image) may say how thick the slices are.
    if let Some(t) = sidecar_slice_thickness(path) {
        vols.iter_mut()
            .for_each(|v| v.meta.slice_thickness_mm = Some(t));
    }
    Ok(vols)
}

/// `SliceThickness` from the `.json` sidecar beside `path` (same name without `.nii(.gz)`),
/// when there is one that says.
fn sidecar_slice_thickness(path: &Path) -> Option<f64> {
    let name = path.file_name()?.to_str()?;
    let lower = name.to_ascii_lowercase();
    let stem = [".nii.gz", ".nii", ".hdr", ".hdr.gz"]
        .iter()
        .find(|e| lower.ends_with(*e))
        .map(|e| &name[..name.len() - e.len()])?;
    let text = std::fs::read_to_string(path.with_file_name(format!("{stem}.json"))).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get("SliceThickness")?
        .as_f64()
        .filter(|t| t.is_finite() && *t > 0.0)
}

/// Reads the only 3D volume of a NIfTI-1 file; an error if it holds more than one.
pub fn read_nifti_volume(path: impl AsRef<Path>) -> Result<Volume> {
    let path = path.as_ref();
    single(path, read_nifti(path)?)
}

/// Reads every 3D volume of a single-file NIfTI-1 (`.nii` or `.nii.gz`) held in memory.
/// `name` is only used in error messages and as [`Metadata::source`].
pub fn read_nifti_bytes(name: impl AsRef<Path>, bytes: &[u8]) -> Result<Vec<Volume>> {
    let name = name.as_ref();
    let owned;
    let bytes = if is_gzip(bytes) {
        owned = gunzip(name, bytes)?;
        &owned[..]
    } else {
        bytes
    };
    let (hdr, desc) = parse_header(name, bytes)?;
    if &hdr.magic == b"ni1\0" {
        return Err(Error::nifti(
            name,
            "this is the header of a .hdr/.img pair; its voxels are in the .img file \
             (read it from a path, or convert it to a single .nii)",
        ));
    }
    decode_single(name, &hdr, desc, bytes)
}

/// Reads the only 3D volume of an in-memory NIfTI-1; an error if it holds more than one.
pub fn read_nifti_volume_bytes(name: impl AsRef<Path>, bytes: &[u8]) -> Result<Volume> {
    let name = name.as_ref();
    single(name, read_nifti_bytes(name, bytes)?)
}

/// Writes `vol` as a float32 NIfTI-1 file, gzip-compressed if the name ends in `.gz`.
pub fn write_nifti(vol: &Volume, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let gz = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.to_ascii_lowercase().ends_with(".gz"));
    let bytes = write_nifti_bytes(vol, gz).map_err(|e| match e {
        Error::Nifti { reason, .. } => Error::nifti(path, reason),
        other => other,
    })?;
    super::write_atomically(path, &bytes)
}

/// Encodes `vol` as a single-file float32 NIfTI-1 (`n+1`), gzip-compressed if `gzip`.
///
/// Fails only for volumes a NIfTI-1 header cannot describe: a dimension above 32767, zero
/// voxels, or a non-finite affine.
pub fn write_nifti_bytes(vol: &Volume, gzip: bool) -> Result<Vec<u8>> {
    let name = if vol.meta.source.is_empty() {
        "<volume>"
    } else {
        vol.meta.source.as_str()
    };
    if vol.dims.iter().any(|&d| d == 0 || d > i16::MAX as usize) {
        return Err(Error::nifti(
            name,
            format!(
                "dimensions {:?} cannot be written to NIfTI-1 (each must be 1..=32767)",
                vol.dims
            ),
        ));
    }
    if vol.data.len() != vol.dims.iter().product::<usize>() {
        return Err(Error::nifti(
            name,
            format!(
                "{} voxels do not match dimensions {:?}",
                vol.data.len(),
                vol.dims
            ),
        ));
    }
    if vol.affine.iter().flatten().any(|v| !v.is_finite()) {
        return Err(Error::nifti(name, "the affine has non-finite entries"));
    }
    let header = encode_header(vol);
    let mut raw = Vec::with_capacity(header.len() + 4 * vol.data.len());
    raw.extend_from_slice(&header);
    for v in &vol.data {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    if !gzip {
        return Ok(raw);
    }
    let mut enc = GzEncoder::new(Vec::with_capacity(raw.len() / 3), Compression::fast());
    enc.write_all(&raw)
        .and_then(|_| enc.finish())
        .map_err(|e| Error::nifti(name, format!("gzip compression failed: {e}")))
}

/// The rigid part of an affine as a NIfTI quaternion: `(b, c, d, qfac)`.
///
/// The voxel sizes are divided out, the third column is negated when the determinant is
/// negative (then `qfac` = -1), and the nearest rotation is found by polar decomposition, as
/// nibabel's `set_qform` does. `None` if the 3x3 part is singular.
pub fn affine_to_quaternion(affine: &Affine) -> Option<([f64; 3], f64)> {
    let zooms = Volume::spacing_from_affine(affine);
    if zooms.iter().any(|&z| z <= 0.0 || !z.is_finite()) {
        return None;
    }
    let mut r = [[0.0f64; 3]; 3];
    for (row, rr) in r.iter_mut().enumerate() {
        for (c, v) in rr.iter_mut().enumerate() {
            *v = affine[row][c] / zooms[c];
        }
    }
    let mut qfac = 1.0;
    if det3(&r) < 0.0 {
        qfac = -1.0;
        for row in r.iter_mut() {
            row[2] = -row[2];
        }
    }
    if det3(&r).abs() < 1e-8 {
        return None;
    }
    let r = nearest_rotation(r)?;
    // nifti1_io's mat44_to_quatern.
    let (r11, r12, r13) = (r[0][0], r[0][1], r[0][2]);
    let (r21, r22, r23) = (r[1][0], r[1][1], r[1][2]);
    let (r31, r32, r33) = (r[2][0], r[2][1], r[2][2]);
    let trace = r11 + r22 + r33 + 1.0;
    let (a, mut b, mut c, mut d): (f64, f64, f64, f64);
    if trace > 0.5 {
        a = 0.5 * trace.sqrt();
        b = 0.25 * (r32 - r23) / a;
        c = 0.25 * (r13 - r31) / a;
        d = 0.25 * (r21 - r12) / a;
    } else {
        let xd = 1.0 + r11 - (r22 + r33);
        let yd = 1.0 + r22 - (r11 + r33);
        let zd = 1.0 + r33 - (r11 + r22);
        if xd > 1.0 {
            b = 0.5 * xd.sqrt();
            c = 0.25 * (r12 + r21) / b;
            d = 0.25 * (r13 + r31) / b;
            a = 0.25 * (r32 - r23) / b;
        } else if yd > 1.0 {
            c = 0.5 * yd.sqrt();
            b = 0.25 * (r12 + r21) / c;
            d = 0.25 * (r23 + r32) / c;
            a = 0.25 * (r13 - r31) / c;
        } else {
            d = 0.5 * zd.sqrt();
            b = 0.25 * (r13 + r31) / d;
            c = 0.25 * (r23 + r32) / d;
            a = 0.25 * (r21 - r12) / d;
        }
        if a < 0.0 {
            b = -b;
            c = -c;
            d = -d;
        }
    }
    Some(([b, c, d], qfac))
}

/// The affine a qform describes (nibabel's `get_qform`): rotation from the quaternion
/// `(b, c, d)`, voxel sizes `pixdim`, `qfac` applied to the third column, then the offset.
pub fn quaternion_to_affine(
    bcd: [f64; 3],
    qfac: f64,
    pixdim: [f64; 3],
    offset: [f64; 3],
) -> Affine {
    let [b, c, d] = bcd;
    let w2 = 1.0 - (b * b + c * c + d * d);
    let (a, b, c, d) = if w2 < 1e-7 {
        // Not a unit quaternion part: normalise (b, c, d) and take a = 0, as nifti1_io does.
        let n = (b * b + c * c + d * d).sqrt();
        if n > 0.0 {
            (0.0, b / n, c / n, d / n)
        } else {
            (1.0, 0.0, 0.0, 0.0)
        }
    } else {
        (w2.sqrt(), b, c, d)
    };
    let r = [
        [
            a * a + b * b - c * c - d * d,
            2.0 * (b * c - a * d),
            2.0 * (b * d + a * c),
        ],
        [
            2.0 * (b * c + a * d),
            a * a + c * c - b * b - d * d,
            2.0 * (c * d - a * b),
        ],
        [
            2.0 * (b * d - a * c),
            2.0 * (c * d + a * b),
            a * a + d * d - c * c - b * b,
        ],
    ];
    let q = if qfac < 0.0 { -1.0 } else { 1.0 };
    let z = [pixdim[0], pixdim[1], pixdim[2] * q];
    let mut m = [[0.0; 4]; 4];
    for row in 0..3 {
        for col in 0..3 {
            m[row][col] = r[row][col] * z[col];
        }
        m[row][3] = offset[row];
    }
    m[3][3] = 1.0;
    m
}

// ---------------------------------------------------------------------------------------------
// Reading

fn single(path: &Path, mut vols: Vec<Volume>) -> Result<Volume> {
    match vols.len() {
        1 => Ok(vols.pop().unwrap()),
        n => Err(Error::nifti(
            path,
            format!("holds {n} 3D volumes where one was expected"),
        )),
    }
}

fn is_gzip(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b
}

fn maybe_gunzip(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>> {
    if is_gzip(&bytes) {
        gunzip(path, &bytes)
    } else {
        Ok(bytes)
    }
}

fn gunzip(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(3));
    MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| Error::nifti(path, format!("cannot decompress gzip data: {e}")))?;
    Ok(out)
}

fn companion_image(hdr_path: &Path) -> Result<PathBuf> {
    let s = hdr_path.to_string_lossy();
    let stem = s
        .strip_suffix(".hdr.gz")
        .or_else(|| s.strip_suffix(".hdr"))
        .or_else(|| s.strip_suffix(".HDR"));
    if let Some(stem) = stem {
        for ext in [".img", ".img.gz", ".IMG"] {
            let p = PathBuf::from(format!("{stem}{ext}"));
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(Error::nifti(
        hdr_path,
        "a .hdr/.img pair header, but no .img file was found next to it",
    ))
}

/// Parses the 348-byte header; returns it with its description decoded.
fn parse_header(path: &Path, bytes: &[u8]) -> Result<(NiftiHeader, String)> {
    if bytes.len() >= 4 {
        let s = i32::from_le_bytes(bytes[0..4].try_into().unwrap());
        if s == 540 || s.swap_bytes() == 540 {
            return Err(Error::nifti(
                path,
                "NIfTI-2 files are not supported (only NIfTI-1)",
            ));
        }
    }
    if bytes.len() < 348 {
        return Err(Error::nifti(
            path,
            format!(
                "too short for a NIfTI-1 header ({} bytes, need 348): truncated or not NIfTI",
                bytes.len()
            ),
        ));
    }
    // The header parser only reads fixed-size fields; guard against a panic anyway so a bad
    // file can never take the caller down (where unwinding is available).
    let parsed = std::panic::catch_unwind(|| NiftiHeader::from_reader(&bytes[..348]));
    let hdr = match parsed {
        Ok(Ok(h)) => h,
        Ok(Err(NiftiError::InvalidFormat)) => {
            return Err(Error::nifti(
                path,
                "not a NIfTI-1 file (no 'n+1' or 'ni1' magic at byte 344)",
            ));
        }
        Ok(Err(e)) => return Err(Error::nifti(path, format!("bad NIfTI-1 header: {e}"))),
        Err(_) => return Err(Error::nifti(path, "bad NIfTI-1 header")),
    };
    if hdr.sizeof_hdr != 348 {
        return Err(Error::nifti(
            path,
            format!(
                "sizeof_hdr is {}, not 348: not a NIfTI-1 file",
                hdr.sizeof_hdr
            ),
        ));
    }
    let end = hdr
        .descrip
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(hdr.descrip.len());
    let desc = String::from_utf8_lossy(&hdr.descrip[..end])
        .trim()
        .to_string();
    Ok((hdr, desc))
}

fn decode_single(
    path: &Path,
    hdr: &NiftiHeader,
    desc: String,
    bytes: &[u8],
) -> Result<Vec<Volume>> {
    let off = hdr.vox_offset;
    if !off.is_finite() || off < 0.0 {
        return Err(Error::nifti(path, format!("invalid vox_offset {off}")));
    }
    // Some writers leave vox_offset 0 in single files; the data then starts after the header
    // and the 4-byte extension flag.
    let offset = if off < 348.0 { 352 } else { off as usize };
    decode(path, hdr, desc, bytes, offset)
}

/// Bytes per voxel and a converter for the supported datatypes.
fn datatype_size(code: i16) -> Option<(usize, &'static str)> {
    Some(match code {
        2 => (1, "uint8"),
        4 => (2, "int16"),
        8 => (4, "int32"),
        16 => (4, "float32"),
        64 => (8, "float64"),
        256 => (1, "int8"),
        512 => (2, "uint16"),
        768 => (4, "uint32"),
        1024 => (8, "int64"),
        1280 => (8, "uint64"),
        _ => return None,
    })
}

fn datatype_name(code: i16) -> String {
    match code {
        1 => "binary (1 bit)".into(),
        32 => "complex64".into(),
        128 => "RGB24".into(),
        1536 => "float128".into(),
        1792 => "complex128".into(),
        2048 => "complex256".into(),
        2304 => "RGBA32".into(),
        other => format!("code {other}"),
    }
}

fn decode(
    path: &Path,
    hdr: &NiftiHeader,
    desc: String,
    bytes: &[u8],
    offset: usize,
) -> Result<Vec<Volume>> {
    // dims are signed 16-bit in the file; the crate reads them unsigned.
    let ndim = hdr.dim[0] as i16;
    if !(1..=7).contains(&ndim) {
        return Err(Error::nifti(
            path,
            format!("invalid number of dimensions dim[0] = {ndim}"),
        ));
    }
    let ndim = ndim as usize;
    let mut dims = [1usize; 7];
    for (a, slot) in dims.iter_mut().enumerate().take(ndim) {
        let d = hdr.dim[a + 1] as i16;
        if d <= 0 {
            return Err(Error::nifti(
                path,
                format!(
                    "dimension {} is {d}: every dimension must be at least 1",
                    a + 1
                ),
            ));
        }
        *slot = d as usize;
    }
    let total: u64 = dims.iter().map(|&d| d as u64).product();
    if total > MAX_VOXELS {
        return Err(Error::nifti(
            path,
            format!("{total} voxels is more than the supported 2^31"),
        ));
    }
    let Some((size, _)) = datatype_size(hdr.datatype) else {
        return Err(Error::nifti(
            path,
            format!(
                "unsupported datatype {} (only scalar integer and float voxels)",
                datatype_name(hdr.datatype)
            ),
        ));
    };
    let nbytes = total as usize * size;
    let Some(data) = bytes.get(offset..).filter(|d| d.len() >= nbytes) else {
        return Err(Error::nifti(
            path,
            format!(
                "truncated: the header promises {nbytes} bytes of voxels from byte {offset}, \
                 but the file has {}",
                bytes.len()
            ),
        ));
    };
    let (slope, inter) = scaling(path, hdr)?;
    let affine = best_affine(hdr, [dims[0], dims[1], dims[2]]);
    let spacing = Volume::spacing_from_affine(&affine);
    let n3 = dims[0] * dims[1] * dims[2];
    let nvol = total as usize / n3;
    let big = hdr.endianness == Endianness::Big;
    let meta = Metadata {
        description: desc,
        source: path.display().to_string(),
        ..Metadata::default()
    };
    let mut vols = Vec::with_capacity(nvol);
    for t in 0..nvol {
        let chunk = &data[t * n3 * size..(t + 1) * n3 * size];
        let mut out = Vec::with_capacity(n3);
        convert(chunk, hdr.datatype, big, slope, inter, &mut out);
        vols.push(Volume {
            dims: [dims[0], dims[1], dims[2]],
            spacing,
            affine,
            data: out,
            meta: meta.clone(),
        });
    }
    Ok(vols)
}

/// nibabel's `get_slope_inter`: no scaling when the slope is 0 or not finite.
fn scaling(path: &Path, hdr: &NiftiHeader) -> Result<(Option<f64>, f64)> {
    let slope = hdr.scl_slope as f64;
    let inter = hdr.scl_inter as f64;
    if slope == 0.0 || !slope.is_finite() {
        return Ok((None, 0.0));
    }
    if !inter.is_finite() {
        return Err(Error::nifti(
            path,
            format!("valid scl_slope {slope} but invalid scl_inter {inter}"),
        ));
    }
    if slope == 1.0 && inter == 0.0 {
        return Ok((None, 0.0));
    }
    Ok((Some(slope), inter))
}

fn convert(chunk: &[u8], code: i16, big: bool, slope: Option<f64>, inter: f64, out: &mut Vec<f32>) {
    macro_rules! conv {
        ($t:ty, $n:expr) => {{
            let it = chunk.chunks_exact($n).map(|c| {
                let a: [u8; $n] = c.try_into().unwrap();
                if big {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                }
            });
            match slope {
                None => out.extend(it.map(|v| v as f32)),
                Some(s) => out.extend(it.map(|v| (v as f64 * s + inter) as f32)),
            }
        }};
    }
    match code {
        2 => conv!(u8, 1),
        4 => conv!(i16, 2),
        8 => conv!(i32, 4),
        16 => conv!(f32, 4),
        64 => conv!(f64, 8),
        256 => conv!(i8, 1),
        512 => conv!(u16, 2),
        768 => conv!(u32, 4),
        1024 => conv!(i64, 8),
        1280 => conv!(u64, 8),
        _ => unreachable!("datatype checked before"),
    }
}

fn usable(a: &Affine) -> bool {
    a.iter().flatten().all(|v| v.is_finite())
        && Volume::spacing_from_affine(a).iter().all(|&s| s > 0.0)
        && det3(&[
            [a[0][0], a[0][1], a[0][2]],
            [a[1][0], a[1][1], a[1][2]],
            [a[2][0], a[2][1], a[2][2]],
        ])
        .abs()
            > 0.0
}

/// sform if `sform_code > 0`, else qform if `qform_code > 0`, else nibabel's base affine.
fn best_affine(hdr: &NiftiHeader, dims: [usize; 3]) -> Affine {
    if hdr.sform_code > 0 {
        let rows = [hdr.srow_x, hdr.srow_y, hdr.srow_z];
        let mut a = [[0.0; 4]; 4];
        for r in 0..3 {
            for c in 0..4 {
                a[r][c] = rows[r][c] as f64;
            }
        }
        a[3][3] = 1.0;
        if usable(&a) {
            return a;
        }
    }
    let pix: [f64; 3] = std::array::from_fn(|a| (hdr.pixdim[a + 1] as f64).abs());
    if hdr.qform_code > 0 {
        let a = quaternion_to_affine(
            [
                hdr.quatern_b as f64,
                hdr.quatern_c as f64,
                hdr.quatern_d as f64,
            ],
            hdr.pixdim[0] as f64,
            pix,
            [
                hdr.quatern_x as f64,
                hdr.quatern_y as f64,
                hdr.quatern_z as f64,
            ],
        );
        if usable(&a) {
            return a;
        }
    }
    // nibabel's AnalyzeHeader.get_base_affine: x flipped (radiological), centre at the origin.
    let z: [f64; 3] = std::array::from_fn(|a| {
        if pix[a] > 0.0 && pix[a].is_finite() {
            pix[a]
        } else {
            1.0
        }
    });
    let mut a = [[0.0; 4]; 4];
    let sign = [-1.0, 1.0, 1.0];
    for r in 0..3 {
        a[r][r] = sign[r] * z[r];
        a[r][3] = -((dims[r] as f64 - 1.0) / 2.0) * sign[r] * z[r];
    }
    a[3][3] = 1.0;
    a
}

// ---------------------------------------------------------------------------------------------
// Writing

fn encode_header(vol: &Volume) -> Vec<u8> {
    let mut h = vec![0u8; 352];
    let put_i16 =
        |h: &mut Vec<u8>, at: usize, v: i16| h[at..at + 2].copy_from_slice(&v.to_le_bytes());
    let put_i32 =
        |h: &mut Vec<u8>, at: usize, v: i32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());
    let put_f32 =
        |h: &mut Vec<u8>, at: usize, v: f32| h[at..at + 4].copy_from_slice(&v.to_le_bytes());

    put_i32(&mut h, 0, 348); // sizeof_hdr
    h[38] = b'r'; // regular (Analyze legacy)
    let dim = [
        3,
        vol.dims[0] as i16,
        vol.dims[1] as i16,
        vol.dims[2] as i16,
        1,
        1,
        1,
        1,
    ];
    for (n, d) in dim.iter().enumerate() {
        put_i16(&mut h, 40 + 2 * n, *d);
    }
    put_i16(&mut h, 70, 16); // datatype: float32
    put_i16(&mut h, 72, 32); // bitpix
    let spacing = Volume::spacing_from_affine(&vol.affine);
    let quat = affine_to_quaternion(&vol.affine);
    let qfac = quat.map_or(1.0, |(_, q)| q);
    let pixdim = [qfac, spacing[0], spacing[1], spacing[2], 1.0, 1.0, 1.0, 1.0];
    for (n, p) in pixdim.iter().enumerate() {
        put_f32(&mut h, 76 + 4 * n, *p as f32);
    }
    put_f32(&mut h, 108, 352.0); // vox_offset
    put_f32(&mut h, 112, 1.0); // scl_slope
    put_f32(&mut h, 116, 0.0); // scl_inter
    h[123] = 2; // xyzt_units: mm
    let (lo, hi) = vol.min_max();
    put_f32(&mut h, 124, hi); // cal_max
    put_f32(&mut h, 128, lo); // cal_min
    let desc = truncate_utf8(&vol.meta.description, 79);
    h[148..148 + desc.len()].copy_from_slice(desc.as_bytes());
    put_i16(&mut h, 252, if quat.is_some() { 1 } else { 0 }); // qform_code
    put_i16(&mut h, 254, 1); // sform_code
    if let Some((bcd, _)) = quat {
        for (n, q) in bcd.iter().enumerate() {
            put_f32(&mut h, 256 + 4 * n, *q as f32);
        }
    }
    for r in 0..3 {
        put_f32(&mut h, 268 + 4 * r, vol.affine[r][3] as f32); // qoffset
    }
    for r in 0..3 {
        for c in 0..4 {
            put_f32(&mut h, 280 + 16 * r + 4 * c, vol.affine[r][c] as f32);
        }
    }
    h[344..348].copy_from_slice(b"n+1\0");
    // Bytes 348..352: extension flag, all zero (no extensions).
    h
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quaternion_round_trip_oblique_and_flipped() {
        let (s, c) = (0.3f64.sin(), 0.3f64.cos());
        for flip in [1.0, -1.0] {
            let affine = [
                [0.5 * c, -0.7 * s, 0.0, 10.0],
                [0.5 * s, 0.7 * c, 0.0, -20.0],
                [0.0, 0.0, 2.0 * flip, 5.0],
                [0.0, 0.0, 0.0, 1.0],
            ];
            let (bcd, qfac) = affine_to_quaternion(&affine).unwrap();
            assert_eq!(qfac, flip);
            let back = quaternion_to_affine(bcd, qfac, [0.5, 0.7, 2.0], [10.0, -20.0, 5.0]);
            for r in 0..4 {
                for cc in 0..4 {
                    assert!(
                        (back[r][cc] - affine[r][cc]).abs() < 1e-12,
                        "{back:?} vs {affine:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn truncates_on_char_boundary() {
        let s = "é".repeat(50); // 100 bytes
        let t = truncate_utf8(&s, 79);
        assert_eq!(t.len(), 78);
    }
}
