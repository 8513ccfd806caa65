//! The commit record: what a checkpoint holds, written last.
//!
//! A checkpoint is its files plus `MANIFEST.json` (this [`Manifest`]): the step, the world
//! size, the chunk size, and for every rank its files with their sizes, whole-file CRC32C
//! and one CRC32C per chunk, and which tiers hold it. Each rank also leaves a marker
//! ([`RankPart`], its share of the manifest) once its files are durable; the committer
//! gathers the markers into the manifest. A checkpoint without a valid manifest does not
//! exist, on any tier.

/// A manifest or rank marker that does not read, or an item that does not check out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// Not JSON of the manifest's shape.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// Another version of the format.
    #[error("format {found} (this Strata reads formats 1 to {reads})")]
    Format {
        /// The format in the file.
        found: u32,
        /// The format this build reads.
        reads: u32,
    },
    /// Fields that contradict each other or the format's rules, or an item's name.
    #[error("{0}")]
    Invalid(String),
}

use serde::{Deserialize, Serialize};

/// The newest format of manifests and markers this build reads and writes: 2 (files stored
/// in pieces). A manifest or marker without pieces is written as format 1, byte for byte as
/// before, so older builds still read it.
pub const FORMAT_VERSION: u32 = 2;
/// The format of manifests and markers whose files are each one object.
pub const FORMAT_V1: u32 = 1;
/// Default piece size: 128 MiB (see [`FileEntry::piece_size`]).
pub const DEFAULT_PIECE_SIZE: u64 = 128 << 20;
/// Chunk size for checksums (and ranged restore reads): 8 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 8 << 20;
/// The largest chunk size accepted in a manifest: 1 GiB.
pub const MAX_CHUNK_SIZE: u64 = 1 << 30;
/// The largest manifest or marker read: 64 MiB (a million files fits).
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// The most ranks a checkpoint may have.
pub const MAX_WORLD: u32 = 1 << 20;

/// One file of one rank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// The item name (a relative path, see [`validate_name`]).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// CRC32C of the whole file.
    pub crc32c: u32,
    /// CRC32C of each chunk of `chunk_size` bytes (the last may be shorter; none for an
    /// empty file).
    pub chunks: Vec<u32>,
    /// In the store, a large file is several objects of this many bytes each (the last may
    /// be shorter), a whole number of chunks: `layout::piece_rel`. Their uploads and
    /// completions overlap, where one object's completion would come after all its parts.
    /// Absent: one object (format 1). The local tier always holds the whole file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub piece_size: Option<u64>,
}

impl FileEntry {
    /// The byte ranges of its pieces in the store (one range when it is one object).
    pub fn pieces(&self) -> Vec<std::ops::Range<u64>> {
        match self.piece_size {
            Some(p) if p > 0 => (0..self.size.div_ceil(p))
                .map(|i| i * p..((i + 1) * p).min(self.size))
                .collect(),
            #[allow(clippy::single_range_in_vec_init)] // One piece: the whole file, as a range.
            _ => vec![0..self.size],
        }
    }

    /// The objects it is stored as in the store (`step`, `rank`'s file), each with the byte
    /// range of the file it holds.
    pub fn objects(&self, step: u64, rank: u32) -> Vec<(String, std::ops::Range<u64>)> {
        let pieces = self.piece_size.map(|_| self.pieces());
        crate::layout::objects(step, rank, &self.name, pieces, self.size)
    }

    /// The CRC32C of bytes `range` of the file, from its chunk CRCs (`range` starts and ends
    /// on chunk boundaries, or at the end of the file).
    pub fn crc_of(&self, range: std::ops::Range<u64>, chunk: u64) -> u32 {
        if range.end <= range.start {
            // No bytes (an empty file is one empty object): the CRC32C of nothing.
            return 0;
        }
        let chunk = chunk.max(1);
        let first = (range.start / chunk) as usize;
        let last = range.end.div_ceil(chunk) as usize;
        let tail = range.end - (last as u64 - 1) * chunk;
        whole_crc(
            &self.chunks[first.min(self.chunks.len())..last.min(self.chunks.len())],
            chunk,
            tail,
        )
    }
}

/// The piece size for a file of `size` bytes: `piece` rounded up to whole chunks, for files
/// of more than two pieces; `None` (one object) otherwise, or when `piece` is 0.
pub fn piece_size_for(size: u64, chunk: u64, piece: u64) -> Option<u64> {
    if piece == 0 {
        return None;
    }
    let p = piece.div_ceil(chunk.max(1)) * chunk.max(1);
    (size > 2 * p).then_some(p)
}

/// The format a marker or manifest with these files is written in.
pub fn format_for<'a>(files: impl IntoIterator<Item = &'a FileEntry>) -> u32 {
    if files.into_iter().any(|f| f.piece_size.is_some()) {
        FORMAT_VERSION
    } else {
        FORMAT_V1
    }
}

/// One rank's files: the marker a rank writes when its part is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankPart {
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// The step.
    pub step: u64,
    /// The rank that saved this part.
    pub rank: u32,
    /// Ranks saving the step.
    pub world_size: u32,
    /// Checksum chunk size, bytes.
    pub chunk_size: u64,
    /// The rank's files with their checksums.
    pub files: Vec<FileEntry>,
    /// When the rank saved it (Unix milliseconds).
    pub saved_unix_ms: i64,
}

/// A tier that holds a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// The node's local directory (NVMe).
    Local,
    /// The object store.
    Remote,
}

/// The commit record of a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT_VERSION`] of the writer.
    pub format: u32,
    /// The step.
    pub step: u64,
    /// Ranks that saved it.
    pub world_size: u32,
    /// Checksum chunk size, bytes (every rank's).
    pub chunk_size: u64,
    /// When it was committed (Unix milliseconds).
    pub committed_unix_ms: i64,
    /// The tiers known to hold it when this copy was written.
    pub tiers: Vec<Tier>,
    /// One part per rank, in rank order.
    pub parts: Vec<RankPart>,
}

impl Manifest {
    /// Total bytes of all files.
    pub fn bytes(&self) -> u64 {
        self.parts
            .iter()
            .flat_map(|p| &p.files)
            .map(|f| f.size)
            .sum()
    }

    /// The part of `rank`.
    pub fn part(&self, rank: u32) -> Option<&RankPart> {
        self.parts.get(rank as usize)
    }

    /// Assembles a manifest from every rank's marker (in any order). Errors say what is
    /// inconsistent.
    pub fn from_parts(
        step: u64,
        world_size: u32,
        mut parts: Vec<RankPart>,
        tiers: Vec<Tier>,
    ) -> Result<Self, ManifestError> {
        parts.sort_by_key(|p| p.rank);
        let m = Self {
            format: format_for(parts.iter().flat_map(|p| &p.files)),
            step,
            world_size,
            chunk_size: parts.first().map_or(DEFAULT_CHUNK_SIZE, |p| p.chunk_size),
            committed_unix_ms: chrono::Utc::now().timestamp_millis(),
            tiers,
            parts,
        };
        m.validate()?;
        Ok(m)
    }

    /// Parses and validates a manifest.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: Self = serde_json::from_slice(bytes)?;
        m.validate()?;
        Ok(m)
    }

    /// Serializes it (pretty, so people can read it).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest serializes")
    }

    fn validate(&self) -> Result<(), ManifestError> {
        if !(FORMAT_V1..=FORMAT_VERSION).contains(&self.format) {
            return Err(ManifestError::Format {
                found: self.format,
                reads: FORMAT_VERSION,
            });
        }
        if self.format < format_for(self.parts.iter().flat_map(|p| &p.files)) {
            return Err(ManifestError::Invalid(format!(
                "format {} with files in pieces (format {FORMAT_VERSION})",
                self.format
            )));
        }
        if self.world_size == 0 || self.world_size > MAX_WORLD {
            return Err(ManifestError::Invalid(format!(
                "world size {} out of range",
                self.world_size
            )));
        }
        if self.parts.len() != self.world_size as usize {
            return Err(ManifestError::Invalid(format!(
                "{} part(s) for a world of {}",
                self.parts.len(),
                self.world_size
            )));
        }
        for (i, p) in self.parts.iter().enumerate() {
            if p.rank as usize != i {
                return Err(ManifestError::Invalid(format!(
                    "part {i} is rank {}",
                    p.rank
                )));
            }
            if p.step != self.step || p.world_size != self.world_size {
                return Err(ManifestError::Invalid(format!(
                    "rank {} is step {} of world {}, the manifest step {} of world {}",
                    p.rank, p.step, p.world_size, self.step, self.world_size
                )));
            }
            if p.chunk_size != self.chunk_size {
                return Err(ManifestError::Invalid(format!(
                    "rank {} has another chunk size",
                    p.rank
                )));
            }
            p.validate()?;
        }
        Ok(())
    }
}

impl RankPart {
    /// Parses and validates a marker.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ManifestError> {
        let p: Self = serde_json::from_slice(bytes)?;
        p.validate()?;
        Ok(p)
    }

    /// Serializes it.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a marker serializes")
    }

    /// Total bytes of its files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    fn validate(&self) -> Result<(), ManifestError> {
        if !(FORMAT_V1..=FORMAT_VERSION).contains(&self.format)
            || self.format < format_for(&self.files)
        {
            return Err(ManifestError::Invalid(format!(
                "rank {}: format {}",
                self.rank, self.format
            )));
        }
        for f in &self.files {
            if let Some(p) = f.piece_size
                && (p == 0 || p % self.chunk_size.max(1) != 0)
            {
                return Err(ManifestError::Invalid(format!(
                    "{}: piece size {p} is not a whole number of chunks of {}",
                    f.name, self.chunk_size
                )));
            }
        }
        if self.rank >= self.world_size {
            return Err(ManifestError::Invalid(format!(
                "rank {} in a world of {}",
                self.rank, self.world_size
            )));
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return Err(ManifestError::Invalid(format!(
                "chunk size {} out of range",
                self.chunk_size
            )));
        }
        let mut names = std::collections::HashSet::new();
        for f in &self.files {
            validate_name(&f.name)
                .map_err(|e| ManifestError::Invalid(format!("rank {}: {e}", self.rank)))?;
            if !names.insert(f.name.as_str()) {
                return Err(ManifestError::Invalid(format!(
                    "rank {}: {} appears twice",
                    self.rank, f.name
                )));
            }
            if f.chunks.len() as u64 != f.size.div_ceil(self.chunk_size) {
                return Err(ManifestError::Invalid(format!(
                    "rank {}: {}: {} chunk checksums for {} bytes",
                    self.rank,
                    f.name,
                    f.chunks.len(),
                    f.size
                )));
            }
        }
        Ok(())
    }
}

/// Checks an item name: a relative path of `/`-separated components, each non-empty, not
/// `.` or `..`, not starting with `.`, made of ASCII letters, digits and `_ - . + = @ ,`; at
/// most 1024 bytes. (Names become object keys and local paths: nothing may escape the
/// checkpoint directory or collide with Strata's own files.)
pub fn validate_name(name: &str) -> Result<(), ManifestError> {
    if name.is_empty() || name.len() > 1024 {
        return Err(ManifestError::Invalid(format!(
            "item name {name:?}: must be 1 to 1024 bytes"
        )));
    }
    for c in name.split('/') {
        if c.is_empty() || c.starts_with('.') {
            return Err(ManifestError::Invalid(format!(
                "item name {name:?}: empty or hidden path component (no leading '/', '//', '.' or '..')"
            )));
        }
        if let Some(bad) = c
            .chars()
            .find(|ch| !(ch.is_ascii_alphanumeric() || "_-.+=@,".contains(*ch)))
        {
            return Err(ManifestError::Invalid(format!(
                "item name {name:?}: character {bad:?} not allowed (use letters, digits, / and _-.+=@,)"
            )));
        }
    }
    Ok(())
}

/// Checksums of `data` cut into chunks of `chunk` bytes: (whole CRC32C, per-chunk CRC32Cs).
pub fn checksums(data: &[u8], chunk: u64) -> (u32, Vec<u32>) {
    let mut c = Checksummer::new(chunk);
    c.update(data);
    c.finish()
}

/// Computes [`checksums`] over data given in pieces of any size. Each byte is read once: the
/// whole file's CRC32C is combined from the chunks' CRCs at the end.
pub struct Checksummer {
    chunk: u64,
    current: u32,
    in_current: u64,
    chunks: Vec<u32>,
}

impl Checksummer {
    /// For chunks of `chunk` bytes (> 0).
    pub fn new(chunk: u64) -> Self {
        Self {
            chunk: chunk.max(1),
            current: 0,
            in_current: 0,
            chunks: Vec::new(),
        }
    }

    /// Adds the next bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = ((self.chunk - self.in_current) as usize).min(data.len());
            self.current = crc32c::crc32c_append(self.current, &data[..take]);
            self.in_current += take as u64;
            data = &data[take..];
            if self.in_current == self.chunk {
                self.chunks.push(self.current);
                self.current = 0;
                self.in_current = 0;
            }
        }
    }

    /// (whole CRC32C, per-chunk CRC32Cs).
    pub fn finish(mut self) -> (u32, Vec<u32>) {
        let last = if self.in_current > 0 {
            self.chunks.push(self.current);
            self.in_current
        } else {
            self.chunk
        };
        (whole_crc(&self.chunks, self.chunk, last), self.chunks)
    }
}

/// The CRC32C of a whole file from its chunks' CRCs: every chunk `chunk` bytes long but the
/// last, which is `last` bytes long.
pub fn whole_crc(chunks: &[u32], chunk: u64, last: u64) -> u32 {
    let n = chunks.len();
    chunks.iter().enumerate().fold(0u32, |acc, (i, &c)| {
        let len = if i + 1 == n { last } else { chunk };
        crc32c::crc32c_combine(acc, c, len as usize)
    })
}

/// Checks `data` against `entry`; the error names the first bad chunk.
pub fn verify(entry: &FileEntry, data: &[u8], chunk: u64) -> Result<(), ManifestError> {
    check_shape(entry, data.len(), chunk)?;
    verify_piece(entry, 0, data, chunk)
}

/// Checks that `len` bytes are `entry`'s size and that `entry` has one CRC per chunk.
pub fn check_shape(entry: &FileEntry, len: usize, chunk: u64) -> Result<(), ManifestError> {
    if len as u64 != entry.size {
        return Err(ManifestError::Invalid(format!(
            "{len} bytes, the manifest says {}",
            entry.size
        )));
    }
    check_chunk_count(entry, chunk)
}

/// Checks that `entry` has one CRC per chunk of its size (a manifest with fewer would leave
/// the bytes past its last chunk unchecked).
pub fn check_chunk_count(entry: &FileEntry, chunk: u64) -> Result<(), ManifestError> {
    let want = entry.size.div_ceil(chunk.max(1));
    if entry.chunks.len() as u64 != want {
        return Err(ManifestError::Invalid(format!(
            "{} chunk checksums for {} bytes in chunks of {chunk}; expected {want}",
            entry.chunks.len(),
            entry.size
        )));
    }
    Ok(())
}

/// Checks one chunk-aligned piece of a file: `piece` starts at chunk `first` of `entry`.
pub fn verify_piece(
    entry: &FileEntry,
    first: usize,
    piece: &[u8],
    chunk: u64,
) -> Result<(), ManifestError> {
    for (k, bytes) in piece.chunks(chunk.max(1) as usize).enumerate() {
        let i = first + k;
        let want = entry.chunks.get(i).copied();
        let got = crc32c::crc32c(bytes);
        if want != Some(got) {
            return Err(ManifestError::Invalid(format!(
                "chunk {i} (bytes {}..{}): CRC32C {got:08x}, the manifest says {}",
                i as u64 * chunk,
                i as u64 * chunk + bytes.len() as u64,
                want.map_or("nothing".to_string(), |w| format!("{w:08x}"))
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the ckpt_manifest fuzz target (2026-12-08): the CRC of an empty range (an
    /// empty file's one object) underflowed computing its last chunk.
    #[test]
    fn the_crc_of_no_bytes_is_zero() {
        let (crc32c, chunks) = checksums(&[], 4096);
        let f = FileEntry {
            name: "empty".into(),
            size: 0,
            crc32c,
            chunks,
            piece_size: None,
        };
        for (_, r) in f.objects(1, 0) {
            assert_eq!(f.crc_of(r, 4096), crc32c::crc32c(&[]));
        }
        assert_eq!(f.crc_of(5..5, 4096), 0);
    }

    #[test]
    fn checksums_in_pieces_equal_checksums_at_once() {
        let data: Vec<u8> = (0..100_003u32).map(|i| (i * 7 % 251) as u8).collect();
        let whole = checksums(&data, 4096);
        let mut c = Checksummer::new(4096);
        for piece in data.chunks(777) {
            c.update(piece);
        }
        assert_eq!(c.finish(), whole);
        assert_eq!(
            whole.0,
            crc32c::crc32c(&data),
            "the combined CRC is the file's"
        );
        assert_eq!(whole.1.len(), 100_003usize.div_ceil(4096));
        assert_eq!(checksums(&[], 4096), (0, vec![]));
    }

    #[test]
    fn names_that_escape_or_collide_are_refused() {
        for ok in ["model.safetensors", "optim/shard-0.bin", "a_b-c+d=e@f,g"] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "", "/abs", "a//b", "../x", "a/../b", ".hidden", "a/./b", "sp ace", "x\0", "ü",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn verify_names_the_bad_chunk() {
        let data = vec![5u8; 10_000];
        let (crc, chunks) = checksums(&data, 4096);
        let e = FileEntry {
            name: "x".into(),
            size: 10_000,
            crc32c: crc,
            chunks,
            piece_size: None,
        };
        // The CRC of a range of chunks, from the chunk CRCs.
        assert_eq!(e.crc_of(4096..10_000, 4096), crc32c::crc32c(&data[4096..]));
        assert_eq!(e.crc_of(0..4096, 4096), crc32c::crc32c(&data[..4096]));
        assert_eq!(e.crc_of(0..10_000, 4096), crc);
        verify(&e, &data, 4096).unwrap();
        let mut bad = data.clone();
        bad[5000] ^= 1;
        let err = verify(&e, &bad, 4096).unwrap_err();
        assert!(err.to_string().contains("chunk 1"), "{err}");
        assert!(verify(&e, &data[..9999], 4096).is_err());
    }
}
