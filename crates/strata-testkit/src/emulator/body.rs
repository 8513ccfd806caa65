//! Shaped bodies: a body passed through the link, paced by token buckets, and cut or
//! stalled when the profile says so.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::Frame;
use strata_store::token_bucket::TokenBucket;

use super::Stats;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Pieces are paced at most this large, so a cap is smooth even when the server writes big
/// chunks.
const SLICE: usize = 64 * 1024;

/// What to do to one body.
#[derive(Default, Clone)]
pub struct Shape {
    pub buckets: Vec<Arc<TokenBucket>>,
    /// Cut the connection after this many bytes.
    pub reset_after: Option<u64>,
    /// Pause for the duration after this many bytes.
    pub stall_after: Option<(u64, Duration)>,
}

/// Wraps `inner` so its data frames are paced and faulted by `shape`. `on_bytes` counts the
/// bytes that pass. `hold` is kept alive until the body is finished or dropped.
pub fn shaped<B, H>(inner: B, shape: Shape, stats: Arc<Stats>, down: bool, hold: H) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
    H: Send + 'static,
{
    let hint = hyper::body::Body::size_hint(&inner);
    let frames = http_body_util::BodyStream::new(inner)
        .map(|r| r.map_err(Into::into))
        .flat_map(|r: Result<Frame<Bytes>, BoxError>| {
            // Split large data frames into slices; pass other frames and errors through.
            let items: Vec<Result<Frame<Bytes>, BoxError>> = match r {
                Ok(frame) => match frame.into_data() {
                    Ok(mut data) => {
                        let mut v = Vec::with_capacity(data.len() / SLICE + 1);
                        while data.len() > SLICE {
                            v.push(Ok(Frame::data(data.split_to(SLICE))));
                        }
                        v.push(Ok(Frame::data(data)));
                        v
                    }
                    Err(frame) => vec![Ok(frame)],
                },
                Err(e) => vec![Err(e)],
            };
            futures::stream::iter(items)
        });
    let state = (shape, 0u64, false, hold);
    let paced = frames.scan(state, move |(shape, sent, stalled, _hold), item| {
        let stats = stats.clone();
        let shape = shape.clone();
        let before = *sent;
        let len = match &item {
            Ok(f) => f.data_ref().map_or(0, |d| d.len() as u64),
            Err(_) => 0,
        };
        *sent += len;
        let stall = match shape.stall_after {
            Some((at, d)) if !*stalled && before + len > at => {
                *stalled = true;
                Some(d)
            }
            _ => None,
        };
        let reset = shape.reset_after.is_some_and(|at| before + len > at);
        async move {
            if reset {
                stats.add_reset();
                return Some(Err::<Frame<Bytes>, BoxError>(Box::new(
                    std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "link emulator: injected connection reset",
                    ),
                )));
            }
            if let Some(d) = stall {
                stats.add_stall();
                tokio::time::sleep(d).await;
            }
            if len > 0 {
                let wait = shape
                    .buckets
                    .iter()
                    .map(|b| b.reserve(len))
                    .max()
                    .unwrap_or(Duration::ZERO);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                stats.add_bytes(down, len);
            }
            Some(item)
        }
    });
    // Stop after the first error so hyper sees the body end there.
    let mut failed = false;
    let ended = Box::pin(paced).take_while(move |item| {
        let go = !failed;
        failed |= item.is_err();
        futures::future::ready(go)
    });
    BodyExt::boxed_unsync(Sized {
        inner: StreamBody::new(ended),
        hint,
    })
}

/// A body that reports the size of the body it shapes, so that `Content-Length` survives the
/// proxy (a PUT without it is refused by S3 servers).
struct Sized<B> {
    inner: B,
    hint: hyper::body::SizeHint,
}

impl<B: hyper::body::Body + Unpin> hyper::body::Body for Sized<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.hint
    }
}
