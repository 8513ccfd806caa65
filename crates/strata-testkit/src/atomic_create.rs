//! `s3s-fs` checks `If-None-Match: *` and then writes, so two concurrent conditional
//! creates of one key can both succeed, where S3 lets exactly one win. This wrapper makes
//! the check and the write one step (a lock held across conditional writes), so the test
//! server behaves like S3 for protocols built on conditional create (checkpoint leases).
//! Every other request passes straight through.

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result};
use tokio::sync::Mutex;

use crate::pass_through::pass;

/// `inner` with atomic conditional creates.
pub struct AtomicCreates<T> {
    inner: T,
    lock: Mutex<()>,
}

impl<T> AtomicCreates<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            lock: Mutex::new(()),
        }
    }
}

impl<T: S3> S3 for AtomicCreates<T> {
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
        create_multipart_upload: CreateMultipartUploadInput => CreateMultipartUploadOutput,
        upload_part: UploadPartInput => UploadPartOutput,
        upload_part_copy: UploadPartCopyInput => UploadPartCopyOutput,
        list_parts: ListPartsInput => ListPartsOutput,
        complete_multipart_upload: CompleteMultipartUploadInput => CompleteMultipartUploadOutput,
        abort_multipart_upload: AbortMultipartUploadInput => AbortMultipartUploadOutput,
    }

    fn put_object<'life0, 'async_trait>(
        &'life0 self,
        req: S3Request<PutObjectInput>,
    ) -> std::pin::Pin<
        Box<
            dyn std::future::Future<Output = S3Result<S3Response<PutObjectOutput>>>
                + Send
                + 'async_trait,
        >,
    >
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            if req.input.if_none_match.is_some() {
                let _one_at_a_time = self.lock.lock().await;
                self.inner.put_object(req).await
            } else {
                self.inner.put_object(req).await
            }
        })
    }
}
