//! Connection admission and tunnel limits (a Gatehouse patch to hudsucker 0.25.0; see
//! `GATEHOUSE-PATCHES.md`).
//!
//! * A [`ConnectionGate`] is asked about every accepted connection before any byte is read:
//!   it returns a guard kept for the connection's life (dropped when it closes, so counts
//!   stay exact), or the bytes of a refusal written to the client before closing.
//! * [`TunnelLimits`] bound how long a tunnelled (not intercepted) CONNECT may take to reach
//!   its server and how long it may sit idle.

use std::{
    any::Any,
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// Kept while a connection is open; dropped when it closes.
pub type Admission = Box<dyn Any + Send>;

/// Decides whether an accepted connection is served: `Ok(guard)` to serve it, `Err(bytes)`
/// to write `bytes` (a complete HTTP response) and close.
pub type ConnectionGate =
    Arc<dyn Fn(&TcpStream, SocketAddr) -> Result<Admission, &'static [u8]> + Send + Sync>;

/// Limits for CONNECT tunnels that are relayed without interception.
#[derive(Clone, Copy, Debug, Default)]
pub struct TunnelLimits {
    /// How long connecting to the server may take.
    pub connect_timeout: Option<Duration>,
    /// A tunnel with no byte in either direction for this long is closed.
    pub idle_timeout: Option<Duration>,
}

impl TunnelLimits {
    pub(crate) async fn connect(&self, authority: &str) -> io::Result<TcpStream> {
        match self.connect_timeout {
            None => TcpStream::connect(authority).await,
            Some(limit) => tokio::time::timeout(limit, TcpStream::connect(authority))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))?,
        }
    }

    /// The first read from a new tunnel, bounded by the idle limit.
    pub(crate) async fn first_read<S: AsyncRead + Unpin>(
        &self,
        stream: &mut S,
        buf: &mut [u8],
    ) -> io::Result<usize> {
        use tokio::io::AsyncReadExt;
        match self.idle_timeout {
            None => stream.read(buf).await,
            Some(idle) => tokio::time::timeout(idle, stream.read(buf))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "tunnel idle"))?,
        }
    }

    /// `tokio::io::copy_bidirectional`, ended with `TimedOut` once neither side has moved a
    /// byte for `idle_timeout`.
    pub(crate) async fn relay<A, B>(&self, client: &mut A, server: &mut B) -> io::Result<(u64, u64)>
    where
        A: AsyncRead + AsyncWrite + Unpin,
        B: AsyncRead + AsyncWrite + Unpin,
    {
        let Some(idle) = self.idle_timeout else {
            return tokio::io::copy_bidirectional(client, server).await;
        };
        let active = Arc::new(AtomicBool::new(false));
        let mut client = Activity {
            inner: client,
            active: Arc::clone(&active),
        };
        let copy = tokio::io::copy_bidirectional(&mut client, server);
        tokio::pin!(copy);
        loop {
            tokio::select! {
                done = &mut copy => return done,
                () = tokio::time::sleep(idle) => {
                    if !active.swap(false, Ordering::Relaxed) {
                        return Err(io::Error::new(io::ErrorKind::TimedOut, "tunnel idle"));
                    }
                }
            }
        }
    }
}

/// Marks `active` whenever bytes pass through the client side, in either direction.
struct Activity<'a, S> {
    inner: &'a mut S,
    active: Arc<AtomicBool>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Activity<'_, S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut *self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.active.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Activity<'_, S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut *self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.active.store(true, Ordering::Relaxed);
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}

/// Writes a refusal to a connection that was not admitted and closes it. The request is
/// drained (not parsed) until the client closes, so the kernel does not reset the
/// connection and lose the refusal; all of it is bounded to one second.
pub(crate) async fn refuse(mut tcp: TcpStream, refusal: &'static [u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let write = async {
        tcp.write_all(refusal).await?;
        tcp.shutdown().await?;
        let mut sink = [0u8; 1024];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<(), io::Error>(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Accept errors that mean the process is out of file descriptors or memory: wait a little
/// before accepting again instead of spinning.
pub(crate) fn accept_error_needs_pause(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOMEM, ENOBUFS (Linux numbering).
    matches!(e.raw_os_error(), Some(24 | 23 | 12 | 105))
}
