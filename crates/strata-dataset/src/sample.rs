//! A sample as a consumer gets it.

use bytes::Bytes;

/// One sample: its key and its members' bytes (slices of the fetched range, not copies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The sample key (WebDataset `__key__`).
    pub key: String,
    /// Global sample id (canonical numbering).
    pub id: u64,
    /// Shard number in the manifest.
    pub shard: usize,
    /// Sample number within the shard.
    pub index: u64,
    /// Position in the epoch's plan (padding repeats a position's sample).
    pub position: u64,
    /// (extension, data), in archive order.
    pub members: Vec<(String, Bytes)>,
}

impl Sample {
    /// The data of the member with extension `ext`.
    pub fn get(&self, ext: &str) -> Option<&Bytes> {
        self.members.iter().find(|(e, _)| e == ext).map(|(_, b)| b)
    }

    /// Bytes of member data.
    pub fn bytes(&self) -> u64 {
        self.members.iter().map(|(_, b)| b.len() as u64).sum()
    }
}
