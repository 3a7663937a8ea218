//! The web phone page (`--web`, `[web] listen`; off by default): the page
//! of `examples/web/` and the web client (`bindings/web/dist/beckon.js`),
//! embedded in the binary, on a listener, thread and runtime of their own.
//! A newcomer opens it in two tabs to see invitations work; it is for
//! trying and demos, not a product.
//!
//! `GET /config.json` tells the page where the public listener is:
//! `{"server_url": "ws://HOST:PORT", "dev": bool}`. HOST is the host the
//! browser used for the page (its `Host` header), so the page works from
//! another machine, unless the public listener is bound to one address (then
//! that address), or `[web] server_url` names the URL outright (behind a
//! proxy). Every answer says `Cache-Control: no-cache`, `nosniff`, and a
//! Content-Security-Policy that allows scripts, styles and connections to
//! this origin and the WebSocket server only.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::ServerContext;

const INDEX_HTML: &str = include_str!("../../examples/web/index.html");
const PHONE_JS: &str = include_str!("../../examples/web/phone.js");
const PHONE_CSS: &str = include_str!("../../examples/web/phone.css");
const BECKON_JS: &str = include_str!("../../bindings/web/dist/beckon.js");

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const JSON: &str = "application/json";
const TEXT: &str = "text/plain; charset=utf-8";

/// What the page's handlers share.
struct Web {
    ctx: Arc<ServerContext>,
    /// The public listener's bound address (its real port when it was :0).
    public: SocketAddr,
}

/// Serves the page on `listener`, on a thread and runtime of its own (as
/// the admin address), until the server shuts down. `public` is the public
/// listener's bound address.
pub fn spawn(
    ctx: Arc<ServerContext>,
    listener: std::net::TcpListener,
    public: SocketAddr,
) -> std::io::Result<()> {
    let web = Arc::new(Web {
        ctx: ctx.clone(),
        public,
    });
    let asset = |content_type: &'static str, body: &'static str| {
        get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) })
    };
    let app = Router::new()
        .route("/", asset(HTML, INDEX_HTML))
        .route("/index.html", asset(HTML, INDEX_HTML))
        .route("/phone.js", asset(JAVASCRIPT, PHONE_JS))
        .route("/phone.css", asset(CSS, PHONE_CSS))
        .route("/beckon.js", asset(JAVASCRIPT, BECKON_JS))
        .route("/config.json", get(config_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            web.clone(),
            security_headers,
        ))
        .with_state(web);
    crate::http::spawn(ctx, listener, app, "web")
}

async fn config_json(State(web): State<Arc<Web>>, headers: HeaderMap) -> Response {
    match web.server_url(&headers) {
        Some(url) => {
            let body = serde_json::json!({ "server_url": url, "dev": web.ctx.config.dev });
            ([(header::CONTENT_TYPE, JSON)], body.to_string()).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            [(header::CONTENT_TYPE, TEXT)],
            "a Host header naming a host is needed\n",
        )
            .into_response(),
    }
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, TEXT)],
        "not found\n",
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::CONTENT_TYPE, TEXT), (header::ALLOW, "GET, HEAD")],
        "only GET and HEAD\n",
    )
        .into_response()
}

/// Adds the headers every answer carries.
async fn security_headers(State(web): State<Arc<Web>>, request: Request, next: Next) -> Response {
    let csp = web.content_security_policy(request.headers());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let fixed = [
        (header::CACHE_CONTROL, "no-cache"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

impl Web {
    /// Where the page's client connects: `[web] server_url` if set, else
    /// `ws://HOST:PORT` (`wss` with TLS) with HOST the public listener's
    /// address, or the request's host when that is a wildcard. None when
    /// the request names no usable host.
    fn server_url(&self, headers: &HeaderMap) -> Option<String> {
        if let Some(url) = &self.ctx.config.web.server_url {
            return Some(url.clone());
        }
        let scheme = if self.ctx.config.tls_cert.is_some() {
            "wss"
        } else {
            "ws"
        };
        let host = match self.public.ip() {
            ip if ip.is_unspecified() => host_of(headers.get(header::HOST)?.to_str().ok()?)?,
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        Some(format!("{scheme}://{host}:{}", self.public.port()))
    }

    /// Scripts, styles and images of this origin only, no frames, no forms,
    /// no plugins; connections to this origin (`/config.json`) and to the
    /// WebSocket server.
    fn content_security_policy(&self, headers: &HeaderMap) -> String {
        let server = self
            .server_url(headers)
            .map(|url| format!(" {url}"))
            .unwrap_or_default();
        format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'{server}; base-uri 'none'; form-action 'none'; \
             frame-ancestors 'none'"
        )
    }
}

/// The host of a `Host` header's value (`name`, `name:port`, `[v6]:port`),
/// if it is a plausible DNS name or IP literal; nothing else may reach the
/// page's configuration or its security policy.
fn host_of(value: &str) -> Option<String> {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        inside.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            after => Some(after.strip_prefix(':')?),
        };
        (&value[..inside.len() + 2], port)
    } else {
        match value.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
    }
    let plain = host.starts_with('[')
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')));
    plain.then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::host_of;

    #[test]
    fn hosts() {
        assert_eq!(host_of("example.com").as_deref(), Some("example.com"));
        assert_eq!(host_of("Phone.Local:8080").as_deref(), Some("phone.local"));
        assert_eq!(host_of("10.0.0.7:80").as_deref(), Some("10.0.0.7"));
        assert_eq!(host_of("[::1]:8080").as_deref(), Some("[::1]"));
        assert_eq!(host_of("[::1]").as_deref(), Some("[::1]"));
        for bad in [
            "",
            ":80",
            "a b",
            "x:80:90",
            "x:port",
            "[nope]:1",
            "[::1]x",
            "evil.com/'x",
            "x;y",
        ] {
            assert_eq!(host_of(bad), None, "{bad:?}");
        }
    }
}
