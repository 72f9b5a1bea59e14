//! A client socket that can be asked to check, before the next request is written, whether
//! the server closed it.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// A TCP stream for hyper whose next read first asks the kernel whether the peer closed the
/// connection, when `probe` is set.
///
/// Why: a server closes idle keep-alive connections (its timeout, a restart). The runtime
/// learns of the close only when its reactor next runs, which under load can be after the
/// client has picked the connection and written a request on it; the request then fails after
/// it was sent, and a non-idempotent one cannot be retried. A pooled connection is probed when
/// it is checked out: hyper reads before it writes on an idle connection, so a close seen here
/// makes hyper end the connection with the request still unsent, and the pool sends it on
/// another. It costs one `recv(MSG_PEEK)` per reuse.
pub(super) struct ProbedIo {
    io: TokioIo<TcpStream>,
    probe: Arc<AtomicBool>,
}

impl ProbedIo {
    pub(super) fn new(stream: TcpStream, probe: Arc<AtomicBool>) -> Self {
        Self {
            io: TokioIo::new(stream),
            probe,
        }
    }
}

/// Whether the peer closed or reset the connection; data waiting or nothing yet means open.
fn closed_by_peer(stream: &TcpStream) -> bool {
    let mut byte = [MaybeUninit::<u8>::uninit()];
    match socket2::SockRef::from(stream).peek(&mut byte) {
        Ok(read) => read == 0,
        Err(err) => err.kind() != io::ErrorKind::WouldBlock,
    }
}

impl Read for ProbedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.probe.load(Ordering::Relaxed) {
            this.probe.store(false, Ordering::Relaxed);
            if closed_by_peer(this.io.inner()) {
                // Nothing read: end of stream, which hyper takes as the server's close.
                return Poll::Ready(Ok(()));
            }
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl Write for ProbedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}
