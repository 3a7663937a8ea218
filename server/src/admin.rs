//! The admin address: `/metrics` (Prometheus text), `/healthz`, and
//! `/users/{user}/devices` (how many devices of a user this node's hub
//! counts online: its own and, among several nodes, those of the others).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::ServerContext;

/// Serves the admin address on a thread and runtime of its own, so a storm
/// of clients on the public listener cannot starve `/metrics` and `/healthz`.
pub fn spawn(ctx: Arc<ServerContext>, listener: std::net::TcpListener) -> std::io::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/users/{user}/devices", get(devices))
        .with_state(ctx.clone());
    crate::http::spawn(ctx, listener, app, "admin")
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
