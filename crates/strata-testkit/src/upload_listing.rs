//! ListMultipartUploads for the in-process server: `s3s-fs` does not implement it. This
//! wrapper remembers every multipart upload it sees started and not yet completed or
//! aborted (with the time it started), and answers the listing from that, in key order, with
//! S3's paging markers. Uploads started before the server was (re)started are not known.
//! An upload whose record s3s-fs has deleted (a completion cut off when its client died:
//! s3s-fs deletes the record first, then copies) is not listed: it cannot be aborted.
//! CreateMultipartUpload runs on a task of its own: s3s-fs writes the upload's record and
//! then its metadata, and a client that dies in between (a SIGKILLed drain) must not cancel
//! the request half-way and leave an upload this wrapper never saw, as S3 would not.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};

use crate::pass_through::pass;

/// (bucket, key, upload ID) → when it started.
type Uploads = BTreeMap<(String, String, String), SystemTime>;

/// `inner`, with multipart uploads tracked and listable.
pub struct ListsUploads<T> {
    inner: Arc<T>,
    /// s3s-fs's root, where it keeps `.upload-ID.json` for each open upload.
    root: PathBuf,
    uploads: Arc<Mutex<Uploads>>,
}

impl<T> ListsUploads<T> {
    /// Wraps `inner`, whose files live under `root`.
    pub fn new(inner: T, root: PathBuf) -> Self {
        Self {
            inner: Arc::new(inner),
            root,
            uploads: Arc::default(),
        }
    }

    fn uploads(&self) -> std::sync::MutexGuard<'_, Uploads> {
        self.uploads.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl<T: S3 + 'static> S3 for ListsUploads<T> {
    pass! {
        create_bucket: CreateBucketInput => CreateBucketOutput,
        copy_object: CopyObjectInput => CopyObjectOutput,
        delete_bucket: DeleteBucketInput => DeleteBucketOutput,
        delete_object: DeleteObjectInput => DeleteObjectOutput,
        delete_objects: DeleteObjectsInput => DeleteObjectsOutput,
        get_bucket_location: GetBucketLocationInput => GetBucketLocationOutput,
        get_object: GetObjectInput => GetObjectOutput,
        head_bucket: HeadBucketInput => HeadBucketOutput,
        head_object: HeadObjectInput => HeadObjectOutput,
        list_buckets: ListBucketsInput => ListBucketsOutput,
        list_objects: ListObjectsInput => ListObjectsOutput,
        list_objects_v2: ListObjectsV2Input => ListObjectsV2Output,
        put_object: PutObjectInput => PutObjectOutput,
        upload_part: UploadPartInput => UploadPartOutput,
        upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
        list_parts: ListPartsInput => ListPartsOutput,
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let (inner, uploads) = (self.inner.clone(), self.uploads.clone());
        tokio::spawn(async move {
            let resp = inner.create_multipart_upload(req).await?;
            if let Some(id) = &resp.output.upload_id {
                uploads
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((bucket, key, id.clone()), SystemTime::now());
            }
            Ok(resp)
        })
        .await
        .map_err(|e| s3s::s3_error!(InternalError, "create task: {e}"))?
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let k = (
            req.input.bucket.clone(),
            req.input.key.clone(),
            req.input.upload_id.clone(),
        );
        let resp = self.inner.complete_multipart_upload(req).await?;
        self.uploads().remove(&k);
        Ok(resp)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let k = (
            req.input.bucket.clone(),
            req.input.key.clone(),
            req.input.upload_id.clone(),
        );
        let resp = self.inner.abort_multipart_upload(req).await;
        // Gone either way: aborted now, or unknown to the server.
        self.uploads().remove(&k);
        resp
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let i = req.input;
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = i.max_uploads.unwrap_or(1000).clamp(1, 1000) as usize;
        let after = (
            i.key_marker.clone().unwrap_or_default(),
            i.upload_id_marker.clone().unwrap_or_default(),
        );
        self.uploads()
            .retain(|(_, _, u), _| self.root.join(format!(".upload-{u}.json")).exists());
        let all: Vec<_> = self
            .uploads()
            .iter()
            .filter(|((b, k, u), _)| {
                *b == i.bucket
                    && k.starts_with(&prefix)
                    && (i.key_marker.is_none() || (k.clone(), u.clone()) > after)
            })
            .map(|((_, k, u), t)| (k.clone(), u.clone(), *t))
            .collect();
        let truncated = all.len() > max;
        let page = &all[..all.len().min(max)];
        let last = page.last().cloned();
        let output = ListMultipartUploadsOutput {
            bucket: Some(i.bucket),
            prefix: i.prefix,
            key_marker: i.key_marker,
            upload_id_marker: i.upload_id_marker,
            max_uploads: Some(max as i32),
            is_truncated: Some(truncated),
            next_key_marker: last.as_ref().filter(|_| truncated).map(|l| l.0.clone()),
            next_upload_id_marker: last.as_ref().filter(|_| truncated).map(|l| l.1.clone()),
            uploads: Some(
                page.iter()
                    .map(|(k, u, t)| MultipartUpload {
                        key: Some(k.clone()),
                        upload_id: Some(u.clone()),
                        initiated: Some(Timestamp::from(*t)),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        };
        Ok(S3Response::new(output))
    }
}
