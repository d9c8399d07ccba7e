//! A minimal zip writer (stored entries, no compression) for the exported DICOM series.
//!
//! DICOM pixel data compresses poorly with deflate, and a stored zip needs nothing but CRC-32,
//! so no zip crate is pulled into the wasm build. Archives above 4 GiB (zip64) are refused.

/// CRC-32 (IEEE 802.3, the zip polynomial) of `data`.
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        std::array::from_fn(|n| {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            c
        })
    });
    !data.iter().fold(!0u32, |c, &b| {
        table[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8)
    })
}

/// MS-DOS date and time of a zip entry.
#[derive(Clone, Copy, Debug)]
pub struct DosTime {
    pub time: u16,
    pub date: u16,
}

impl DosTime {
    /// From a calendar date and time (years before 1980 become 1980).
    pub fn new(year: u32, month: u32, day: u32, hour: u32, min: u32, sec: u32) -> Self {
        let y = year.clamp(1980, 2107) - 1980;
        DosTime {
            time: ((hour << 11) | (min << 5) | (sec / 2)) as u16,
            date: ((y << 9) | (month << 5) | day) as u16,
        }
    }
}

/// A zip archive holding `files` (name, bytes) uncompressed, in order.
pub fn write_stored(files: &[(String, Vec<u8>)], when: DosTime) -> Result<Vec<u8>, String> {
    let total: usize = files
        .iter()
        .map(|(n, b)| 76 + 2 * n.len() + b.len())
        .sum::<usize>()
        + 22;
    if total > u32::MAX as usize || files.len() > u16::MAX as usize {
        return Err(format!(
            "the zip would hold {} files and {} MB, more than a zip without zip64 allows",
            files.len(),
            total >> 20
        ));
    }
    let mut out = Vec::with_capacity(total);
    let mut central = Vec::new();
    let u16le = |v: &mut Vec<u8>, x: u16| v.extend_from_slice(&x.to_le_bytes());
    let u32le = |v: &mut Vec<u8>, x: u32| v.extend_from_slice(&x.to_le_bytes());
    for (name, bytes) in files {
        let offset = out.len() as u32;
        let crc = crc32(bytes);
        let size = bytes.len() as u32;
        // local file header
        u32le(&mut out, 0x0403_4b50);
        u16le(&mut out, 20); // version needed
        u16le(&mut out, 0x0800); // UTF-8 names
        u16le(&mut out, 0); // stored
        u16le(&mut out, when.time);
        u16le(&mut out, when.date);
        u32le(&mut out, crc);
        u32le(&mut out, size);
        u32le(&mut out, size);
        u16le(&mut out, name.len() as u16);
        u16le(&mut out, 0);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(bytes);
        // central directory entry
        u32le(&mut central, 0x0201_4b50);
        u16le(&mut central, 20); // made by
        u16le(&mut central, 20);
        u16le(&mut central, 0x0800);
        u16le(&mut central, 0);
        u16le(&mut central, when.time);
        u16le(&mut central, when.date);
        u32le(&mut central, crc);
        u32le(&mut central, size);
        u32le(&mut central, size);
        u16le(&mut central, name.len() as u16);
        u16le(&mut central, 0); // extra
        u16le(&mut central, 0); // comment
        u16le(&mut central, 0); // disk
        u16le(&mut central, 0); // internal attributes
        u32le(&mut central, 0); // external attributes
        u32le(&mut central, offset);
        central.extend_from_slice(name.as_bytes());
    }
    let cd_offset = out.len() as u32;
    let cd_size = central.len() as u32;
    out.extend_from_slice(&central);
    u32le(&mut out, 0x0605_4b50);
    u16le(&mut out, 0);
    u16le(&mut out, 0);
    u16le(&mut out, files.len() as u16);
    u16le(&mut out, files.len() as u16);
    u32le(&mut out, cd_size);
    u32le(&mut out, cd_offset);
    u16le(&mut out, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn archive_has_the_end_record() {
        let z = write_stored(
            &[("a.dcm".into(), vec![1, 2, 3])],
            DosTime::new(2026, 1, 2, 3, 4, 5),
        )
        .unwrap();
        assert_eq!(&z[..4], b"PK\x03\x04");
        let end = &z[z.len() - 22..];
        assert_eq!(&end[..4], b"PK\x05\x06");
        assert_eq!(u16::from_le_bytes([end[10], end[11]]), 1);
    }
}
