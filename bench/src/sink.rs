//! `--server-webhook`: a webhook receiver in this process for the spawned
//! server's event webhooks. It answers every request 204 at once and counts
//! them, so a run measures what webhooks cost the server, not a receiver.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

pub struct Sink {
    pub addr: SocketAddr,
    pub received: Arc<AtomicU64>,
}

/// Listens on 127.0.0.1 (any free port) on `runtime`.
pub fn start(runtime: &Runtime) -> Result<Sink, String> {
    let listener = runtime
        .block_on(TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| format!("webhook sink: {e}"))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("webhook sink: {e}"))?;
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<Incoming>| {
                    let counter = counter.clone();
                    async move {
                        // The whole body is read, as a receiver would.
                        let _ = request.into_body().collect().await;
                        counter.fetch_add(1, Ordering::Relaxed);
                        let mut answer = Response::new(Empty::<Bytes>::new());
                        *answer.status_mut() = StatusCode::NO_CONTENT;
                        Ok::<_, Infallible>(answer)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(Sink { addr, received })
}
