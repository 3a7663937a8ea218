//! The admin address: `/metrics` (Prometheus text), `/healthz`, and
//! `/users/{user}/devices` (how many devices of a user this node's hub
//! counts online: its own and, among several nodes, those of the others).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::ServerContext;

/// Serves the admin address on a thread and runtime of its own, so a storm
/// of clients on the public listener cannot starve `/metrics` and `/healthz`.
pub fn spawn(ctx: Arc<ServerContext>, listener: std::net::TcpListener) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("beckon-admin".into())
        .spawn(move || {
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => serve(ctx, listener).await,
                    Err(e) => tracing::warn!(error = %e, "admin listener failed"),
                }
            })
        })?;
    Ok(())
}

async fn serve(ctx: Arc<ServerContext>, listener: TcpListener) {
    let mut shutdown = ctx.shutdown_signal();
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/users/{user}/devices", get(devices))
        .with_state(ctx);
    let stopped = async move {
        let _ = shutdown.wait_for(|down| *down).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        tracing::warn!(error = %e, "admin server failed");
    }
}

async fn metrics(State(ctx): State<Arc<ServerContext>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        ctx.render_metrics(),
    )
}

async fn devices(
    State(ctx): State<Arc<ServerContext>>,
    Path(user): Path<String>,
) -> impl IntoResponse {
    match beckon::protocol::UserId::parse(&user, "user") {
        Ok(user) => {
            let body = serde_json::json!({
                "user": user.as_str(),
                "devices": ctx.hub.device_count(&user),
            });
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
        }
        Err(error) => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{}\n", error.message),
        ),
    }
}

async fn healthz(State(ctx): State<Arc<ServerContext>>) -> impl IntoResponse {
    if ctx.shutting_down() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n")
    } else {
        (StatusCode::OK, "ok\n")
    }
}
