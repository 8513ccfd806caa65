//! The sample index of a shard: where each sample's bytes are, and their checksum, so a reader
//! can fetch any sample with one ranged read and verify it.
//!
//! Samples follow WebDataset's grouping: consecutive members whose names share a key (the path
//! up to the first dot of the file name) form one sample; the rest of the name is the member's
//! extension (lower-cased, as `webdataset` does). Names without a dot in the file name are
//! skipped, as `webdataset` skips them. In a TFRecord file each record is a sample with one
//! member, `tfrecord`.
//!
//! Stored beside the shard as `SHARD.idx` (JSON; see [`ShardIndex`]).

use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use crate::tar::{TarError, TarScanner};
use crate::tfrecord::{TfRecordError, TfRecordScanner};

/// Index format version.
pub const INDEX_VERSION: u32 = 1;

/// The file name suffix of a shard's index.
pub const INDEX_SUFFIX: &str = ".idx";

/// Where the index of the shard at `shard` (a path relative to the dataset) is kept, relative
/// to the index location: `SHARD.idx`.
pub fn index_path(shard: &str) -> String {
    format!("{shard}{INDEX_SUFFIX}")
}

/// Shard file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardFormat {
    /// A WebDataset tar.
    Tar,
    /// A TFRecord file.
    Tfrecord,
    /// One object holding one sample's single member (the raw layout).
    Raw,
}

impl ShardFormat {
    /// The format a shard's name suggests (`.tfrecord`, `.tfrecords`, `.tfr`: TFRecord;
    /// anything else: tar).
    pub fn of(path: &str) -> Self {
        let p = path.to_ascii_lowercase();
        if p.ends_with(".tfrecord") || p.ends_with(".tfrecords") || p.ends_with(".tfr") {
            Self::Tfrecord
        } else {
            Self::Tar
        }
    }
}

/// One member of a sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    /// Extension (`jpg`, `cls`, `seg.png`), lower-cased.
    pub ext: String,
    /// Offset of the member's data from the sample's offset, in bytes.
    pub offset: u64,
    /// Data length in bytes.
    pub size: u64,
}

/// One sample of a shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleEntry {
    /// The sample key (WebDataset `__key__`).
    pub key: String,
    /// Offset in the shard of the sample's first byte (its first header).
    pub offset: u64,
    /// Bytes from `offset` to the end of the sample's last member (padding included).
    pub size: u64,
    /// CRC32C of the members' data, concatenated in order.
    pub crc32c: u32,
    /// The members, in archive order.
    pub members: Vec<MemberEntry>,
}

impl SampleEntry {
    /// The byte range of the sample in its shard.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset + self.size
    }

    /// Bytes of member data (what a consumer gets).
    pub fn payload_bytes(&self) -> u64 {
        self.members.iter().map(|m| m.size).sum()
    }
}

/// The index of one shard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardIndex {
    /// [`INDEX_VERSION`].
    pub version: u32,
    /// The shard's format.
    pub format: ShardFormat,
    /// The shard's size in bytes when it was indexed.
    pub shard_size: u64,
    /// The samples, in shard order.
    pub samples: Vec<SampleEntry>,
}

/// Why a shard could not be indexed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The tar is damaged.
    #[error(transparent)]
    Tar(#[from] TarError),
    /// The TFRecord file is damaged.
    #[error(transparent)]
    TfRecord(#[from] TfRecordError),
    /// A sample repeats an extension (WebDataset cannot represent it).
    #[error("sample {key:?} has two members with extension {ext:?}")]
    DuplicateMember {
        /// The sample's key.
        key: String,
        /// The member's extension.
        ext: String,
    },
}

/// Why a name cannot be a sample member (WebDataset's rule: a key of at least one
/// character, a dot, an extension), for messages.
pub fn why_not_a_member(name: &str) -> &'static str {
    let base = name.rsplit('/').next().unwrap_or(name);
    if base.starts_with('.') {
        "hidden: the name starts with '.', so it has no sample key"
    } else {
        "no extension"
    }
}

/// Splits a member name into (key, extension) the way WebDataset does.
pub fn split_key(name: &str) -> Option<(&str, &str)> {
    let base_start = name.rfind('/').map_or(0, |i| i + 1);
    let dot = name[base_start..].find('.')? + base_start;
    if dot == base_start {
        return None;
    }
    Some((&name[..dot], &name[dot + 1..]))
}

/// Builds a [`ShardIndex`] from a shard's bytes fed in pieces, without keeping any data.
pub struct IndexBuilder {
    scanner: Scanner,
    samples: Vec<SampleEntry>,
    size: u64,
    /// Members left out of the index (no sample key, links).
    left: LeftOut,
}

/// Members left out of an index: how many, and the first few with why.
#[derive(Default)]
struct LeftOut {
    n: u64,
    examples: Vec<String>,
}

impl LeftOut {
    fn add(&mut self, name: &str, why: &str) {
        self.n += 1;
        if self.examples.len() < LEFT_OUT_EXAMPLES {
            self.examples.push(format!("{name:?} ({why})"));
        }
    }
}

/// How many left-out members are named in messages.
const LEFT_OUT_EXAMPLES: usize = 5;

enum Scanner {
    Tar(TarScanner),
    Tf(TfRecordScanner),
}

impl IndexBuilder {
    /// A builder for a shard of `format`.
    pub fn new(format: ShardFormat) -> Self {
        Self {
            scanner: match format {
                ShardFormat::Tar | ShardFormat::Raw => Scanner::Tar(TarScanner::new(false)),
                ShardFormat::Tfrecord => Scanner::Tf(TfRecordScanner::new(false)),
            },
            samples: Vec::new(),
            size: 0,
            left: LeftOut::default(),
        }
    }

    /// Feeds bytes (consumed from `buf` as far as they can be parsed).
    pub fn push(&mut self, buf: &mut BytesMut) -> Result<(), IndexError> {
        let before = buf.len();
        let r = self.push_inner(buf);
        self.size += (before - buf.len()) as u64;
        r
    }

    fn push_inner(&mut self, buf: &mut BytesMut) -> Result<(), IndexError> {
        match &mut self.scanner {
            Scanner::Tar(s) => {
                while let Some(m) = s.push(buf)? {
                    for (name, why) in s.take_links() {
                        self.left.add(&name, why);
                    }
                    let Some((key, ext)) = split_key(&m.name) else {
                        self.left.add(&m.name, why_not_a_member(&m.name));
                        continue;
                    };
                    let ext = ext.to_ascii_lowercase();
                    let end = m.end();
                    match self.samples.last_mut() {
                        Some(last) if last.key == key => {
                            if last.members.iter().any(|x| x.ext == ext) {
                                return Err(IndexError::DuplicateMember {
                                    key: key.to_string(),
                                    ext,
                                });
                            }
                            last.members.push(MemberEntry {
                                ext,
                                offset: m.data_offset - last.offset,
                                size: m.size,
                            });
                            last.crc32c =
                                crc32c::crc32c_combine(last.crc32c, m.crc32c, m.size as usize);
                            last.size = end - last.offset;
                        }
                        _ => self.samples.push(SampleEntry {
                            key: key.to_string(),
                            offset: m.header_offset,
                            size: end - m.header_offset,
                            crc32c: m.crc32c,
                            members: vec![MemberEntry {
                                ext,
                                offset: m.data_offset - m.header_offset,
                                size: m.size,
                            }],
                        }),
                    }
                }
            }
            Scanner::Tf(s) => {
                while let Some(r) = s.push(buf)? {
                    self.samples.push(SampleEntry {
                        key: format!("{:012}", self.samples.len()),
                        offset: r.offset,
                        size: 12 + r.len + 4,
                        crc32c: r.crc32c,
                        members: vec![MemberEntry {
                            ext: "tfrecord".into(),
                            offset: 12,
                            size: r.len,
                        }],
                    });
                }
            }
        }
        Ok(())
    }

    /// Members left out of the index so far (names with no sample key, symbolic and hard
    /// links), and the first few, each with why.
    pub fn left_out(&mut self) -> (u64, &[String]) {
        if let Scanner::Tar(s) = &mut self.scanner {
            for (name, why) in s.take_links() {
                self.left.add(&name, why);
            }
        }
        (self.left.n, &self.left.examples)
    }

    /// Ends the input and returns the index.
    pub fn finish(self, rest: &BytesMut) -> Result<ShardIndex, IndexError> {
        let format = match &self.scanner {
            Scanner::Tar(s) => {
                s.finish(rest)?;
                ShardFormat::Tar
            }
            Scanner::Tf(s) => {
                s.finish(rest)?;
                ShardFormat::Tfrecord
            }
        };
        Ok(ShardIndex {
            version: INDEX_VERSION,
            format,
            shard_size: self.size + rest.len() as u64,
            samples: self.samples,
        })
    }
}

impl ShardIndex {
    /// The index of a raw object: one sample, one member of extension `ext`.
    pub fn raw(ext: &str, size: u64) -> Self {
        Self {
            version: INDEX_VERSION,
            format: ShardFormat::Raw,
            shard_size: size,
            samples: vec![SampleEntry {
                key: String::new(),
                offset: 0,
                size,
                crc32c: 0,
                members: vec![MemberEntry {
                    ext: ext.to_ascii_lowercase(),
                    offset: 0,
                    size,
                }],
            }],
        }
    }

    /// Indexes a whole shard held in memory.
    pub fn build(format: ShardFormat, bytes: &[u8]) -> Result<Self, IndexError> {
        let mut b = IndexBuilder::new(format);
        let mut buf = BytesMut::from(bytes);
        b.push(&mut buf)?;
        b.finish(&buf)
    }

    /// Serialized form.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an index serializes")
    }

    /// Parses and checks an index: version, and samples in order, within the shard.
    pub fn from_json(bytes: &[u8]) -> Result<Self, crate::error::FormatError> {
        use crate::error::FormatError as F;
        let idx: ShardIndex = serde_json::from_slice(bytes)?;
        if idx.version != INDEX_VERSION {
            return Err(F::Version {
                what: "index",
                found: idx.version,
                reads: INDEX_VERSION,
            });
        }
        let mut end = 0;
        for s in &idx.samples {
            if s.offset < end
                || s.offset
                    .checked_add(s.size)
                    .is_none_or(|e| e > idx.shard_size)
            {
                return Err(F::Inconsistent(format!(
                    "sample {:?} lies outside the shard",
                    s.key
                )));
            }
            for m in &s.members {
                if m.offset.checked_add(m.size).is_none_or(|e| e > s.size) {
                    return Err(F::Inconsistent(format!(
                        "sample {:?}: member {:?} out of bounds",
                        s.key, m.ext
                    )));
                }
            }
            end = s.offset + s.size;
        }
        Ok(idx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tar::TarWriter;

    #[test]
    fn keys_split_like_webdataset() {
        assert_eq!(split_key("a/b/c.jpg"), Some(("a/b/c", "jpg")));
        assert_eq!(split_key("x.seg.png"), Some(("x", "seg.png")));
        assert_eq!(split_key("dir.v2/x.cls"), Some(("dir.v2/x", "cls")));
        assert_eq!(split_key("noext"), None);
        assert_eq!(split_key("d/.hidden"), None);
    }

    #[test]
    fn samples_group_consecutive_members() {
        let mut w = TarWriter::new(Vec::new());
        w.append("s1.jpg", b"JPEG1").unwrap();
        w.append("s1.CLS", b"3").unwrap();
        w.append("README", b"skipped").unwrap();
        w.append("s2.jpg", b"JPEG2").unwrap();
        let bytes = w.finish().unwrap();
        let idx = ShardIndex::build(ShardFormat::Tar, &bytes).unwrap();
        assert_eq!(idx.samples.len(), 2);
        let s = &idx.samples[0];
        assert_eq!(s.key, "s1");
        assert_eq!(s.members[1].ext, "cls");
        let mut all = Vec::new();
        for m in &s.members {
            let at = (s.offset + m.offset) as usize;
            all.extend_from_slice(&bytes[at..at + m.size as usize]);
        }
        assert_eq!(all, b"JPEG13");
        assert_eq!(s.crc32c, crc32c::crc32c(b"JPEG13"));
        assert_eq!(idx.shard_size, bytes.len() as u64);
        let back = ShardIndex::from_json(&idx.to_json()).unwrap();
        assert_eq!(back, idx);
    }
}
