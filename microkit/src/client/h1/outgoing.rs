//! The bytes of a request waiting to be written: a buffer the head and small body frames are
//! copied into, and at most one large frame written from where it is.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::AsyncWrite;

use super::encode::{chunk_start, CHUNK_END};

/// Frames up to this size are copied behind the head, so that a request with a small body
/// goes out in one `write`; larger ones go out as they are, in the same `writev`.
const COPY_AT_MOST: usize = 4096;

/// Past this many buffered bytes, the buffer is written before more is added.
const BUFFER_AT_MOST: usize = 64 * 1024;

/// A connection's pending output. The buffer is kept between requests, so writing a head
/// allocates nothing once the connection has carried one.
#[derive(Default)]
pub(super) struct Outgoing {
    buf: Vec<u8>,
    /// How much of `buf` is written.
    written: usize,
    /// A large frame, after `buf`.
    data: Bytes,
    /// Whether a chunk's end follows `data`.
    chunk_end: bool,
    /// Bytes were written and the flush that must follow has not completed.
    unflushed: bool,
}

impl Outgoing {
    /// Nothing left to write.
    pub(super) fn is_empty(&self) -> bool {
        self.bytes_written() && !self.unflushed
    }

    fn bytes_written(&self) -> bool {
        self.written == self.buf.len() && self.data.is_empty() && !self.chunk_end
    }

    /// Lets go of a large buffer while nothing is pending, keeping a small one warm.
    pub(super) fn shrink(&mut self, keep: usize) {
        if self.is_empty() && self.buf.capacity() > keep {
            self.buf = Vec::with_capacity(keep);
        }
    }

    /// Whether more can be added behind what is pending without writing first.
    pub(super) fn has_room(&self) -> bool {
        self.data.is_empty() && !self.chunk_end && self.buf.len() < BUFFER_AT_MOST
    }

    /// The buffer to append to; only while [`has_room`](Self::has_room).
    pub(super) fn buf(&mut self) -> &mut Vec<u8> {
        debug_assert!(self.data.is_empty() && !self.chunk_end);
        &mut self.buf
    }

    /// Queues a body frame, in a chunk when `chunked`; only while [`has_room`](Self::has_room).
    pub(super) fn push_data(&mut self, data: Bytes, chunked: bool) {
        debug_assert!(self.has_room());
        if chunked {
            chunk_start(&mut self.buf, data.len());
        }
        if data.len() <= COPY_AT_MOST {
            self.buf.extend_from_slice(&data);
            if chunked {
                self.buf.extend_from_slice(CHUNK_END);
            }
        } else {
            self.data = data;
            self.chunk_end = chunked;
        }
    }

    /// Writes until nothing is pending (then flushes, for TLS), or the socket is full.
    pub(super) fn poll_write<S>(&mut self, io: &mut S, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        S: AsyncWrite + Unpin,
    {
        while !self.bytes_written() {
            self.unflushed = true;
            let end: &[u8] = if self.chunk_end { CHUNK_END } else { &[] };
            let slices = [
                IoSlice::new(&self.buf[self.written..]),
                IoSlice::new(&self.data),
                IoSlice::new(end),
            ];
            let wrote = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices))?;
            if wrote == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.advance(wrote);
        }
        self.buf.clear();
        self.written = 0;
        ready!(Pin::new(io).poll_flush(cx))?;
        self.unflushed = false;
        Poll::Ready(Ok(()))
    }

    fn advance(&mut self, mut wrote: usize) {
        let from_buf = wrote.min(self.buf.len() - self.written);
        self.written += from_buf;
        wrote -= from_buf;
        let from_data = wrote.min(self.data.len());
        self.data.advance(from_data);
        wrote -= from_data;
        if wrote > 0 {
            // A socket may legally take part of the two-byte chunk end: the rest goes next.
            self.chunk_end = false;
            self.buf.clear();
            self.written = 0;
            self.buf.extend_from_slice(&CHUNK_END[wrote..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    /// A socket that takes at most `step` bytes per write, across the slices it is given.
    struct Trickle {
        written: Vec<u8>,
        step: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            let mut room = this.step;
            for buf in bufs {
                let take = buf.len().min(room);
                this.written.extend_from_slice(&buf[..take]);
                room -= take;
            }
            Poll::Ready(Ok(this.step - room))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn partial_writes_keep_the_order_of_head_frames_and_chunk_ends() {
        let large = Bytes::from(vec![b'L'; COPY_AT_MOST + 1]);
        for step in [1, 2, 3, 7, 1000, 100_000] {
            let mut outgoing = Outgoing::default();
            let mut socket = Trickle {
                written: Vec::new(),
                step,
            };
            outgoing.buf().extend_from_slice(b"HEAD\r\n\r\n");
            outgoing.push_data(Bytes::from_static(b"small"), true);
            assert!(outgoing.has_room());
            outgoing.push_data(large.clone(), true);
            assert!(
                !outgoing.has_room(),
                "a large frame is written before more is added"
            );
            poll_fn(|cx| outgoing.poll_write(&mut socket, cx))
                .await
                .unwrap();
            assert!(outgoing.is_empty());
            outgoing.push_data(Bytes::from_static(b"end"), false);
            poll_fn(|cx| outgoing.poll_write(&mut socket, cx))
                .await
                .unwrap();
            let expected = [
                &b"HEAD\r\n\r\n5\r\nsmall\r\n1001\r\n"[..],
                &large,
                b"\r\nend",
            ]
            .concat();
            assert!(socket.written == expected, "step {step}");
        }
    }
}
