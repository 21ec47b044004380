//! Gatehouse's own interception layer on hyper: the listener, each client connection, and
//! what happens inside a CONNECT tunnel. The request path itself (who, decide, enforce,
//! forward) is `handler`'s; this module only moves bytes and TLS sessions to it.
//!
//! A connection, top to bottom:
//! 1. **accept**: a client on no configured network is answered `403` and closed at once,
//!    holding no slot; then the connection limits (in all, per client) admit it or answer
//!    `503`; out of descriptors, accepting pauses instead of spinning;
//! 2. **first byte**: a connection that sends nothing within `header_timeout_secs` is
//!    closed before hyper is given it (and hyper's head timer then closes connections left
//!    idle between requests for as long);
//! 3. **HTTP/1.1** with hyper: each request goes to [`crate::handler::serve`]; a CONNECT it
//!    admits continues in [`tunnel`].

pub mod classify;
mod relay;
mod rewind;
pub mod tunnel;

pub use relay::relay;

use crate::handler::{Conn, Shared};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

const OUTSIDE: &[u8] = b"HTTP/1.1 403 Forbidden\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Connection: close\r\n\
Content-Length: 42\r\n\r\n\
This filter does not serve your network.\r\n";

/// How long a stopping proxy waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(30);

/// The HTTP/1.1 server settings every client connection and decrypted tunnel uses.
pub fn http_server(shared: &Shared) -> http1::Builder {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(shared.settings.header_timeout_secs))
        .max_buf_size(shared.settings.max_header_bytes.max(8192))
        .keep_alive(true);
    http
}

/// Accepts clients until `stop` turns true, then waits (up to 30 s) for requests in flight.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    connections: Arc<crate::limits::Connections>,
    mut stop: watch::Receiver<bool>,
) {
    let in_flight = Arc::new(());
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        if accept_error_needs_pause(&e) {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                        continue;
                    }
                };
                let client = peer.ip().to_canonical();
                if shared.live.load().network_of(client).is_none() {
                    crate::metrics::get().refused.with_label_values(&["network"]).inc();
                    refuse_now(tcp, OUTSIDE);
                    continue;
                }
                let open = match connections.admit(client) {
                    Ok(open) => open,
                    Err(reply) => {
                        refuse_now(tcp, reply);
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let conn = Conn::new(Arc::clone(&shared), peer, open);
                let token = Arc::clone(&in_flight);
                let stop = stop.clone();
                tokio::spawn(async move {
                    let _token = token;
                    serve_client(conn, tcp, stop).await;
                });
            }
            () = stopped(&mut stop) => break,
        }
    }
    drop(listener);
    let deadline = tokio::time::Instant::now() + DRAIN;
    while Arc::strong_count(&in_flight) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Writes a short refusal without waiting (the socket's buffer is empty) and closes.
fn refuse_now(tcp: TcpStream, reply: &[u8]) {
    let _ = tcp.try_write(reply);
}

/// Resolves once the proxy is stopping.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn accept_error_needs_pause(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOMEM | libc::ENOBUFS)
    )
}

/// One client connection: the first byte within the limit, then HTTP/1.1 until it closes,
/// or until the proxy stops (requests in flight finish first).
async fn serve_client(conn: Conn, tcp: TcpStream, mut stop: watch::Receiver<bool>) {
    let first_byte = Duration::from_secs(conn.shared.settings.header_timeout_secs);
    let mut probe = [0u8; 1];
    match tokio::time::timeout(first_byte, tcp.peek(&mut probe)).await {
        Ok(Ok(n)) if n > 0 => {}
        Ok(_) => return,
        Err(_) => {
            crate::metrics::get()
                .refused
                .with_label_values(&["silent"])
                .inc();
            return;
        }
    }
    let http = http_server(&conn.shared);
    let conn = Arc::new(conn);
    let service = service_fn(move |req: Request<Incoming>| {
        let conn = Arc::clone(&conn);
        async move { Ok::<_, std::convert::Infallible>(crate::handler::serve(conn, req).await) }
    });
    let served = http
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(served);
    tokio::select! {
        _ = served.as_mut() => {}
        () = stopped(&mut stop) => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
}

/// Serves HTTP/1.1 on a stream that is already inside a tunnel (decrypted TLS, or plain
/// HTTP sent through a CONNECT), with the tunnel's identity and host.
pub async fn serve_inner<I>(conn: Arc<Conn>, io: I)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let http = http_server(&conn.shared);
    let service = service_fn(move |req: Request<Incoming>| {
        let conn = Arc::clone(&conn);
        async move { Ok::<_, std::convert::Infallible>(crate::handler::serve(conn, req).await) }
    });
    let _ = http
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}
