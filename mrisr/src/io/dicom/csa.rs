//! The two Siemens private values a mosaic needs: how many slices it tiles and the slice
//! normal that fixes their order. They live in the Siemens "CSA image header" (0029,xx10), a
//! small binary format ("SV10") documented by nibabel and dcm2niix; (0019,xx0A) also carries
//! the slice count.

use dicom_core::Tag;
use dicom_object::InMemDicomObject;

#[derive(Clone, Debug, Default)]
pub(crate) struct SiemensInfo {
    pub images_in_mosaic: Option<usize>,
    pub slice_normal: Option<[f64; 3]>,
}

/// Element number of the private block whose creator is `creator` in `group`.
fn private_block(obj: &InMemDicomObject, group: u16, creator: &str) -> Option<u16> {
    (0x10u16..=0xFF).find(|&el| {
        obj.get(Tag(group, el))
            .and_then(|e| e.to_str().ok())
            .is_some_and(|s| s.trim_end_matches(['\0', ' ']) == creator)
    })
}

pub(crate) fn siemens_info(obj: &InMemDicomObject) -> SiemensInfo {
    let mut info = SiemensInfo::default();
    if let Some(block) = private_block(obj, 0x0029, "SIEMENS CSA HEADER")
        && let Some(bytes) = obj
            .get(Tag(0x0029, (block << 8) | 0x10))
            .and_then(|e| e.to_bytes().ok())
    {
        let fields = parse_csa(&bytes);
        let find = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        info.images_in_mosaic = find("NumberOfImagesInMosaic")
            .and_then(|v| v.first())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|n| *n >= 1.0 && *n < 10_000.0)
            .map(|n| n as usize);
        info.slice_normal = find("SliceNormalVector").and_then(|v| {
            let n: Vec<f64> = v.iter().filter_map(|s| s.trim().parse().ok()).collect();
            (n.len() >= 3 && n.iter().all(|x| x.is_finite())).then(|| [n[0], n[1], n[2]])
        });
    }
    if info.images_in_mosaic.is_none()
        && let Some(block) = private_block(obj, 0x0019, "SIEMENS MR HEADER")
        && let Some(e) = obj.get(Tag(0x0019, (block << 8) | 0x0A))
    {
        let n = e.to_int::<i64>().ok().or_else(|| {
            // Implicit VR files hold private values as raw bytes (a little-endian US).
            let b = e.to_bytes().ok()?;
            (b.len() >= 2).then(|| u16::from_le_bytes([b[0], b[1]]) as i64)
        });
        info.images_in_mosaic = n.filter(|n| (1..10_000).contains(n)).map(|n| n as usize);
    }
    info
}

fn rd_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 4)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parses an "SV10" CSA header into (name, item strings). Bad input yields what was read so far.
pub(crate) fn parse_csa(b: &[u8]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    if !b.starts_with(b"SV10") {
        return out;
    }
    let Some(n_tags) = rd_u32(b, 8) else {
        return out;
    };
    let mut pos = 16usize;
    for _ in 0..n_tags.min(1000) {
        let Some(name_bytes) = b.get(pos..pos + 64) else {
            break;
        };
        let name_end = name_bytes.iter().position(|&c| c == 0).unwrap_or(64);
        let name = String::from_utf8_lossy(&name_bytes[..name_end]).to_string();
        let Some(n_items) = rd_u32(b, pos + 76) else {
            break;
        };
        pos += 84;
        let mut items = Vec::new();
        for _ in 0..n_items.min(10_000) {
            let Some(len) = rd_u32(b, pos + 4) else {
                return out;
            };
            pos += 16;
            let len = len as usize;
            let Some(data) = b.get(pos..pos + len) else {
                return out;
            };
            let end = data.iter().position(|&c| c == 0).unwrap_or(len);
            let s = String::from_utf8_lossy(&data[..end]).trim().to_string();
            if !s.is_empty() {
                items.push(s);
            }
            pos += (len + 3) & !3;
        }
        out.push((name, items));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_csa_survives_garbage() {
        assert!(parse_csa(b"").is_empty());
        assert!(parse_csa(b"SV10\x04\x03\x02\x01\xff\xff\xff\xff").is_empty());
        let mut b = b"SV10\x04\x03\x02\x01\x01\x00\x00\x00\x4d\x00\x00\x00".to_vec();
        b.extend_from_slice(&[0u8; 64]);
        b.extend_from_slice(&[1, 0, 0, 0, b'U', b'S', 0, 0, 0, 0, 0, 0, 5, 0, 0, 0]);
        b.extend_from_slice(&[0u8; 4]);
        // item header claims more bytes than there are
        b.extend_from_slice(&[0, 0, 0, 0, 0xff, 0xff, 0, 0]);
        let _ = parse_csa(&b);
    }
}
