//! What the server's small HTTP listeners share (the admin address, the
//! server API, the web page): an axum app served until the server shuts
//! down, on the server's runtime or on a thread and runtime of its own.

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

use crate::ServerContext;

/// Serves `app` on `listener` until the server shuts down; `what` names the
/// listener in the log.
pub async fn serve(ctx: &ServerContext, listener: TcpListener, app: Router, what: &'static str) {
    let mut shutdown = ctx.shutdown_signal();
    let stopped = async move {
        let _ = shutdown.wait_for(|down| *down).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::warn!(error = %e, listener = what, "http listener failed");
    }
}

/// [`serve`] on a thread (`beckon-<what>`) and runtime of its own, so that
/// a storm of clients on the public listener cannot starve it.
pub fn spawn(
    ctx: Arc<ServerContext>,
    listener: std::net::TcpListener,
    app: Router,
    what: &'static str,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("beckon-{what}"))
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => serve(&ctx, listener, app, what).await,
                    Err(e) => tracing::warn!(error = %e, listener = what, "http listener failed"),
                }
            })
        })?;
    Ok(())
}
