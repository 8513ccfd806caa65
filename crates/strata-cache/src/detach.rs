//! Reads that finish whether or not their caller keeps polling.
//!
//! A block fill holds things other readers wait for: the single-flight cell of its block (other
//! tasks of this process) and the block's cross-process fetch lock (other processes sharing the
//! cache directory). A fill driven by a stream that its consumer polls only now and then (a
//! Python iterator between `next` calls, a DataLoader worker waiting for the loader to ask, an
//! HTTP body whose client stopped reading) would hold them for as long as the consumer pauses:
//! a DataLoader worker waiting for its turn then blocks the other worker, which the loader waits
//! for, and neither moves again. Run such reads on their own task instead.

use std::future::Future;

/// Runs `fut` on its own task of the current runtime and waits for its output. The task goes
/// on if this future is dropped (its work lands in the cache for whoever reads next); a panic
/// in it resumes here.
///
/// Must be polled inside a Tokio runtime.
pub async fn detach<F>(fut: F) -> F::Output
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match tokio::spawn(fut).await {
        Ok(out) => out,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only a runtime shutting down cancels a task nobody aborts.
        Err(e) => panic!("a detached read was cancelled: {e}"),
    }
}
