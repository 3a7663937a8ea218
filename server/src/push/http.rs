//! The providers' HTTP client: HTTP/2 over TLS (ALPN "h2") with one
//! connection per endpoint, shared by every request and made again when it
//! drops; HTTP/1.1 when a server (a webhook receiver) only speaks that.
//! Plain `http://` is for loopback addresses only (tests, a local relay).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::{http1, http2};
use hyper::header::{HeaderMap, HeaderValue, HOST};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::TlsConnector;

/// The largest answer body read (providers answer with a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;
/// Idle HTTP/1.1 connections kept per endpoint.
const MAX_IDLE_H1: usize = 16;

/// Where requests go: a parsed `https://host[:port][/base]` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// The path prefix, without a trailing slash ("" for none).
    pub base: String,
}

impl Endpoint {
    /// Parses `url`; `http://` only for localhost and loopback addresses.
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let uri: Uri = url
            .parse()
            .map_err(|e| format!("'{url}' is not a URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => {
                return Err(format!(
                    "'{url}': the scheme must be https (or http for localhost)"
                ))
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("'{url}' has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if uri.query().is_some() {
            return Err(format!("'{url}': no query string allowed"));
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            return Err(format!("'{url}': no user or password in the URL"));
        }
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !https && !loopback {
            return Err(format!(
                "'{url}': plain http is only allowed for localhost and 127.0.0.1; use https"
            ));
        }
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let base = uri.path().trim_end_matches('/').to_owned();
        Ok(Endpoint {
            https,
            host,
            port,
            base,
        })
    }

    /// The absolute URI of `path` (which starts with '/') on this endpoint.
    pub fn uri(&self, path: &str) -> Result<Uri, String> {
        let scheme = if self.https { "https" } else { "http" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let mut full = format!("{}{path}", self.base);
        if full.is_empty() {
            full.push('/');
        }
        format!("{scheme}://{host}:{}{full}", self.port)
            .parse()
            .map_err(|e| format!("bad request URI: {e}"))
    }

    fn key(&self) -> String {
        format!("{}|{}|{}", self.https, self.host, self.port)
    }
}

/// A provider's answer, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// `Retry-After` in seconds, if the server gave one (capped at an hour).
    pub fn retry_after(&self) -> Option<Duration> {
        let secs: u64 = self
            .headers
            .get(hyper::header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(Duration::from_secs(secs.min(3600)))
    }
}

/// Why a request got no answer: all of these are worth a retry.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connection failed: {0}")]
    Connect(String),
    #[error("request failed: {0}")]
    Request(String),
}

type Body = Full<Bytes>;

#[derive(Default)]
struct Pool {
    /// The endpoint's HTTP/2 connection, when it speaks HTTP/2. Locked while
    /// connecting so concurrent requests wait for one connection.
    h2: tokio::sync::Mutex<Option<http2::SendRequest<Body>>>,
    /// Set once the endpoint answered ALPN with HTTP/1.1.
    h1_only: std::sync::atomic::AtomicBool,
    h1_idle: parking_lot::Mutex<Vec<http1::SendRequest<Body>>>,
}

enum Fresh {
    H2(http2::SendRequest<Body>),
    H1(http1::SendRequest<Body>),
}

/// The client every provider shares.
pub struct HttpClient {
    tls: TlsConnector,
    pools: parking_lot::Mutex<HashMap<String, Arc<Pool>>>,
}

impl HttpClient {
    /// Trusts the system's root certificates and those in `extra_root_ca`.
    pub fn new(extra_root_ca: Option<&std::path::Path>) -> Result<HttpClient, String> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates are skipped: the extra CA (or a
        // later failure to verify a server) says what is missing.
        let native = rustls_native_certs::load_native_certs();
        for cert in native.certs {
            let _ = roots.add(cert);
        }
        if let Some(path) = extra_root_ca {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("push.extra_root_ca {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "push.extra_root_ca {}: no certificate in the file",
                    path.display()
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("push.extra_root_ca {}: {e}", path.display()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("push tls: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(HttpClient {
            tls: TlsConnector::from(Arc::new(config)),
            pools: Default::default(),
        })
    }

    fn pool(&self, endpoint: &Endpoint) -> Arc<Pool> {
        self.pools.lock().entry(endpoint.key()).or_default().clone()
    }

    /// Forgets every connection (they close once their requests finish).
    pub fn close_all(&self) {
        self.pools.lock().clear();
    }

    /// Sends `request` (an absolute URI on `endpoint`) and reads the answer.
    /// `need_h2`: refuse a server that does not speak HTTP/2 (APNs).
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        request: Request<Body>,
        need_h2: bool,
    ) -> Result<Reply, HttpError> {
        let pool = self.pool(endpoint);
        use std::sync::atomic::Ordering;
        if !pool.h1_only.load(Ordering::Acquire) {
            let mut h2 = pool.h2.lock().await;
            let live = h2.as_ref().filter(|s| !s.is_closed()).cloned();
            let sender = match live {
                Some(sender) => sender,
                None => {
                    *h2 = None;
                    match self.connect(endpoint, need_h2).await? {
                        Fresh::H2(sender) => {
                            *h2 = Some(sender.clone());
                            sender
                        }
                        Fresh::H1(sender) => {
                            pool.h1_only.store(true, Ordering::Release);
                            drop(h2);
                            return self.send_h1(&pool, endpoint, sender, request).await;
                        }
                    }
                }
            };
            drop(h2);
            return send_h2(sender, request).await;
        }
        if need_h2 {
            return Err(HttpError::Connect(
                "the server does not speak HTTP/2".to_owned(),
            ));
        }
        let idle = {
            let mut idle = pool.h1_idle.lock();
            let mut found = None;
            while let Some(sender) = idle.pop() {
                if sender.is_ready() {
                    found = Some(sender);
                    break;
                }
            }
            found
        };
        let sender = match idle {
            Some(sender) => sender,
            None => match self.connect(endpoint, false).await? {
                Fresh::H1(sender) => sender,
                // The server changed its mind; use HTTP/2 from now on.
                Fresh::H2(sender) => {
                    pool.h1_only.store(false, Ordering::Release);
                    *pool.h2.lock().await = Some(sender.clone());
                    return send_h2(sender, request).await;
                }
            },
        };
        self.send_h1(&pool, endpoint, sender, request).await
    }

    async fn send_h1(
        &self,
        pool: &Pool,
        endpoint: &Endpoint,
        mut sender: http1::SendRequest<Body>,
        request: Request<Body>,
    ) -> Result<Reply, HttpError> {
        // HTTP/1.1 wants the origin form and a Host header.
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        let host = match (endpoint.https, endpoint.port) {
            (true, 443) | (false, 80) => endpoint.host.clone(),
            (_, port) => format!("{}:{port}", endpoint.host),
        };
        parts.uri = path
            .parse()
            .map_err(|e| HttpError::Request(format!("{e}")))?;
        if let Ok(host) = HeaderValue::from_str(&host) {
            parts.headers.insert(HOST, host);
        }
        sender
            .ready()
            .await
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let response = sender
            .send_request(Request::from_parts(parts, body))
            .await
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let reply = read(response).await?;
        if !sender.is_closed() {
            let mut idle = pool.h1_idle.lock();
            if idle.len() < MAX_IDLE_H1 {
                idle.push(sender);
            }
        }
        Ok(reply)
    }

    async fn connect(&self, endpoint: &Endpoint, need_h2: bool) -> Result<Fresh, HttpError> {
        let connect_error = |e: std::io::Error| HttpError::Connect(e.to_string());
        let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
            .await
            .map_err(connect_error)?;
        let _ = tcp.set_nodelay(true);
        if !endpoint.https {
            // Plain http (loopback only): HTTP/2 with prior knowledge where
            // it is required, else HTTP/1.1.
            return if need_h2 {
                handshake_h2(tcp).await
            } else {
                handshake_h1(tcp).await
            };
        }
        let name = ServerName::try_from(endpoint.host.clone())
            .map_err(|e| HttpError::Connect(format!("{}: {e}", endpoint.host)))?;
        let tls = self.tls.connect(name, tcp).await.map_err(connect_error)?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        if h2 {
            handshake_h2(tls).await
        } else if need_h2 {
            Err(HttpError::Connect(
                "the server does not speak HTTP/2 (ALPN)".to_owned(),
            ))
        } else {
            handshake_h1(tls).await
        }
    }
}

async fn handshake_h2<S>(stream: S) -> Result<Fresh, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(60))
        .keep_alive_timeout(Duration::from_secs(20))
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HttpError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("push: HTTP/2 connection ended: {e}");
        }
    });
    Ok(Fresh::H2(sender))
}

async fn handshake_h1<S>(stream: S) -> Result<Fresh, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| HttpError::Connect(e.to_string()))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(Fresh::H1(sender))
}

async fn send_h2(
    mut sender: http2::SendRequest<Body>,
    request: Request<Body>,
) -> Result<Reply, HttpError> {
    sender
        .ready()
        .await
        .map_err(|e| HttpError::Request(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| HttpError::Request(e.to_string()))?;
    read(response).await
}

async fn read(response: hyper::Response<hyper::body::Incoming>) -> Result<Reply, HttpError> {
    let (parts, body) = response.into_parts();
    let body = Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|e| HttpError::Request(format!("reading the answer: {e}")))?
        .to_bytes();
    Ok(Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_and_plain_http_is_loopback_only() {
        let apple = Endpoint::parse("https://api.push.apple.com").unwrap();
        assert_eq!((apple.port, apple.base.as_str()), (443, ""));
        assert_eq!(
            apple.uri("/3/device/ab").unwrap().to_string(),
            "https://api.push.apple.com:443/3/device/ab"
        );
        let hook = Endpoint::parse("http://127.0.0.1:9000/hooks/").unwrap();
        assert_eq!((hook.port, hook.base.as_str()), (9000, "/hooks"));
        Endpoint::parse("http://localhost:1/x").unwrap();
        Endpoint::parse("http://[::1]:1/x").unwrap();
        assert!(Endpoint::parse("http://example.com/x")
            .unwrap_err()
            .contains("plain http"));
        assert!(Endpoint::parse("ftp://example.com").is_err());
        assert!(Endpoint::parse("https://example.com/?a=b").is_err());
        assert!(Endpoint::parse("https://u:p@example.com/").is_err());
        assert!(Endpoint::parse("not a url").is_err());
    }
}
