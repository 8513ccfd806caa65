//! The safetensors format, read defensively: the header comes from an object store and may be
//! malformed or hostile.
//!
//! A file is an 8-byte little-endian header length `N`, `N` bytes of UTF-8 JSON (a map from
//! tensor name to `{dtype, shape, data_offsets: [begin, end]}`, plus an optional
//! `__metadata__` map of strings), then the data; offsets are relative to the data start.
//! [`Header::parse`] accepts a header only if its length is within [`MAX_HEADER_BYTES`] and the
//! file, the JSON is valid UTF-8 of the right shape, every dtype is known, every tensor's byte
//! count matches its shape and dtype, and the tensors lie inside the data and do not overlap.

use std::collections::BTreeMap;

use serde_json::Value;

/// The largest header accepted: 100 MiB (the reference implementation's limit is 100 MB).
pub const MAX_HEADER_BYTES: u64 = 100 << 20;

/// Element types, named as in headers. Sizes in bits (sub-byte types pack elements).
#[allow(non_camel_case_types)] // The names are the safetensors format's own (F8_E5M2, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Dtype {
    /// Boolean, 1 byte.
    BOOL,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// 8-bit float, 5 exponent and 2 mantissa bits.
    F8_E5M2,
    /// 8-bit float, 4 exponent and 3 mantissa bits.
    F8_E4M3,
    /// 8-bit exponent-only scale (MX formats).
    F8_E8M0,
    /// 4-bit float, two per byte.
    F4,
    /// 6-bit float, 2 exponent and 3 mantissa bits.
    F6_E2M3,
    /// 6-bit float, 3 exponent and 2 mantissa bits.
    F6_E3M2,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// IEEE half precision.
    F16,
    /// bfloat16.
    BF16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// IEEE single precision.
    F32,
    /// IEEE double precision.
    F64,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
    /// Complex of two single-precision floats.
    C64,
}

impl Dtype {
    /// Parses a dtype name as written in headers.
    pub fn parse(name: &str) -> Option<Self> {
        use Dtype::*;
        Some(match name {
            "BOOL" => BOOL,
            "U8" => U8,
            "I8" => I8,
            "F8_E5M2" => F8_E5M2,
            "F8_E4M3" => F8_E4M3,
            "F8_E8M0" => F8_E8M0,
            "F4" => F4,
            "F6_E2M3" => F6_E2M3,
            "F6_E3M2" => F6_E3M2,
            "I16" => I16,
            "U16" => U16,
            "F16" => F16,
            "BF16" => BF16,
            "I32" => I32,
            "U32" => U32,
            "F32" => F32,
            "F64" => F64,
            "I64" => I64,
            "U64" => U64,
            "C64" => C64,
            _ => return None,
        })
    }

    /// The name as written in headers.
    pub fn name(self) -> &'static str {
        use Dtype::*;
        match self {
            BOOL => "BOOL",
            U8 => "U8",
            I8 => "I8",
            F8_E5M2 => "F8_E5M2",
            F8_E4M3 => "F8_E4M3",
            F8_E8M0 => "F8_E8M0",
            F4 => "F4",
            F6_E2M3 => "F6_E2M3",
            F6_E3M2 => "F6_E3M2",
            I16 => "I16",
            U16 => "U16",
            F16 => "F16",
            BF16 => "BF16",
            I32 => "I32",
            U32 => "U32",
            F32 => "F32",
            F64 => "F64",
            I64 => "I64",
            U64 => "U64",
            C64 => "C64",
        }
    }

    /// Bits per element.
    pub fn bits(self) -> u64 {
        use Dtype::*;
        match self {
            F4 => 4,
            F6_E2M3 | F6_E3M2 => 6,
            BOOL | U8 | I8 | F8_E5M2 | F8_E4M3 | F8_E8M0 => 8,
            I16 | U16 | F16 | BF16 => 16,
            I32 | U32 | F32 => 32,
            F64 | I64 | U64 | C64 => 64,
        }
    }
}

/// One tensor of a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TensorInfo {
    /// The tensor's name.
    pub name: String,
    /// Its element type.
    pub dtype: Dtype,
    /// Its shape.
    pub shape: Vec<u64>,
    /// Byte range in the file (absolute: the data start is added).
    pub start: u64,
    /// End of its bytes in the file (exclusive), bytes.
    pub end: u64,
}

impl TensorInfo {
    /// Bytes of data.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True for a tensor with no elements.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
}

/// A validated header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Bytes before the data: 8 + the JSON length.
    pub data_start: u64,
    /// Tensors in file order (by offset).
    pub tensors: Vec<TensorInfo>,
    /// The `__metadata__` map.
    pub metadata: BTreeMap<String, String>,
}

/// Why a header was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HeaderError(pub String);

fn bad<T>(why: impl Into<String>) -> Result<T, HeaderError> {
    Err(HeaderError(why.into()))
}

/// Reads the header length from a file's first 8 bytes and checks it against the limit and
/// the file size. Returns the JSON length.
pub fn header_len(first8: &[u8], file_size: u64) -> Result<u64, HeaderError> {
    let Ok(b) = <[u8; 8]>::try_from(first8.get(..8).unwrap_or_default()) else {
        return bad(format!(
            "the file is {file_size} bytes, shorter than the 8-byte header length"
        ));
    };
    let n = u64::from_le_bytes(b);
    if n > MAX_HEADER_BYTES {
        return bad(format!(
            "header length {n} is over the limit of {MAX_HEADER_BYTES} bytes"
        ));
    }
    if n.saturating_add(8) > file_size {
        return bad(format!(
            "header length {n} runs past the end of the {file_size}-byte file"
        ));
    }
    Ok(n)
}

impl Header {
    /// Validates the JSON header `json` of a file of `file_size` bytes whose header length
    /// field said `json.len()`.
    pub fn parse(json: &[u8], file_size: u64) -> Result<Self, HeaderError> {
        let data_start = 8 + json.len() as u64;
        if data_start > file_size {
            return bad("the header runs past the end of the file");
        }
        let data_len = file_size - data_start;
        let text = match std::str::from_utf8(json) {
            Ok(t) => t,
            Err(e) => return bad(format!("the header is not valid UTF-8 ({e})")),
        };
        let root: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return bad(format!("the header is not valid JSON ({e})")),
        };
        let Value::Object(map) = root else {
            return bad("the header is not a JSON object");
        };
        let mut metadata = BTreeMap::new();
        let mut tensors = Vec::with_capacity(map.len());
        for (name, v) in map {
            if name == "__metadata__" {
                let Value::Object(m) = v else {
                    return bad("__metadata__ is not an object");
                };
                for (k, v) in m {
                    let Value::String(s) = v else {
                        return bad(format!("__metadata__ entry {k:?} is not a string"));
                    };
                    metadata.insert(k, s);
                }
                continue;
            }
            let t = tensor(&name, &v, data_len)?;
            tensors.push(TensorInfo {
                start: t.start + data_start,
                end: t.end + data_start,
                ..t
            });
        }
        tensors.sort_by_key(|a| (a.start, a.end));
        for w in tensors.windows(2) {
            if w[1].start < w[0].end {
                return bad(format!(
                    "tensors {:?} and {:?} overlap (bytes {}..{} and {}..{})",
                    w[0].name,
                    w[1].name,
                    w[0].start - data_start,
                    w[0].end - data_start,
                    w[1].start - data_start,
                    w[1].end - data_start
                ));
            }
        }
        Ok(Self {
            data_start,
            tensors,
            metadata,
        })
    }

    /// The tensors whose names equal one of `selectors` or start with one that ends in `.`
    /// or `*` (a prefix: `model.layers.0.` or `model.layers.0*`), in file order. An empty
    /// selector list selects everything.
    pub fn select(&self, selectors: &[String]) -> Vec<&TensorInfo> {
        self.tensors
            .iter()
            .filter(|t| selectors.is_empty() || selectors.iter().any(|s| matches(s, &t.name)))
            .collect()
    }
}

/// Whether `name` is selected by `selector` (see [`Header::select`]).
pub fn matches(selector: &str, name: &str) -> bool {
    if let Some(p) = selector.strip_suffix('*') {
        name.starts_with(p)
    } else if selector.ends_with('.') {
        name.starts_with(selector)
    } else {
        name == selector
    }
}

fn tensor(name: &str, v: &Value, data_len: u64) -> Result<TensorInfo, HeaderError> {
    let Value::Object(o) = v else {
        return bad(format!("tensor {name:?}: not an object"));
    };
    let dtype = match o.get("dtype") {
        Some(Value::String(s)) => match Dtype::parse(s) {
            Some(d) => d,
            None => return bad(format!("tensor {name:?}: unknown dtype {s:?}")),
        },
        _ => return bad(format!("tensor {name:?}: no dtype")),
    };
    let shape = match o.get("shape") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|d| d.as_u64())
            .collect::<Option<Vec<u64>>>()
            .ok_or_else(|| HeaderError(format!("tensor {name:?}: shape must be whole numbers")))?,
        _ => return bad(format!("tensor {name:?}: no shape")),
    };
    let (begin, end) = match o.get("data_offsets") {
        Some(Value::Array(a)) if a.len() == 2 => match (a[0].as_u64(), a[1].as_u64()) {
            (Some(b), Some(e)) => (b, e),
            _ => {
                return bad(format!(
                    "tensor {name:?}: data_offsets must be whole numbers"
                ));
            }
        },
        _ => {
            return bad(format!(
                "tensor {name:?}: data_offsets must be [begin, end]"
            ));
        }
    };
    if begin > end {
        return bad(format!(
            "tensor {name:?}: data_offsets [{begin}, {end}] end before they begin"
        ));
    }
    if end > data_len {
        return bad(format!(
            "tensor {name:?}: data_offsets [{begin}, {end}] are out of bounds (the data is {data_len} bytes)"
        ));
    }
    let bits = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .and_then(|n| n.checked_mul(dtype.bits()));
    let Some(bits) = bits else {
        return bad(format!("tensor {name:?}: shape {shape:?} is too large"));
    };
    if bits % 8 != 0 || bits / 8 != end - begin {
        return bad(format!(
            "tensor {name:?}: {} {shape:?} needs {} bits, but data_offsets give {} bytes",
            dtype.name(),
            bits,
            end - begin
        ));
    }
    Ok(TensorInfo {
        name: name.to_string(),
        dtype,
        shape,
        start: begin,
        end,
    })
}

/// Builds the header of a file holding `tensors` (from some source file) back to back in the
/// given order, with `metadata`. Returns the bytes to write before the data (length field and
/// JSON, padded with spaces to a multiple of 8 bytes so the data stays aligned) and each
/// tensor's byte offset in the new file.
pub fn build_header(
    tensors: &[&TensorInfo],
    metadata: &BTreeMap<String, String>,
) -> (Vec<u8>, Vec<u64>) {
    let mut map = serde_json::Map::new();
    if !metadata.is_empty() {
        map.insert(
            "__metadata__".into(),
            Value::Object(
                metadata
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect(),
            ),
        );
    }
    let mut at = 0u64;
    let mut rel = Vec::with_capacity(tensors.len());
    for t in tensors {
        map.insert(
            t.name.clone(),
            serde_json::json!({
                "dtype": t.dtype.name(),
                "shape": t.shape,
                "data_offsets": [at, at + t.len()],
            }),
        );
        rel.push(at);
        at += t.len();
    }
    let mut json = serde_json::to_vec(&Value::Object(map)).expect("a map serializes");
    while !(8 + json.len()).is_multiple_of(8) {
        json.push(b' ');
    }
    let data_start = 8 + json.len() as u64;
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    (out, rel.into_iter().map(|r| r + data_start).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str, data: usize) -> Vec<u8> {
        let mut f = (json.len() as u64).to_le_bytes().to_vec();
        f.extend_from_slice(json.as_bytes());
        f.extend(std::iter::repeat_n(0u8, data));
        f
    }

    fn parse(f: &[u8]) -> Result<Header, HeaderError> {
        let n = header_len(&f[..8.min(f.len())], f.len() as u64)?;
        Header::parse(&f[8..8 + n as usize], f.len() as u64)
    }

    #[test]
    fn a_good_header_parses_in_file_order() {
        let f = file(
            r#"{"__metadata__":{"format":"pt"},"b":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]},"a":{"dtype":"BF16","shape":[4],"data_offsets":[0,8]}}"#,
            24,
        );
        let h = parse(&f).unwrap();
        assert_eq!(h.tensors.len(), 2);
        assert_eq!(h.tensors[0].name, "a");
        assert_eq!(h.tensors[0].start, h.data_start);
        assert_eq!(h.tensors[1].end, f.len() as u64);
        assert_eq!(h.metadata["format"], "pt");
    }

    #[test]
    fn hostile_headers_are_rejected_with_the_cause() {
        let cases: &[(&[u8], &str)] = &[
            (&u64::MAX.to_le_bytes(), "over the limit"),
            (&(1000u64).to_le_bytes(), "past the end"),
            (b"\x02\0\0\0", "shorter than the 8-byte"),
        ];
        for (f, want) in cases {
            let e = parse(f).unwrap_err().0;
            assert!(e.contains(want), "{e}");
        }
        let json_cases = [
            (
                r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                8,
                "out of bounds",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                12,
                "overlap",
            ),
            (
                r#"{"a":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}}"#,
                1,
                "unknown dtype \"Q7\"",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
                8,
                "needs 96 bits",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}}"#,
                8,
                "too large",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}"#,
                8,
                "end before",
            ),
            (r#"[1,2]"#, 0, "not a JSON object"),
            (r#"{"a":"#, 0, "not valid JSON"),
            (r#"{"__metadata__":{"k":1}}"#, 0, "not a string"),
        ];
        for (json, data, want) in json_cases {
            let e = parse(&file(json, data)).unwrap_err().0;
            assert!(e.contains(want), "{json}: {e}");
        }
        let mut f = file(r#"{"a":1}"#, 0);
        f[9] = 0xff;
        assert!(parse(&f).unwrap_err().0.contains("UTF-8"));
    }

    #[test]
    fn a_subset_header_round_trips_and_keeps_data_aligned() {
        let f = file(
            r#"{"l0.w":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},"l1.w":{"dtype":"F32","shape":[1],"data_offsets":[6,10]},"l1.b":{"dtype":"U8","shape":[2],"data_offsets":[10,12]}}"#,
            12,
        );
        let h = parse(&f).unwrap();
        let sel = h.select(&["l1.".to_string()]);
        assert_eq!(
            sel.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["l1.w", "l1.b"]
        );
        let (head, at) = build_header(&sel, &h.metadata);
        assert_eq!(head.len() % 8, 0);
        let mut out = head.clone();
        out.extend(std::iter::repeat_n(7u8, 6));
        let h2 = parse(&out).unwrap();
        assert_eq!(h2.tensors.len(), 2);
        assert_eq!(h2.tensors[0].start, at[0]);
        assert_eq!(h2.tensors[0].shape, vec![1]);
        assert!(matches("l1*", "l1.b") && !matches("l1.", "l10.b") && matches("l0.w", "l0.w"));
    }
}
