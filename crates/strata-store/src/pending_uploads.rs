//! Multipart uploads that were started and never completed or aborted: a process killed in
//! the middle of an upload leaves one behind, invisible to listings of objects and billed
//! by the byte until someone aborts it.
//!
//! object_store 0.14 has no ListMultipartUploads, so [`Store::pending_uploads`] sends it
//! itself (`s3_raw`). Aborting goes through object_store's `MultipartStore`.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error::{Result, StoreError};
use crate::retry::with_retry;
use crate::s3_raw::S3Raw;
use crate::store::{Store, object_path};

/// One multipart upload in progress (or abandoned).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PendingUpload {
    /// The object key it would create.
    pub key: String,
    /// The store's upload ID.
    pub upload_id: String,
    /// When it was started, if the store says.
    pub initiated: Option<DateTime<Utc>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ListResult {
    upload: Vec<UploadEntry>,
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UploadEntry {
    key: String,
    upload_id: String,
    initiated: Option<String>,
}

/// Parses one page of a ListMultipartUploads response.
fn parse_page(xml: &str) -> std::result::Result<ListResult, quick_xml::DeError> {
    quick_xml::de::from_str(xml)
}

impl Store {
    /// Multipart uploads in progress under `prefix` (a key prefix in this store's bucket), in
    /// key order. `Ok(None)` when this store cannot list them: not S3, or credentials that
    /// come from a provider chain (instance metadata, web identity) this request cannot sign
    /// with.
    pub async fn pending_uploads(&self, prefix: &str) -> Result<Option<Vec<PendingUpload>>> {
        let Some(raw) = S3Raw::new(self)? else {
            return Ok(None);
        };
        let shown = self.url(prefix);
        let mut out = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query = vec![("uploads", ""), ("prefix", prefix)];
            if let Some((k, u)) = &markers {
                query.push(("key-marker", k));
                query.push(("upload-id-marker", u));
            }
            let page = raw
                .get(self, "ListMultipartUploads", &shown, &query)
                .await?;
            let page = parse_page(&page).map_err(|e| StoreError::Io {
                op: "list pending uploads",
                path: shown.to_string(),
                source: std::io::Error::other(format!("malformed ListMultipartUploads reply: {e}")),
            })?;
            for u in page.upload {
                out.push(PendingUpload {
                    initiated: u
                        .initiated
                        .as_deref()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .map(|t| t.with_timezone(&Utc)),
                    key: u.key,
                    upload_id: u.upload_id,
                });
            }
            match (
                page.is_truncated,
                page.next_key_marker,
                page.next_upload_id_marker,
            ) {
                (true, Some(k), Some(u)) if markers.as_ref() != Some(&(k.clone(), u.clone())) => {
                    markers = Some((k, u));
                }
                _ => break,
            }
        }
        out.sort_by(|a, b| a.key.cmp(&b.key).then(a.upload_id.cmp(&b.upload_id)));
        Ok(Some(out))
    }

    /// Aborts multipart upload `upload_id` of `key`, freeing its parts. An upload that is
    /// already gone counts as aborted.
    pub async fn abort_upload(&self, key: &str, upload_id: &str) -> Result<()> {
        let Some(mp) = self.mp.clone() else {
            return Ok(());
        };
        let path = object_path(key)?;
        let id = upload_id.to_string();
        let r = with_retry(
            &self.config().retry,
            "AbortMultipartUpload",
            &self.url(key),
            || {
                let mp = mp.clone();
                let path = path.clone();
                let id = id.clone();
                async move { mp.abort_multipart(&path, &id).await }
            },
        )
        .await;
        match r {
            Err(e) if e.kind() == crate::error::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_parse_with_and_without_uploads() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
  <NextKeyMarker>ck/step-2/a</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>
  <MaxUploads>1000</MaxUploads><IsTruncated>true</IsTruncated>
  <Upload><Key>ck/step-1/a</Key><UploadId>u1</UploadId><Initiated>2026-11-22T10:00:00.000Z</Initiated></Upload>
  <Upload><Key>ck/step-2/a</Key><UploadId>u2</UploadId></Upload>
</ListMultipartUploadsResult>"#;
        let p = parse_page(xml).unwrap();
        assert_eq!(p.upload.len(), 2);
        assert!(p.is_truncated);
        assert_eq!(p.next_upload_id_marker.as_deref(), Some("u2"));
        assert_eq!(
            p.upload[0].initiated.as_deref(),
            Some("2026-11-22T10:00:00.000Z")
        );
        let empty = parse_page(
            "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>",
        )
        .unwrap();
        assert!(empty.upload.is_empty() && !empty.is_truncated);
        assert!(parse_page("<<not xml").is_err());
    }
}
