//! The server API (docs/SERVER_API.md, docs/openapi.json): HTTP + JSON on a
//! listener of its own, off unless `[api] listen` is set, for the app's
//! backend to send and cancel invitations on a user's behalf, read an
//! invitation, list and kick a user's devices, and mint login tokens. Every
//! request carries a bearer key of `[[api.key]]` (`keys.rs`); the rules are
//! the hub's, as for devices, and an answer waits until its change is
//! durable, as a device's does.

mod keys;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use beckon::{Error, ErrorCode};
use serde_json::json;
use tokio::net::TcpListener;

use crate::config::ConfigError;
use crate::ServerContext;
pub use keys::{Action, Key, Keys};

/// Every route, as docs/openapi.json must list it (a test compares them).
pub const ROUTES: [(&str, &str); 7] = [
    ("POST", "/v1/invitations"),
    ("GET", "/v1/users/{user_id}/invitations"),
    ("GET", "/v1/invitations/{invitation_id}"),
    ("POST", "/v1/invitations/{invitation_id}/cancel"),
    ("GET", "/v1/users/{user_id}/devices"),
    ("DELETE", "/v1/users/{user_id}/devices/{device_id}"),
    ("POST", "/v1/tokens"),
];

/// What every API request shares.
pub struct Api {
    pub ctx: Arc<ServerContext>,
    keys: Keys,
}

/// Binds the API's listener, when `[api] listen` is set, checking its keys
/// first (refused with a message naming the setting).
pub fn bind(ctx: &ServerContext) -> Result<Option<(TcpListener, Keys)>, ConfigError> {
    let Some(addr) = ctx.config.api.listen else {
        return Ok(None);
    };
    let keys = Keys::load(&ctx.config.api.keys).map_err(ConfigError)?;
    let listener = std::net::TcpListener::bind(addr)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(TcpListener::from_std)
        .map_err(|e| ConfigError(format!("api.listen {addr}: {e}")))?;
    Ok(Some((listener, keys)))
}

/// The bound address of an API listener.
pub fn local_addr(listener: &TcpListener) -> Option<SocketAddr> {
    listener.local_addr().ok()
}

/// Serves the API until the server shuts down.
pub async fn serve(ctx: Arc<ServerContext>, listener: TcpListener, keys: Keys) {
    let limit = ctx.config.api.max_body_bytes;
    let api = Arc::new(Api {
        ctx: ctx.clone(),
        keys,
    });
    let [send, history, get_one, cancel, devices, kick, tokens] = ROUTES;
    let app = Router::new()
        .route(send.1, post(routes::send))
        .route(history.1, get(routes::history))
        .route(get_one.1, get(routes::get_invitation))
        .route(cancel.1, post(routes::cancel))
        .route(devices.1, get(routes::devices))
        .route(kick.1, delete(routes::kick))
        .route(tokens.1, post(routes::mint_token))
        .fallback(routes::no_route)
        // A known path with another method: authenticated first, then 404,
        // like any other route that does not exist.
        .method_not_allowed_fallback(routes::no_route)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(api);
    crate::http::serve(&ctx, listener, app, "api").await;
}

impl Api {
    /// The key the request's `Authorization: Bearer` header carries (the
    /// scheme in any case).
    fn authenticate(&self, headers: &HeaderMap) -> Result<&Key, ApiError> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key)
            .ok_or_else(|| {
                ApiError::unauthorized("an Authorization: Bearer <key> header is required")
            })?;
        self.keys
            .find(presented.trim())
            .ok_or_else(|| ApiError::unauthorized("the key is not one of this server's"))
    }

    /// [`Api::authenticate`], and the key may do `action` (its user scope is
    /// checked once the users are read).
    fn authorize(&self, headers: &HeaderMap, action: Action) -> Result<&Key, ApiError> {
        let key = self.authenticate(headers)?;
        if !key.may(action) {
            return Err(ApiError::forbidden(format!(
                "key '{}' may not {}",
                key.name,
                action.name()
            )));
        }
        Ok(key)
    }

    /// Counts an answer by route and status.
    fn count(&self, route: &'static str, status: StatusCode) {
        self.ctx
            .metrics
            .api_requests
            .get_or_create(&crate::metrics::ApiLabel {
                route,
                status: status.as_u16(),
            })
            .inc();
    }
}

/// An API error: an HTTP status and `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    fn forbidden(message: String) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::from(Error::invalid(message))
    }
}

impl From<Error> for ApiError {
    /// The hub's errors, with the same codes as the protocol's.
    fn from(error: Error) -> ApiError {
        let status = match error.code {
            ErrorCode::InvalidArgument | ErrorCode::TooManyInvitees => StatusCode::BAD_REQUEST,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::NotPermitted => StatusCode::FORBIDDEN,
            ErrorCode::InvitationNotFound => StatusCode::NOT_FOUND,
            ErrorCode::AlreadyAnswered | ErrorCode::InvitationClosed => StatusCode::CONFLICT,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Server | ErrorCode::Shutdown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let code = error.code.c_name().to_str().unwrap_or("INTERNAL");
        ApiError::new(status, code, error.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = json_response(self.status, &body);
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// `body` as `application/json` with `status`.
fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}
