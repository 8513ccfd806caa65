//! What a cached block is: (store, object path, object version or ETag, block index).
//!
//! A key's identity on disk and in memory is [`BlockId`]: a 64-bit hash of the object (store
//! and path), a 32-bit hash of its version, and the block index. File names and map keys are
//! made from it, never from the object key itself, so hostile keys cannot reach the file
//! system. The full key text is stored in each block file's header and compared on read, so a
//! hash collision is a miss, never wrong data.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use strata_store::store::normalize_etag;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// One version of one object: the unit of consistency. A new ETag is a new `ObjectVersion`,
/// so blocks of the old version are never served for it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ObjectVersion {
    /// The store, as `scheme://bucket`.
    pub store: Arc<str>,
    /// The object key inside the store.
    pub path: Arc<str>,
    /// The ETag or version id.
    pub version: Arc<str>,
    /// The object's size in bytes.
    pub size: u64,
}

impl fmt::Debug for ObjectVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.store, self.path, self.version)
    }
}

impl ObjectVersion {
    /// A version of `path` in `store`.
    pub fn new(store: &str, path: &str, version: &str, size: u64) -> Self {
        Self {
            store: store.into(),
            path: path.into(),
            version: version.into(),
            size,
        }
    }

    /// The 64-bit hash of (store, path), shared by all versions; names the object's files.
    pub fn object_hash(&self) -> u64 {
        object_hash(&self.store, &self.path)
    }

    /// The version without the quotes and weak-validator prefix that stores add to ETags
    /// inconsistently (`"abc"`, `W/"abc"` and `abc` are one version).
    pub fn normalized_version(&self) -> &str {
        normalize_etag(&self.version)
    }

    fn version_hash(&self) -> u32 {
        xxh3_64_with_seed(self.normalized_version().as_bytes(), 0x5354_5241) as u32
    }

    /// The id of block `index`.
    pub fn block(&self, index: u64) -> BlockId {
        BlockId {
            object: self.object_hash(),
            version: self.version_hash(),
            index,
        }
    }

    /// The full key text of block `index`, as stored in the block file header:
    /// length-prefixed fields, so no choice of characters can make two keys collide.
    pub fn key_text(&self, index: u64) -> String {
        format!(
            "{}:{}{}:{}{}:{}{}",
            self.store.len(),
            self.store,
            self.path.len(),
            self.path,
            self.normalized_version().len(),
            self.normalized_version(),
            index
        )
    }
}

/// The hash of (store, path) that names an object's block files.
pub fn object_hash(store: &str, path: &str) -> u64 {
    let mut text = String::with_capacity(store.len() + path.len() + 24);
    text.push_str(&store.len().to_string());
    text.push(':');
    text.push_str(store);
    text.push_str(path);
    xxh3_64_with_seed(text.as_bytes(), 0x5354_5241_5441)
}

/// The identity of one block: hashes of its object and version, and its index.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct BlockId {
    /// Hash of the store and the object's path.
    pub object: u64,
    /// Hash of the object's version (its ETag).
    pub version: u32,
    /// The block's index in the object.
    pub index: u64,
}

impl BlockId {
    /// The file name of this block: `OOOOOOOOOOOOOOOO-VVVVVVVV-INDEX.blk` (hex hashes).
    pub fn file_name(&self) -> String {
        format!(
            "{:016x}-{:08x}-{}.blk",
            self.object, self.version, self.index
        )
    }

    /// The fan-out directory (first byte of the object hash), so no directory grows large.
    pub fn fanout(&self) -> String {
        format!("{:02x}", self.object >> 56)
    }

    /// Parses a file name made by [`BlockId::file_name`].
    pub fn parse_file_name(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(".blk")?;
        let mut it = stem.splitn(3, '-');
        let object = u64::from_str_radix(it.next()?, 16).ok()?;
        let version = u32::from_str_radix(it.next()?, 16).ok()?;
        let index = it.next()?.parse().ok()?;
        Some(Self {
            object,
            version,
            index,
        })
    }
}

/// How objects are cut into blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Block size in bytes.
    pub block_size: u64,
}

impl Geometry {
    /// The indexes of the blocks that cover `range` of an object of `size` bytes.
    pub fn blocks(&self, range: &Range<u64>, size: u64) -> Range<u64> {
        let end = range.end.min(size);
        if range.start >= end {
            return 0..0;
        }
        range.start / self.block_size..end.div_ceil(self.block_size)
    }

    /// The byte range of block `index` in an object of `size` bytes.
    pub fn block_range(&self, index: u64, size: u64) -> Range<u64> {
        let start = index * self.block_size;
        start.min(size)..(start + self.block_size).min(size)
    }

    /// How many blocks an object of `size` bytes has.
    pub fn block_count(&self, size: u64) -> u64 {
        size.div_ceil(self.block_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_hide_keys() {
        let v = ObjectVersion::new("s3://b", "../../etc/passwd", "\"etag\"", 10);
        let id = v.block(7);
        let name = id.file_name();
        assert!(!name.contains('/') && !name.contains(".."), "{name}");
        assert_eq!(BlockId::parse_file_name(&name), Some(id));
        assert_eq!(BlockId::parse_file_name("x.blk"), None);
        assert_eq!(BlockId::parse_file_name("0-0-1.tmp"), None);
    }

    #[test]
    fn versions_and_objects_differ() {
        let a = ObjectVersion::new("s3://b", "k", "e1", 10);
        let b = ObjectVersion::new("s3://b", "k", "e2", 10);
        let c = ObjectVersion::new("s3://b", "k2", "e1", 10);
        assert_eq!(a.object_hash(), b.object_hash());
        assert_ne!(a.block(0), b.block(0));
        assert_ne!(a.block(0), c.block(0));
        assert_eq!(
            ObjectVersion::new("s", "k", "\"e1\"", 1).block(0),
            ObjectVersion::new("s", "k", "W/\"e1\"", 1).block(0)
        );
        assert_eq!(
            ObjectVersion::new("s3://b", "k", "\"e1\"", 10).block(0),
            a.block(0)
        );
        // Length prefixes keep ("ab","c") and ("a","bc") apart.
        assert_ne!(
            ObjectVersion::new("ab", "c", "v", 1).key_text(0),
            ObjectVersion::new("a", "bc", "v", 1).key_text(0)
        );
    }

    #[test]
    fn geometry() {
        let g = Geometry { block_size: 10 };
        assert_eq!(g.blocks(&(0..10), 100), 0..1);
        assert_eq!(g.blocks(&(5..25), 100), 0..3);
        assert_eq!(g.blocks(&(95..200), 100), 9..10);
        assert_eq!(g.blocks(&(100..200), 100), 0..0);
        assert_eq!(g.block_range(9, 95), 90..95);
        assert_eq!(g.block_count(95), 10);
    }
}
