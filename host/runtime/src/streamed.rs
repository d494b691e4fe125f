//! The body of a wasi:http guest's response as the host sends it. The
//! guest may keep streaming after it answered, so how its call ends
//! decides how the body ends: cleanly when the call succeeded; with an
//! error when the guest trapped, ran out of fuel or time after answering,
//! or wrote past the response cap. A client then sees an aborted response
//! (HTTP/1.1: the connection closes without the last chunk; HTTP/2: the
//! stream is reset), never a clean but truncated one. Whoever serves the
//! body is told how the call ended (its fuel, or the error) once known.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::task::JoinHandle;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::call::Identity;
use crate::error::{InvokeError, InvokeErrorKind};
use crate::invoke::Called;

/// How a streamed call ended: what it cost, or why it failed.
pub type Outcome = Result<Called<()>, InvokeError>;

/// Told how a streamed call ended, once.
type OnFinish = Box<dyn FnOnce(&Outcome) + Send>;

/// Why a streamed body was cut short.
pub(crate) type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// A wasi:http guest's response body, ended by how its call ended.
pub struct StreamedBody {
    inner: HyperOutgoingBody,
    call: Option<JoinHandle<Outcome>>,
    identity: Arc<Identity>,
    sent: u64,
    max_bytes: u64,
    on_finish: Option<OnFinish>,
    ended: bool,
}

impl StreamedBody {
    pub(crate) fn new(
        inner: HyperOutgoingBody,
        call: JoinHandle<Outcome>,
        identity: Arc<Identity>,
        max_bytes: u64,
    ) -> StreamedBody {
        StreamedBody { inner, call: Some(call), identity, sent: 0, max_bytes, on_finish: None, ended: false }
    }

    /// Calls `on_finish` with the call's outcome when it is known (not when
    /// the client went away before the end).
    pub fn on_finish(mut self, on_finish: impl FnOnce(&Outcome) + Send + 'static) -> StreamedBody {
        self.on_finish = Some(Box::new(on_finish));
        self
    }

    /// Ends the body with `outcome`: cleanly when the call succeeded.
    fn end(&mut self, outcome: Outcome) -> Option<Result<Frame<Bytes>, BodyError>> {
        self.ended = true;
        if let Some(call) = self.call.take() {
            call.abort();
        }
        if let Some(on_finish) = self.on_finish.take() {
            on_finish(&outcome);
        }
        match outcome {
            Ok(_) => None,
            Err(error) => Some(Err(Box::new(error))),
        }
    }
}

impl Body for StreamedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                    if this.sent > this.max_bytes {
                        let message = format!("its streamed response passed the limit of {} bytes", this.max_bytes);
                        let error = this.identity.error(InvokeErrorKind::Host(message));
                        return Poll::Ready(this.end(Err(error)));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(error)) => {
                let message = format!("its response stream failed: {error}");
                Poll::Ready(this.end(Err(this.identity.error(InvokeErrorKind::Trap(message)))))
            }
            // The guest closed its stream: the call's end says whether the
            // body is whole.
            None => {
                let Some(call) = this.call.as_mut() else { return Poll::Ready(None) };
                let outcome = match ready!(Pin::new(call).poll(cx)) {
                    Ok(outcome) => outcome,
                    Err(join) => {
                        Err(this.identity.error(InvokeErrorKind::Host(format!("the call's task failed: {join}"))))
                    }
                };
                this.call = None;
                Poll::Ready(this.end(outcome))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> SizeHint {
        match self.ended {
            true => SizeHint::with_exact(0),
            false => self.inner.size_hint(),
        }
    }
}

impl Drop for StreamedBody {
    fn drop(&mut self) {
        // The client went away: the guest has no one to stream to.
        if let Some(call) = self.call.take() {
            call.abort();
        }
    }
}
