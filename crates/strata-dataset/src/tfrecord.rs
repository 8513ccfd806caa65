//! TFRecord files: a push scanner that verifies both CRCs of every record.
//!
//! A record is `u64 length (LE) | u32 masked CRC32C of the length | data | u32 masked CRC32C of
//! the data`, the mask being `((crc >> 15) | (crc << 17)) + 0xa282ead8`.

use bytes::{Buf, Bytes, BytesMut};

/// Largest record accepted, in bytes. Default: 1 GiB.
pub const MAX_RECORD: u64 = 1 << 30;

/// A TFRecord parsing error, with the byte offset of the record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TfRecordError {
    /// The length field's CRC does not match.
    #[error("TFRecord at byte {offset}: length checksum mismatch")]
    LengthCrc {
        /// Offset of the record.
        offset: u64,
    },
    /// The data's CRC does not match.
    #[error("TFRecord at byte {offset}: data checksum mismatch")]
    DataCrc {
        /// Offset of the record.
        offset: u64,
    },
    /// The length is larger than [`MAX_RECORD`].
    #[error("TFRecord at byte {offset}: length {len} is over the limit")]
    TooLong {
        /// Offset of the record.
        offset: u64,
        /// The length it claims, bytes.
        len: u64,
    },
    /// The file ends inside a record.
    #[error("truncated TFRecord: the data ends inside the record at byte {offset}")]
    Truncated {
        /// Where the file ends.
        offset: u64,
    },
}

/// The masked CRC32C TFRecord uses.
pub fn masked_crc(data: &[u8]) -> u32 {
    let c = crc32c::crc32c(data);
    (c.rotate_right(15)).wrapping_add(0xa282_ead8)
}

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset of the record's length field.
    pub offset: u64,
    /// The data (empty when the scanner does not keep data).
    pub data: Bytes,
    /// Data length in bytes.
    pub len: u64,
    /// Plain CRC32C of the data.
    pub crc32c: u32,
}

/// Reads records from a stream fed in pieces (see [`crate::tar::TarScanner`] for the calling
/// convention). Without `keep_data` the data is checked and dropped, so memory stays at one
/// buffer whatever the record size.
pub struct TfRecordScanner {
    pos: u64,
    keep_data: bool,
    /// The record being read: offset, length, data kept so far, running CRC, bytes left.
    cur: Option<(u64, u64, BytesMut, u32, u64)>,
}

impl TfRecordScanner {
    /// A scanner at offset 0.
    pub fn new(keep_data: bool) -> Self {
        Self {
            pos: 0,
            keep_data,
            cur: None,
        }
    }

    /// Consumes bytes and returns the next verified record, or None when it needs more.
    pub fn push(&mut self, buf: &mut BytesMut) -> Result<Option<Record>, TfRecordError> {
        loop {
            match &mut self.cur {
                None => {
                    if buf.len() < 12 {
                        return Ok(None);
                    }
                    let offset = self.pos;
                    let len_bytes: [u8; 8] = buf[..8].try_into().expect("8 bytes");
                    let len_crc = u32::from_le_bytes(buf[8..12].try_into().expect("4 bytes"));
                    if masked_crc(&len_bytes) != len_crc {
                        return Err(TfRecordError::LengthCrc { offset });
                    }
                    let len = u64::from_le_bytes(len_bytes);
                    if len > MAX_RECORD {
                        return Err(TfRecordError::TooLong { offset, len });
                    }
                    buf.advance(12);
                    self.pos += 12;
                    self.cur = Some((offset, len, BytesMut::new(), 0, len));
                }
                Some((offset, len, kept, crc, left)) => {
                    if *left > 0 {
                        if buf.is_empty() {
                            return Ok(None);
                        }
                        let n = (*left).min(buf.len() as u64) as usize;
                        let chunk = buf.split_to(n);
                        *crc = crc32c::crc32c_append(*crc, &chunk);
                        if self.keep_data {
                            if kept.is_empty() && n as u64 == *len {
                                *kept = chunk;
                            } else {
                                kept.extend_from_slice(&chunk);
                            }
                        }
                        *left -= n as u64;
                        self.pos += n as u64;
                        continue;
                    }
                    if buf.len() < 4 {
                        return Ok(None);
                    }
                    let stored = u32::from_le_bytes(buf[..4].try_into().expect("4 bytes"));
                    let masked = crc.rotate_right(15).wrapping_add(0xa282_ead8);
                    if stored != masked {
                        return Err(TfRecordError::DataCrc { offset: *offset });
                    }
                    buf.advance(4);
                    self.pos += 4;
                    let (offset, len, kept, crc, _) = self.cur.take().expect("a record");
                    return Ok(Some(Record {
                        offset,
                        data: kept.freeze(),
                        len,
                        crc32c: crc,
                    }));
                }
            }
        }
    }

    /// Checks that the stream ended between records.
    pub fn finish(&self, buf: &BytesMut) -> Result<(), TfRecordError> {
        match &self.cur {
            Some((offset, ..)) => Err(TfRecordError::Truncated { offset: *offset }),
            None if !buf.is_empty() => Err(TfRecordError::Truncated { offset: self.pos }),
            None => Ok(()),
        }
    }
}

/// Encodes one record (for writers and tests).
pub fn encode(data: &[u8], out: &mut Vec<u8>) {
    let len = (data.len() as u64).to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc(&len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&masked_crc(data).to_le_bytes());
}

/// Scans a whole file held in memory.
pub fn scan_all(bytes: &[u8], keep_data: bool) -> Result<Vec<Record>, TfRecordError> {
    let mut s = TfRecordScanner::new(keep_data);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(r) = s.push(&mut buf)? {
        out.push(r);
    }
    s.finish(&buf)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_damage_is_caught() {
        let mut f = Vec::new();
        for r in [&b"first"[..], b"", &[9u8; 5000]] {
            encode(r, &mut f);
        }
        let recs = scan_all(&f, true).unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(&recs[0].data[..], b"first");
        assert_eq!(recs[2].len, 5000);
        // The checksum is CRC32C (Castagnoli), whose check value is 0xE3069283.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(
            masked_crc(b"123456789"),
            0xE306_9283u32.rotate_right(15).wrapping_add(0xa282_ead8)
        );
        let mut bad = f.clone();
        bad[14] ^= 1;
        assert_eq!(
            scan_all(&bad, false),
            Err(TfRecordError::DataCrc { offset: 0 })
        );
        let mut bad = f.clone();
        bad[0] ^= 1;
        assert_eq!(
            scan_all(&bad, false),
            Err(TfRecordError::LengthCrc { offset: 0 })
        );
        assert!(matches!(
            scan_all(&f[..f.len() - 2], false),
            Err(TfRecordError::Truncated { .. })
        ));
    }
}
