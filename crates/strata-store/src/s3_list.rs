//! ListObjectsV2 sent by Strata with `encoding-type=url`, used when object_store's own
//! listing fails on a key it cannot carry: object_store parses every key of a page and fails
//! the whole listing at the first one with a control character (a key with a newline made
//! `ls` and `cp -r` of the whole prefix fail). Here the keys arrive URL-encoded, so the XML
//! holds any key; the keys this client cannot address are reported as [`Skipped`] and the
//! rest are listed.

use chrono::{DateTime, Utc};
use object_store::path::Path;
use serde::Deserialize;

use crate::error::{Result, StoreError};
use crate::s3_raw::S3Raw;
use crate::store::{ObjectInfo, Skipped, Store};

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Page {
    contents: Vec<Entry>,
    common_prefixes: Vec<CommonPrefix>,
    is_truncated: bool,
    next_continuation_token: Option<String>,
    encoding_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    key: String,
    size: u64,
    last_modified: Option<String>,
    #[serde(rename = "ETag")]
    e_tag: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CommonPrefix {
    prefix: String,
}

/// One page of a ListObjectsV2 reply.
fn parse_page(xml: &str) -> std::result::Result<Page, quick_xml::de::DeError> {
    quick_xml::de::from_str(xml)
}

/// A key as sent with `encoding-type=url`: `+` is a space, `%XX` a byte.
fn decode(s: &str, encoded: bool) -> String {
    if !encoded {
        return s.to_string();
    }
    let plus = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8_lossy()
        .into_owned()
}

/// What a listing found.
pub(crate) struct RawListing {
    pub objects: Vec<ObjectInfo>,
    /// Common prefixes, without the trailing `/` (one-level listings only).
    pub prefixes: Vec<String>,
    pub skipped: Vec<Skipped>,
}

/// Lists `prefix` (a directory: `prefix/`), recursively or one level (`delimiter`).
/// `Ok(None)` when the store is not S3 or cannot sign these requests.
pub(crate) async fn list(
    store: &Store,
    prefix: &str,
    one_level: bool,
) -> Result<Option<RawListing>> {
    let Some(raw) = S3Raw::new(store)? else {
        return Ok(None);
    };
    let dir = if prefix.is_empty() {
        String::new()
    } else {
        format!("{}/", prefix.trim_end_matches('/'))
    };
    let shown = store.url(prefix);
    let mut out = RawListing {
        objects: Vec::new(),
        prefixes: Vec::new(),
        skipped: Vec::new(),
    };
    let mut token: Option<String> = None;
    loop {
        let mut query = vec![
            ("list-type", "2"),
            ("encoding-type", "url"),
            ("prefix", dir.as_str()),
        ];
        if one_level {
            query.push(("delimiter", "/"));
        }
        if let Some(t) = &token {
            query.push(("continuation-token", t));
        }
        let text = raw.get(store, "LIST", &shown, &query).await?;
        let page = parse_page(&text).map_err(|e| StoreError::Io {
            op: "list",
            path: shown.to_string(),
            source: std::io::Error::other(format!("malformed ListObjectsV2 reply: {e}")),
        })?;
        let encoded = page.encoding_type.as_deref() == Some("url");
        for e in page.contents {
            let key = decode(&e.key, encoded);
            if Path::parse(&key).is_err() {
                out.skipped.push(Skipped {
                    key,
                    reason: "the key holds a control character or an empty or `.`/`..` segment, which this client cannot address".into(),
                });
                continue;
            }
            out.objects.push(ObjectInfo {
                key,
                size: e.size,
                e_tag: e.e_tag,
                version: None,
                last_modified: e
                    .last_modified
                    .as_deref()
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                    .map_or(DateTime::<Utc>::UNIX_EPOCH, |t| t.with_timezone(&Utc)),
            });
        }
        for p in page.common_prefixes {
            let p = decode(&p.prefix, encoded);
            out.prefixes.push(p.trim_end_matches('/').to_string());
        }
        match page.next_continuation_token {
            Some(t) if page.is_truncated && token.as_ref() != Some(&t) => token = Some(t),
            _ => break,
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_back_decoded_and_pages_chain() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>p%2F</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>
  <EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <NextContinuationToken>tok</NextContinuationToken>
  <Contents><Key>p/new%0Aline</Key><LastModified>2026-12-07T10:00:00.000Z</LastModified><ETag>"e1"</ETag><Size>3</Size></Contents>
  <Contents><Key>p/uni-%C3%A9+x%2B</Key><LastModified>2026-12-07T10:00:00.000Z</LastModified><ETag>"e2"</ETag><Size>4</Size></Contents>
  <CommonPrefixes><Prefix>p/sub%2F</Prefix></CommonPrefixes>
</ListBucketResult>"#;
        let p = parse_page(xml).unwrap();
        assert!(p.is_truncated);
        assert_eq!(p.next_continuation_token.as_deref(), Some("tok"));
        let encoded = p.encoding_type.as_deref() == Some("url");
        let keys: Vec<String> = p.contents.iter().map(|e| decode(&e.key, encoded)).collect();
        assert_eq!(keys, ["p/new\nline", "p/uni-é x+"]);
        assert_eq!(decode(&p.common_prefixes[0].prefix, encoded), "p/sub/");
        // A server that ignores encoding-type sends keys as they are.
        assert_eq!(decode("100%+x", false), "100%+x");
    }
}
