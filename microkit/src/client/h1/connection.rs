//! One HTTP/1.1 connection to an upstream: the state of the exchange on it, moved forward by
//! whoever waits on it (the task sending the request, then the one reading the answer's
//! body), with no task of its own.
//!
//! Reading and writing go on together: the answer's head is read while the request body is
//! still being written (a server may answer early, or stream its answer back as the request
//! arrives), and the answer's body reads keep the request body flowing.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::HeaderName;
use http::request::Parts;
use http::{response, HeaderMap, Method};
use http_body::{Body as _, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use super::body::{BodyDecoder, Decoded};
use super::encode::{self, BodyHint, Framing};
use super::error::Error;
use super::head::{self, FieldSpan};
use super::outgoing::Outgoing;
use crate::Body;

/// The first read asks for this much room; a read that fills its room doubles the next, up
/// to [`MAX_READ`], so that large bodies take few system calls and small answers little
/// memory.
const FIRST_READ: usize = 8 * 1024;
const MAX_READ: usize = 64 * 1024;

/// An HTTP/1.1 client connection over `io`, carrying one exchange at a time.
pub(crate) struct Connection<S> {
    io: S,
    /// What was read and not yet taken: the head, then body bytes. Kept between exchanges.
    read_buf: BytesMut,
    read_size: usize,
    /// The server closed its side (a read returned nothing).
    read_closed: bool,
    outgoing: Outgoing,
    writing: Writing,
    reading: Reading,
    /// Neither side asked to close after the exchange.
    keep_alive: bool,
    /// An exchange failed: the connection is done.
    broken: bool,
    /// Why writing the request stopped early, if it did: reported if no answer comes.
    write_error: Option<std::io::Error>,
    /// Scratch space for the head parser, kept so that parsing allocates nothing of its own.
    spans: Vec<FieldSpan>,
}

/// The request's side of the exchange.
enum Writing {
    /// Nothing more to produce (what is produced may still be in [`Outgoing`]).
    Done,
    /// The body still has frames to give.
    Body {
        body: Body,
        /// Bytes the body still owes its `Content-Length`, or `None` when chunked.
        left: Option<u64>,
        /// Trailer fields the request declared.
        trailers: Vec<HeaderName>,
    },
}

/// The answer's side of the exchange.
enum Reading {
    /// No exchange, or its answer was read to the end.
    Idle,
    /// Waiting for the head; `head_request`: the request was a `HEAD`.
    Head {
        head_request: bool,
    },
    Body(BodyDecoder),
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    pub(crate) fn new(io: S) -> Self {
        Self {
            io,
            read_buf: BytesMut::new(),
            read_size: FIRST_READ,
            read_closed: false,
            outgoing: Outgoing::default(),
            writing: Writing::Done,
            reading: Reading::Idle,
            keep_alive: true,
            broken: false,
            write_error: None,
            spans: Vec::new(),
        }
    }

    /// The transport, to probe.
    pub(crate) fn io(&self) -> &S {
        &self.io
    }

    /// Whether the idle connection is still good for a request: whatever the socket has is
    /// read without waiting, and an end of stream (the server closed it) or bytes nobody asked
    /// for (they cannot belong to the next answer) mean it is not. Costs no system call
    /// unless the runtime saw the socket become readable.
    pub(crate) fn poll_idle(&mut self, cx: &mut Context<'_>) -> bool {
        debug_assert!(matches!(self.reading, Reading::Idle) && self.read_buf.is_empty());
        match self.poll_fill(cx) {
            Poll::Pending => true,
            Poll::Ready(_) => {
                self.broken = true;
                false
            }
        }
    }

    /// Lets go of buffers a large exchange grew, before the connection waits idle in the pool
    /// (up to 1024 idle connections per address: 128 KiB each would add up).
    pub(crate) fn shrink_idle(&mut self) {
        const KEEP: usize = 8 * 1024;
        self.outgoing.shrink(KEEP);
        if self.read_buf.is_empty() && self.read_buf.capacity() > 2 * KEEP {
            self.read_buf = BytesMut::new();
        }
    }

    /// Begins an exchange: the head (`request`'s fields, then the caller's `lines`) goes into
    /// the write buffer (nothing is written yet) and the body is kept, to be written as the
    /// exchange is polled. Fails, before anything is written, when the request's own framing
    /// fields cannot be honoured.
    pub(crate) fn start(&mut self, request: &Parts, lines: &[u8], body: Body) -> Result<(), Error> {
        let hint = if body.is_end_stream() {
            BodyHint::Empty
        } else {
            body.size_hint()
                .exact()
                .map_or(BodyHint::Unknown, BodyHint::Exact)
        };
        let head =
            encode::write_head(self.outgoing.buf(), request, lines, hint).inspect_err(|_| {
                self.broken = true;
            })?;
        self.keep_alive = !head.close;
        self.reading = Reading::Head {
            head_request: request.method == Method::HEAD,
        };
        self.writing = match (hint, head.framing) {
            (BodyHint::Empty, Framing::Chunked) => {
                encode::last_chunk(self.outgoing.buf(), None, &[]);
                Writing::Done
            }
            (BodyHint::Empty, _) | (_, Framing::Length(0)) => Writing::Done,
            (_, Framing::Length(length)) => Writing::Body {
                body,
                left: Some(length),
                trailers: head.trailers,
            },
            (_, Framing::Chunked) => Writing::Body {
                body,
                left: None,
                trailers: head.trailers,
            },
        };
        Ok(())
    }

    /// Moves the exchange on until the answer's head has arrived.
    pub(crate) fn poll_head(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Result<response::Parts, Error>> {
        let polled = self.poll_head_inner(cx);
        if let Poll::Ready(Err(_)) = polled {
            self.broken = true;
        }
        polled
    }

    fn poll_head_inner(&mut self, cx: &mut Context<'_>) -> Poll<Result<response::Parts, Error>> {
        let Reading::Head { head_request } = self.reading else {
            return Poll::Ready(Err(Error::InvalidRequest("no request was started")));
        };
        self.poll_write_side(cx)?;
        loop {
            if let Some(head) = head::parse(&mut self.read_buf, &mut self.spans, head_request)? {
                self.keep_alive &= head.keep_alive;
                self.reading = Reading::Body(BodyDecoder::new(head.framing));
                return Poll::Ready(Ok(head.parts));
            }
            if self.read_closed {
                return Poll::Ready(Err(match self.write_error.take() {
                    Some(err) => Error::Io(err),
                    None if self.read_buf.is_empty() => Error::ClosedBeforeAnswer,
                    None => Error::ClosedInHead,
                }));
            }
            ready!(self.poll_fill(cx))?;
        }
    }

    /// The answer body's next frame; `None` at its end. Keeps the request body flowing too.
    pub(crate) fn poll_frame(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let polled = self.poll_frame_inner(cx);
        if let Poll::Ready(Some(Err(_))) = polled {
            self.broken = true;
        }
        polled
    }

    fn poll_frame_inner(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if !matches!(self.reading, Reading::Body(_)) {
            return Poll::Ready(None);
        }
        if let Err(err) = self.poll_write_side(cx) {
            return Poll::Ready(Some(Err(err)));
        }
        let Reading::Body(decoder) = &mut self.reading else {
            return Poll::Ready(None);
        };
        loop {
            match decoder.decode(&mut self.read_buf, self.read_closed) {
                Ok(Decoded::Data(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                Ok(Decoded::Trailers(trailers)) => {
                    return Poll::Ready(Some(Ok(Frame::trailers(trailers))))
                }
                Ok(Decoded::End) => {
                    self.reading = Reading::Idle;
                    return Poll::Ready(None);
                }
                Ok(Decoded::More) => {}
                Err(err) => return Poll::Ready(Some(Err(err))),
            }
            if let Err(err) = ready!(Self::fill(
                &mut self.io,
                &mut self.read_buf,
                &mut self.read_size,
                &mut self.read_closed,
                cx
            )) {
                return Poll::Ready(Some(Err(err)));
            }
        }
    }

    /// Whether the answer's body is complete.
    pub(crate) fn is_end_stream(&self) -> bool {
        match &self.reading {
            Reading::Body(decoder) => decoder.is_done(),
            _ => true,
        }
    }

    /// What is known of the answer body's length.
    pub(crate) fn size_hint(&self) -> SizeHint {
        match &self.reading {
            Reading::Body(decoder) => match decoder.remaining() {
                Some(left) => SizeHint::with_exact(left),
                None => SizeHint::default(),
            },
            _ => SizeHint::with_exact(0),
        }
    }

    /// For an answer body dropped before its end: reads the rest out of what is already
    /// buffered, without waiting for more. True when that completed the answer, so that the
    /// connection can be reused; an answer still arriving is not waited for (the connection
    /// is closed instead, as the rest could be long).
    pub(crate) fn finish_buffered(&mut self) -> bool {
        if let Reading::Body(decoder) = &mut self.reading {
            loop {
                match decoder.decode(&mut self.read_buf, false) {
                    Ok(Decoded::Data(_) | Decoded::Trailers(_)) => {}
                    Ok(Decoded::End) => {
                        self.reading = Reading::Idle;
                        break;
                    }
                    Ok(Decoded::More) | Err(_) => return false,
                }
            }
        }
        matches!(self.reading, Reading::Idle)
    }

    /// Whether the connection can carry another exchange: the answer read to its end with
    /// nothing after it, the request written whole, and nobody asked to close.
    pub(crate) fn is_reusable(&self) -> bool {
        !self.broken
            && self.keep_alive
            && !self.read_closed
            && matches!(self.reading, Reading::Idle)
            && matches!(self.writing, Writing::Done)
            && self.outgoing.is_empty()
            && self.read_buf.is_empty()
    }

    /// Writes what it can of the request. A failed write does not fail the exchange by
    /// itself: the server may have answered and closed its side (an early `413`, say), so
    /// writing stops, the connection will not be reused, and the answer is still read; the
    /// write's error is what is reported if no answer comes (the read side ends at once
    /// then: a write fails on a connection the server reset or closed). A failed request body
    /// does fail the exchange: the server would wait for the rest of it.
    fn poll_write_side(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        match self.poll_send(cx) {
            Err(Error::Io(err)) => {
                self.writing = Writing::Done;
                self.outgoing = Outgoing::default();
                self.keep_alive = false;
                self.write_error = Some(err);
                Ok(())
            }
            sent => sent,
        }
    }

    /// Writes what it can of the request: pending bytes, then the body's frames as they come.
    /// Returns once the socket or the body has to be waited for, or all is written.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Result<(), Error> {
        loop {
            let mut took_frame = false;
            if let Writing::Body { body, left, .. } = &mut self.writing {
                if self.outgoing.has_room() {
                    match Pin::new(&mut *body).poll_frame(cx) {
                        Poll::Ready(Some(Ok(frame))) => {
                            took_frame = true;
                            match frame.into_data() {
                                Ok(data) => {
                                    push_data(&mut self.outgoing, data, left)?;
                                    // A chunked body's last chunk goes behind a large frame
                                    // only once that frame is written (the ended body is polled
                                    // again then, and says so).
                                    if *left == Some(0)
                                        || (body.is_end_stream() && self.outgoing.has_room())
                                    {
                                        self.finish_body(None)?;
                                    }
                                }
                                // Trailers: always the body's last frame.
                                Err(frame) => self.finish_body(frame.trailers_ref())?,
                            }
                        }
                        Poll::Ready(Some(Err(err))) => return Err(Error::RequestBody(err)),
                        Poll::Ready(None) => self.finish_body(None)?,
                        Poll::Pending => {}
                    }
                }
            }
            let more_to_take = matches!(self.writing, Writing::Body { .. });
            if took_frame && more_to_take && self.outgoing.has_room() {
                // Frames ready together leave in one write.
                continue;
            }
            if self.outgoing.is_empty() {
                return Ok(());
            }
            match self.outgoing.poll_write(&mut self.io, cx) {
                Poll::Ready(Ok(())) if more_to_take => {}
                Poll::Ready(Ok(())) => return Ok(()),
                Poll::Ready(Err(err)) => return Err(Error::Io(err)),
                Poll::Pending => return Ok(()),
            }
        }
    }

    /// The body has given its last frame: a chunked body gets its last chunk (with the
    /// declared `trailers`), a sized one must have given all it announced.
    fn finish_body(&mut self, trailers: Option<&HeaderMap>) -> Result<(), Error> {
        let Writing::Body {
            left,
            trailers: declared,
            ..
        } = std::mem::replace(&mut self.writing, Writing::Done)
        else {
            return Ok(());
        };
        match left {
            None => {
                encode::last_chunk(self.outgoing.buf(), trailers, &declared);
                Ok(())
            }
            Some(0) => Ok(()),
            Some(_) => Err(Error::RequestBody(
                "the request body ended before its Content-Length".into(),
            )),
        }
    }

    /// Reads once into the read buffer.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        Self::fill(
            &mut self.io,
            &mut self.read_buf,
            &mut self.read_size,
            &mut self.read_closed,
            cx,
        )
    }

    /// [`poll_fill`](Self::poll_fill) on the fields it needs, for callers holding a borrow
    /// of another field (the body decoder).
    fn fill(
        io: &mut S,
        buf: &mut BytesMut,
        read_size: &mut usize,
        closed: &mut bool,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), Error>> {
        if buf.capacity() - buf.len() < *read_size / 4 {
            buf.reserve(*read_size);
        }
        let room = buf.capacity() - buf.len();
        let read = ready!(pin!(io.read_buf(buf)).poll(cx))?;
        if read == 0 {
            *closed = true;
        } else if read == room {
            *read_size = (*read_size * 2).min(MAX_READ);
        }
        Poll::Ready(Ok(()))
    }
}

/// Queues one data frame of the request body, held to what its `Content-Length` allows.
fn push_data(outgoing: &mut Outgoing, data: Bytes, left: &mut Option<u64>) -> Result<(), Error> {
    if data.is_empty() {
        // An empty chunk would end a chunked body.
        return Ok(());
    }
    match left {
        Some(left) => {
            *left = left.checked_sub(data.len() as u64).ok_or_else(|| {
                Error::RequestBody("the request body is longer than its Content-Length".into())
            })?;
            outgoing.push_data(data, false);
        }
        None => outgoing.push_data(data, true),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;
    use std::time::Duration;

    use tokio::io::{AsyncWriteExt, DuplexStream};
    use tokio::sync::mpsc;

    use super::*;

    fn head(method: Method) -> Parts {
        http::Request::builder()
            .method(method)
            .uri("/x")
            .header("host", "upstream")
            .body(())
            .expect("a request")
            .into_parts()
            .0
    }

    /// Reads from `server` until `end` has arrived; what was read.
    async fn read_until(server: &mut DuplexStream, end: &[u8]) -> Vec<u8> {
        let mut received = Vec::new();
        while !received.windows(end.len()).any(|w| w == end) {
            let mut chunk = [0u8; 4096];
            let read = server.read(&mut chunk).await.expect("reading the request");
            assert!(read > 0, "the client closed: {received:?}");
            received.extend_from_slice(&chunk[..read]);
        }
        received
    }

    async fn body_of(connection: &mut Connection<DuplexStream>) -> Result<Vec<u8>, Error> {
        let mut body = Vec::new();
        while let Some(frame) = poll_fn(|cx| connection.poll_frame(cx)).await {
            if let Ok(data) = frame?.into_data() {
                body.extend_from_slice(&data);
            }
        }
        Ok(body)
    }

    /// A request body fed through a channel, of unknown length.
    struct ChannelBody(mpsc::Receiver<Bytes>);

    impl http_body::Body for ChannelBody {
        type Data = Bytes;
        type Error = crate::BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, crate::BoxError>>> {
            self.0
                .poll_recv(cx)
                .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
        }
    }

    #[tokio::test]
    async fn an_answer_split_across_reads_is_read_whole_and_leaves_the_connection_reusable() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let mut connection = Connection::new(client);
        assert!(poll_fn(|cx| Poll::Ready(connection.poll_idle(cx))).await);
        connection
            .start(&head(Method::GET), b"", Body::empty())
            .unwrap();
        let serving = tokio::spawn(async move {
            let request = read_until(&mut server, b"\r\n\r\n").await;
            for piece in [
                &b"HTTP/1.1 200 OK\r\ncont"[..],
                b"ent-length: 5\r\n",
                b"\r\nhel",
                b"lo",
            ] {
                server.write_all(piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            (request, server)
        });
        let parts = poll_fn(|cx| connection.poll_head(cx)).await.unwrap();
        assert_eq!(parts.status, http::StatusCode::OK);
        assert_eq!(body_of(&mut connection).await.unwrap(), b"hello");
        let (request, _server) = serving.await.unwrap();
        assert_eq!(request, b"GET /x HTTP/1.1\r\nhost: upstream\r\n\r\n");
        assert!(connection.is_reusable());
        assert!(poll_fn(|cx| Poll::Ready(connection.poll_idle(cx))).await);
    }

    #[tokio::test]
    async fn the_answer_is_read_while_the_request_body_is_still_being_written() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let mut connection = Connection::new(client);
        let (chunks, receiver) = mpsc::channel(4);
        connection
            .start(&head(Method::POST), b"", Body::new(ChannelBody(receiver)))
            .unwrap();
        let serving = tokio::spawn(async move {
            read_until(&mut server, b"\r\n\r\n").await;
            // The head goes out before the request body has even begun.
            server
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n")
                .await
                .unwrap();
            let body = read_until(&mut server, b"0\r\n\r\n").await;
            server.write_all(b"done").await.unwrap();
            (body, server)
        });
        let parts = poll_fn(|cx| connection.poll_head(cx)).await.unwrap();
        assert_eq!(parts.status, http::StatusCode::OK);
        chunks.send(Bytes::from_static(b"data")).await.unwrap();
        drop(chunks);
        // Reading the answer's body writes the rest of the request.
        assert_eq!(body_of(&mut connection).await.unwrap(), b"done");
        let (body, _server) = serving.await.unwrap();
        assert_eq!(body, b"4\r\ndata\r\n0\r\n\r\n");
        assert!(connection.is_reusable());
    }

    #[tokio::test]
    async fn an_abandoned_body_is_finished_from_the_buffer_or_the_connection_given_up() {
        for (answer, reusable) in [
            (
                &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"[..],
                true,
            ),
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                true,
            ),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello", false),
        ] {
            let (client, mut server) = tokio::io::duplex(64 * 1024);
            let mut connection = Connection::new(client);
            connection
                .start(&head(Method::GET), b"", Body::empty())
                .unwrap();
            server.write_all(answer).await.unwrap();
            poll_fn(|cx| connection.poll_head(cx)).await.unwrap();
            assert_eq!(connection.finish_buffered(), reusable);
            assert_eq!(connection.is_reusable(), reusable);
        }
    }

    #[tokio::test]
    async fn an_early_answer_is_read_even_when_the_server_stops_reading_the_request() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut connection = Connection::new(client);
        let upload = Body::from(vec![b'u'; 256 * 1024]);
        connection.start(&head(Method::POST), b"", upload).unwrap();
        let serving = tokio::spawn(async move {
            read_until(&mut server, b"\r\n\r\n").await;
            server
                .write_all(b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 3\r\n\r\nbig")
                .await
                .unwrap();
            // Closed without reading the rest: the client's writes now fail.
        });
        let parts = poll_fn(|cx| connection.poll_head(cx)).await.unwrap();
        assert_eq!(parts.status, http::StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body_of(&mut connection).await.unwrap(), b"big");
        serving.await.unwrap();
        assert!(
            !connection.is_reusable(),
            "the request was not written whole"
        );
    }

    #[tokio::test]
    async fn an_idle_connection_with_unasked_bytes_or_closed_is_not_reusable() {
        let (client, mut server) = tokio::io::duplex(1024);
        let mut connection = Connection::new(client);
        server
            .write_all(b"HTTP/1.1 408 Request Timeout\r\n\r\n")
            .await
            .unwrap();
        assert!(!poll_fn(|cx| Poll::Ready(connection.poll_idle(cx))).await);

        let (client, server) = tokio::io::duplex(1024);
        let mut connection = Connection::new(client);
        drop(server);
        assert!(!poll_fn(|cx| Poll::Ready(connection.poll_idle(cx))).await);
    }

    /// Like a TLS stream: `poll_write` takes the bytes into its own buffer (as rustls takes
    /// plaintext when the socket would block) and only `poll_flush` moves them to the socket;
    /// the first flush finds the socket full (Pending, with a wake-up as the reactor would give).
    struct Buffering {
        inner: DuplexStream,
        pending: Vec<u8>,
        flushes: usize,
    }

    impl AsyncRead for Buffering {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Buffering {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            self.pending.extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            self.flushes += 1;
            if self.flushes == 1 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let this = &mut *self;
            while !this.pending.is_empty() {
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &this.pending))?;
                this.pending.drain(..n);
            }
            Pin::new(&mut this.inner).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn a_flush_that_was_pending_is_retried() {
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let mut connection = Connection::new(Buffering {
            inner: client,
            pending: Vec::new(),
            flushes: 0,
        });
        connection
            .start(&head(Method::GET), b"", Body::empty())
            .unwrap();
        let serving = tokio::spawn(async move {
            read_until(&mut server, b"\r\n\r\n").await;
            server
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            server
        });
        let answered = tokio::time::timeout(
            Duration::from_secs(2),
            poll_fn(|cx| connection.poll_head(cx)),
        )
        .await;
        assert!(
            answered.is_ok(),
            "the request never left the stream's buffer: flushes {}",
            connection.io.flushes
        );
        serving.await.unwrap();
    }

    /// A body of unknown length whose last frame says it is the last (as an HTTP/2 request
    /// body does once its END_STREAM DATA frame is taken).
    struct LastFrameEnds(Option<Bytes>);

    impl http_body::Body for LastFrameEnds {
        type Data = Bytes;
        type Error = crate::BoxError;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, crate::BoxError>>> {
            Poll::Ready(self.0.take().map(|data| Ok(Frame::data(data))))
        }
        fn is_end_stream(&self) -> bool {
            self.0.is_none()
        }
    }

    #[tokio::test]
    async fn a_large_last_chunk_goes_before_the_last_chunk_marker() {
        let (client, mut server) = tokio::io::duplex(1 << 20);
        let mut connection = Connection::new(client);
        let data = Bytes::from(vec![b'd'; 5000]);
        connection
            .start(
                &head(Method::POST),
                b"",
                Body::new(LastFrameEnds(Some(data))),
            )
            .unwrap();
        let serving = tokio::spawn(async move {
            let got = read_until(&mut server, b"0\r\n\r\n").await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            let mut rest = [0u8; 16 * 1024];
            let more = tokio::time::timeout(Duration::from_millis(50), server.read(&mut rest))
                .await
                .map(|r| r.unwrap())
                .unwrap_or(0);
            let mut all = got;
            all.extend_from_slice(&rest[..more]);
            server
                .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            (all, server)
        });
        let _ = tokio::time::timeout(
            Duration::from_secs(2),
            poll_fn(|cx| connection.poll_head(cx)),
        )
        .await;
        let (wire, _server) = serving.await.unwrap();
        let body_start = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = &wire[body_start..];
        let expected = [&b"1388\r\n"[..], &[b'd'; 5000], b"\r\n0\r\n\r\n"].concat();
        assert!(
            body == &expected[..],
            "the body on the wire begins {:?} and ends {:?}",
            String::from_utf8_lossy(&body[..16.min(body.len())]),
            String::from_utf8_lossy(&body[body.len().saturating_sub(16)..])
        );
    }
}
