//! The guest's `between-bytes-timeout` on a response body: a body that
//! sends nothing for that long ends with `connection-read-timeout`.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::{Error as HttpError, WasiBody};

/// `inner`, failing once `idle` passes between two of its frames (or
/// before the first).
pub(crate) struct BetweenBytes {
    inner: WasiBody,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
}

impl BetweenBytes {
    pub(crate) fn new(inner: WasiBody, idle: Duration) -> BetweenBytes {
        BetweenBytes { inner, idle, timer: Box::pin(tokio::time::sleep(idle)) }
    }
}

impl Body for BetweenBytes {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let next = Instant::now() + this.idle;
                this.timer.as_mut().reset(next);
                Poll::Ready(frame)
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use super::*;

    fn body_of(mut receiver: tokio::sync::mpsc::Receiver<Bytes>) -> WasiBody {
        let frames =
            futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx).map(|d| d.map(Frame::data).map(Ok)));
        http_body_util::StreamBody::new(frames).boxed_unsync()
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_goes_quiet_fails_and_one_that_keeps_talking_does_not() {
        let (sender, receiver) = tokio::sync::mpsc::channel(1);
        let mut body = BetweenBytes::new(body_of(receiver), Duration::from_secs(1));
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(900)).await;
            sender.send(Bytes::from_static(b"x")).await.unwrap();
            assert!(body.frame().await.unwrap().unwrap().is_data(), "a frame within the second");
        }
        let quiet = body.frame().await.unwrap();
        assert!(matches!(quiet, Err(HttpError::ConnectionReadTimeout)), "{quiet:?}");
        drop(sender);
    }
}
