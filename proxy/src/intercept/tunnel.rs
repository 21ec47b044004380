//! The mechanics inside a CONNECT tunnel: reading the client's first bytes until they say
//! what the tunnel carries, and accepting the client's TLS session with a leaf for the host.

use super::classify::{classify, Classified, MAX_PREFIX};
use super::rewind::Rewind;
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite};

/// Reads until the bytes are classified (however the client splits them), within `limit`.
/// Returns the answer and the connection with the bytes read put back in front.
pub async fn first_bytes<I>(mut io: I, limit: Duration) -> (Classified, Rewind<I>)
where
    I: AsyncRead + Unpin,
{
    let mut prefix = BytesMut::with_capacity(MAX_PREFIX);
    let read = async {
        loop {
            let answer = classify(&prefix);
            if answer != Classified::NeedMore {
                return answer;
            }
            let mut byte = [0u8; MAX_PREFIX];
            let room = MAX_PREFIX - prefix.len();
            match io.read(&mut byte[..room]).await {
                Ok(0) | Err(_) => {
                    return Classified::Other("nothing (the client closed the tunnel)")
                }
                Ok(n) => prefix.extend_from_slice(&byte[..n]),
            }
        }
    };
    let answer = tokio::time::timeout(limit, read)
        .await
        .unwrap_or(Classified::Other("nothing in time"));
    (answer, Rewind::new(Bytes::from(prefix), io))
}

/// Accepts the client's TLS session, presenting `config`'s certificate.
pub async fn accept_tls<I>(
    io: I,
    config: Arc<rustls::ServerConfig>,
    limit: Duration,
) -> std::io::Result<tokio_rustls::server::TlsStream<I>>
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::time::timeout(limit, acceptor.accept(io))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake"))?
}
