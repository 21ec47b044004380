//! Copies bytes both ways between two connections until both sides have finished, or
//! until nothing has moved in either direction for the idle limit: tunnels that are not
//! decrypted and upgraded connections (WebSockets).

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::time::Instant;

const BUFFER: usize = 16 * 1024;

/// Relays until both directions have ended or `idle` passes with no byte either way.
/// Returns the bytes moved from `a` to `b` and from `b` to `a`.
pub async fn relay<A, B>(a: A, b: B, idle: Duration) -> std::io::Result<(u64, u64)>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);
    let (mut a_buf, mut b_buf) = (vec![0u8; BUFFER], vec![0u8; BUFFER]);
    let (mut a_open, mut b_open) = (true, true);
    let (mut a_to_b, mut b_to_a) = (0u64, 0u64);
    let mut deadline = Instant::now() + idle;
    while a_open || b_open {
        tokio::select! {
            n = a_read.read(&mut a_buf), if a_open => {
                let n = n?;
                if n == 0 {
                    a_open = false;
                    let _ = b_write.shutdown().await;
                } else {
                    write_within(&mut b_write, &a_buf[..n], idle).await?;
                    a_to_b += n as u64;
                }
            }
            n = b_read.read(&mut b_buf), if b_open => {
                let n = n?;
                if n == 0 {
                    b_open = false;
                    let _ = a_write.shutdown().await;
                } else {
                    write_within(&mut a_write, &b_buf[..n], idle).await?;
                    b_to_a += n as u64;
                }
            }
            () = tokio::time::sleep_until(deadline) => break,
        }
        deadline = Instant::now() + idle;
    }
    Ok((a_to_b, b_to_a))
}

/// A write that a peer which stopped reading cannot hold open past the idle limit.
async fn write_within<W: AsyncWrite + Unpin>(
    w: &mut W,
    bytes: &[u8],
    idle: Duration,
) -> std::io::Result<()> {
    tokio::time::timeout(idle, w.write_all(bytes))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "peer stopped reading"))?
}
