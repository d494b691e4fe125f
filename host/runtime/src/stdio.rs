//! The guest's stdout and stderr: a small tail buffer per call, so a panic
//! message can be quoted in the error, and writing never fails or traps.

use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi_io::poll::Pollable;
use wasmtime_wasi_io::streams::{OutputStream, StreamError};

/// How much of a call's output is kept (the end of it).
const TAIL_BYTES: usize = 2048;

/// Keeps the last [`TAIL_BYTES`] written; older output is dropped.
#[derive(Clone, Default)]
pub(crate) struct OutputTail {
    buffer: Arc<Mutex<VecDeque<u8>>>,
}

impl OutputTail {
    fn push(&self, bytes: &[u8]) {
        let mut buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = &bytes[bytes.len().saturating_sub(TAIL_BYTES)..];
        let overflow = (buffer.len() + bytes.len()).saturating_sub(TAIL_BYTES);
        buffer.drain(..overflow);
        buffer.extend(bytes);
    }

    /// Forgets what was written (a warm instance's next call).
    pub(crate) fn clear(&self) {
        self.buffer.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// The last non-empty lines written, joined with ` | `, for error messages.
    pub(crate) fn last_lines(&self) -> Option<String> {
        let buffer = self.buffer.lock().unwrap_or_else(PoisonError::into_inner);
        if buffer.is_empty() {
            return None;
        }
        let bytes: Vec<u8> = buffer.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes);
        // Rust's advice to set RUST_BACKTRACE is noise in a host's error.
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("note: run with `RUST_BACKTRACE"))
            .collect();
        let start = lines.len().saturating_sub(3);
        Some(lines[start..].join(" | "))
    }
}

#[async_trait::async_trait]
impl OutputStream for OutputTail {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for OutputTail {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for OutputTail {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for OutputTail {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputTail {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_tail_and_the_last_lines() {
        let tail = OutputTail::default();
        assert_eq!(tail.last_lines(), None);
        for i in 0..1000 {
            tail.push(format!("line {i}\n").as_bytes());
        }
        assert_eq!(tail.last_lines().as_deref(), Some("line 997 | line 998 | line 999"));
        assert!(tail.buffer.lock().unwrap().len() <= TAIL_BYTES);
    }
}
