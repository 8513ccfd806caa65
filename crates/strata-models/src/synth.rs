//! Synthetic safetensors models for tests, benchmarks and the demo: deterministic bytes,
//! shaped like a transformer's shards (`layers.N.*` tensors of BF16).

use crate::safetensors::{Dtype, TensorInfo, build_header};

/// A safetensors file of about `bytes` bytes: tensors `layers.{first_layer + i}.{attn,mlp}.weight`
/// (BF16, 1 MiB to 64 MiB each depending on the size), data from `seed`.
pub fn shard(seed: u64, first_layer: usize, bytes: u64) -> Vec<u8> {
    let per = (bytes / 16).clamp(1 << 20, 64 << 20) & !1;
    let n = (bytes / per).max(1) as usize;
    let infos: Vec<TensorInfo> = (0..n)
        .map(|i| TensorInfo {
            name: format!(
                "layers.{}.{}.weight",
                first_layer + i / 2,
                if i % 2 == 0 { "attn" } else { "mlp" }
            ),
            dtype: Dtype::BF16,
            shape: vec![per / 2],
            start: 0,
            end: per,
        })
        .collect();
    let refs: Vec<&TensorInfo> = infos.iter().collect();
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("format".to_string(), "pt".to_string());
    let (head, _) = build_header(&refs, &meta);
    let mut out = Vec::with_capacity(head.len() + (per * n as u64) as usize);
    out.extend_from_slice(&head);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < head.len() + (per as usize) * n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(head.len() + (per as usize) * n);
    out
}
