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

    /// The `Host` header: the host (an IPv6 address in brackets), and the
    /// port unless it is the scheme's.
    pub fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (self.https, self.port) {
            (true, 443) | (false, 80) => host,
            (_, port) => format!("{host}:{port}"),
        }
    }

    fn key(&self) -> String {
        format!("{}|{}|{}", self.https, self.host, self.port)
    }
}

/// A provider's answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body; empty for a 2xx sent with [`HttpClient::send_push`].
    pub body: Bytes,
}

/// The longest Retry-After honoured (a push has given up long before).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

impl Reply {
    /// `Retry-After`, if the server gave one: seconds, or an HTTP-date
    /// (counted from `now_ms`, Unix milliseconds); at most an hour.
    pub fn retry_after(&self, now_ms: u64) -> Option<Duration> {
        let value = self
            .headers
            .get(hyper::header::RETRY_AFTER)?
            .to_str()
            .ok()?
            .trim();
        let wait = match value.parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => {
                let at_ms = parse_http_date(value)?.saturating_mul(1000);
                Duration::from_millis(at_ms.saturating_sub(now_ms))
            }
        };
        Some(wait.min(MAX_RETRY_AFTER))
    }
}

/// An HTTP-date in its preferred form (IMF-fixdate, RFC 9110 5.6.7:
/// `Sun, 06 Nov 1994 08:49:37 GMT`) as Unix seconds. The obsolete forms
/// are not read (a Retry-After in one counts as absent).
pub fn parse_http_date(text: &str) -> Option<u64> {
    let (_weekday, rest) = text.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = parts.next()?;
    let year: u64 = parts.next()?.parse().ok()?;
    let time = parts.next()?;
    if parts.next() != Some("GMT") || parts.next().is_some() {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as u64 + 1;
    let mut clock = time.split(':').map(|n| n.parse::<u64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if clock.next().is_some()
        || !(1..=31).contains(&day)
        || !(1970..=9999).contains(&year)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), from 1970-01-01.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
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

/// How much of an answer to wait for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Read {
    /// The body too, whatever the status.
    Whole,
    /// The status decides: a 2xx is final at its headers (its body, which
    /// no provider's success needs, is drained in the background).
    UnlessSuccess,
}

#[derive(Default)]
struct Pool {
    /// The endpoint's HTTP/2 connection (numbered), when it speaks HTTP/2.
    h2: parking_lot::Mutex<Option<(u64, http2::SendRequest<Body>)>>,
    /// Held while connecting, so concurrent requests wait for one connection.
    connecting: tokio::sync::Mutex<()>,
    /// Set once the endpoint answered ALPN with HTTP/1.1.
    h1_only: std::sync::atomic::AtomicBool,
    h1_idle: parking_lot::Mutex<Vec<http1::SendRequest<Body>>>,
}

impl Pool {
    fn live_h2(&self) -> Option<(u64, http2::SendRequest<Body>)> {
        self.h2
            .lock()
            .as_ref()
            .filter(|(_, s)| !s.is_closed())
            .cloned()
    }

    /// Forgets HTTP/2 connection `number`, if it is still the current one.
    fn evict(&self, number: u64) {
        let mut h2 = self.h2.lock();
        if h2.as_ref().is_some_and(|(n, _)| *n == number) {
            *h2 = None;
        }
    }
}

/// Evicts an HTTP/2 connection unless disarmed: a request on it failed, or
/// never finished (cut by its time limit), so the connection may be dead
/// without having said so.
struct EvictUnlessAnswered<'a> {
    pool: &'a Pool,
    number: u64,
    answered: bool,
}

impl Drop for EvictUnlessAnswered<'_> {
    fn drop(&mut self) {
        if !self.answered {
            self.pool.evict(self.number);
        }
    }
}

enum Fresh {
    H2(http2::SendRequest<Body>),
    H1(http1::SendRequest<Body>),
}

/// Connecting (TCP and TLS) gives up after this, whatever the request's own
/// time limit.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An idle HTTP/2 connection is pinged this often, and dropped when a ping
/// goes unanswered this long: a connection that went silent (a NAT that
/// forgot it) is noticed before a push needs it.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the body of a 2xx is drained in the background.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The client every provider shares.
pub struct HttpClient {
    tls: TlsConnector,
    pools: parking_lot::Mutex<HashMap<String, Arc<Pool>>>,
    connect_timeout: Duration,
    connections: std::sync::atomic::AtomicU64,
}

impl HttpClient {
    /// Trusts the system's root certificates and those in `extra_root_ca`
    /// (the setting of config section `section`, named in messages).
    pub fn new(
        extra_root_ca: Option<&std::path::Path>,
        section: &str,
    ) -> Result<HttpClient, String> {
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
                .map_err(|e| format!("{section}.extra_root_ca {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "{section}.extra_root_ca {}: no certificate in the file",
                    path.display()
                ));
            }
            for cert in certs {
                roots
                    .add(cert)
                    .map_err(|e| format!("{section}.extra_root_ca {}: {e}", path.display()))?;
            }
        }
        if roots.is_empty() {
            tracing::warn!(
                errors = ?native.errors,
                "{section}: no root certificate found (none from the system, no \
                 {section}.extra_root_ca): every https request will fail to verify its server"
            );
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("{section} tls: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(HttpClient {
            tls: TlsConnector::from(Arc::new(config)),
            pools: Default::default(),
            connect_timeout: CONNECT_TIMEOUT,
            connections: Default::default(),
        })
    }

    /// The same client, connecting within `limit` (tests).
    pub fn with_connect_timeout(mut self, limit: Duration) -> HttpClient {
        self.connect_timeout = limit;
        self
    }

    fn pool(&self, endpoint: &Endpoint) -> Arc<Pool> {
        self.pools.lock().entry(endpoint.key()).or_default().clone()
    }

    /// Forgets every connection (they close once their requests finish).
    pub fn close_all(&self) {
        self.pools.lock().clear();
    }

    /// Sends `request` (an absolute URI on `endpoint`) and reads the whole
    /// answer. `need_h2`: refuse a server that does not speak HTTP/2 (APNs).
    pub async fn send(
        &self,
        endpoint: &Endpoint,
        request: Request<Body>,
        need_h2: bool,
    ) -> Result<Reply, HttpError> {
        self.exchange(endpoint, request, need_h2, Read::Whole).await
    }

    /// As [`HttpClient::send`], for a push: a 2xx is the answer as soon as
    /// its headers arrive (its body is not waited for, nor can it fail the
    /// push: a retry would deliver it twice).
    pub async fn send_push(
        &self,
        endpoint: &Endpoint,
        request: Request<Body>,
        need_h2: bool,
    ) -> Result<Reply, HttpError> {
        self.exchange(endpoint, request, need_h2, Read::UnlessSuccess)
            .await
    }

    async fn exchange(
        &self,
        endpoint: &Endpoint,
        request: Request<Body>,
        need_h2: bool,
        read: Read,
    ) -> Result<Reply, HttpError> {
        let pool = self.pool(endpoint);
        use std::sync::atomic::Ordering;
        if !pool.h1_only.load(Ordering::Acquire) {
            let (number, sender) = match pool.live_h2() {
                Some(live) => live,
                None => {
                    let _connecting = pool.connecting.lock().await;
                    match pool.live_h2() {
                        Some(live) => live,
                        None => match self.connect(endpoint, need_h2).await? {
                            Fresh::H2(sender) => self.keep_h2(&pool, sender),
                            Fresh::H1(sender) => {
                                pool.h1_only.store(true, Ordering::Release);
                                return self.send_h1(&pool, endpoint, sender, request, read).await;
                            }
                        },
                    }
                }
            };
            return send_h2(&pool, number, sender, request, read).await;
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
                    let (number, sender) = self.keep_h2(&pool, sender);
                    return send_h2(&pool, number, sender, request, read).await;
                }
            },
        };
        self.send_h1(&pool, endpoint, sender, request, read).await
    }

    /// Makes `sender` the pool's HTTP/2 connection; returns it numbered.
    fn keep_h2(
        &self,
        pool: &Pool,
        sender: http2::SendRequest<Body>,
    ) -> (u64, http2::SendRequest<Body>) {
        let number = self
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *pool.h2.lock() = Some((number, sender.clone()));
        (number, sender)
    }

    async fn send_h1(
        &self,
        pool: &Arc<Pool>,
        endpoint: &Endpoint,
        mut sender: http1::SendRequest<Body>,
        request: Request<Body>,
        read: Read,
    ) -> Result<Reply, HttpError> {
        // HTTP/1.1 wants the origin form and a Host header.
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        parts.uri = path
            .parse()
            .map_err(|e| HttpError::Request(format!("{e}")))?;
        if let Ok(host) = HeaderValue::from_str(&endpoint.host_header()) {
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
        let keep = {
            let pool = pool.clone();
            move |sender: http1::SendRequest<Body>| {
                if !sender.is_closed() {
                    let mut idle = pool.h1_idle.lock();
                    if idle.len() < MAX_IDLE_H1 {
                        idle.push(sender);
                    }
                }
            }
        };
        if read == Read::UnlessSuccess && response.status().is_success() {
            // The connection is free again once the body is read: drain it
            // meanwhile, then keep the connection if it is.
            let (parts, body) = response.into_parts();
            tokio::spawn(async move {
                if drain(body).await {
                    keep(sender);
                }
            });
            return Ok(success(parts));
        }
        let reply = read_whole(response).await?;
        keep(sender);
        Ok(reply)
    }

    async fn connect(&self, endpoint: &Endpoint, need_h2: bool) -> Result<Fresh, HttpError> {
        match tokio::time::timeout(self.connect_timeout, self.connect_now(endpoint, need_h2)).await
        {
            Ok(fresh) => fresh,
            Err(_) => Err(HttpError::Connect(format!(
                "{}:{}: timed out after {:?}",
                endpoint.host, endpoint.port, self.connect_timeout
            ))),
        }
    }

    async fn connect_now(&self, endpoint: &Endpoint, need_h2: bool) -> Result<Fresh, HttpError> {
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
        .keep_alive_interval(KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
        .keep_alive_while_idle(true)
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

/// A request on HTTP/2 connection `number` of `pool`, which is dropped
/// unless the request gets its answer.
async fn send_h2(
    pool: &Pool,
    number: u64,
    mut sender: http2::SendRequest<Body>,
    request: Request<Body>,
    read: Read,
) -> Result<Reply, HttpError> {
    let mut evict = EvictUnlessAnswered {
        pool,
        number,
        answered: false,
    };
    sender
        .ready()
        .await
        .map_err(|e| HttpError::Request(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| HttpError::Request(e.to_string()))?;
    // The headers came: the connection is alive.
    evict.answered = true;
    if read == Read::UnlessSuccess && response.status().is_success() {
        let (parts, body) = response.into_parts();
        tokio::spawn(async move {
            drain(body).await;
        });
        return Ok(success(parts));
    }
    read_whole(response).await
}

fn success(parts: hyper::http::response::Parts) -> Reply {
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: Bytes::new(),
    }
}

/// Reads and drops a body (bounded in size and time); says whether it
/// ended.
async fn drain(body: hyper::body::Incoming) -> bool {
    let collect = Limited::new(body, MAX_BODY).collect();
    matches!(
        tokio::time::timeout(DRAIN_TIMEOUT, collect).await,
        Ok(Ok(_))
    )
}

async fn read_whole(response: hyper::Response<hyper::body::Incoming>) -> Result<Reply, HttpError> {
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
        let v6 = Endpoint::parse("http://[::1]:1/x").unwrap();
        assert_eq!(v6.host_header(), "[::1]:1");
        assert_eq!(v6.uri("/y").unwrap().to_string(), "http://[::1]:1/x/y");
        assert_eq!(apple.host_header(), "api.push.apple.com");
        assert_eq!(hook.host_header(), "127.0.0.1:9000");
        assert!(Endpoint::parse("http://example.com/x")
            .unwrap_err()
            .contains("plain http"));
        assert!(Endpoint::parse("ftp://example.com").is_err());
        assert!(Endpoint::parse("https://example.com/?a=b").is_err());
        assert!(Endpoint::parse("https://u:p@example.com/").is_err());
        assert!(Endpoint::parse("not a url").is_err());
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let reply = |value: &str| Reply {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: [(hyper::header::RETRY_AFTER, value.parse().unwrap())]
                .into_iter()
                .collect(),
            body: Bytes::new(),
        };
        // Tue, 14 Nov 2023 22:13:20 GMT
        let now_ms = 1_700_000_000_000;
        let secs = |s: u64| Some(Duration::from_secs(s));
        assert_eq!(reply("7").retry_after(now_ms), secs(7));
        assert_eq!(reply(" 0 ").retry_after(now_ms), secs(0));
        assert_eq!(reply("99999").retry_after(now_ms), secs(3600));
        assert_eq!(
            reply("Tue, 14 Nov 2023 22:13:29 GMT").retry_after(now_ms),
            secs(9)
        );
        // Past: no wait.
        assert_eq!(
            reply("Tue, 14 Nov 2023 22:00:00 GMT").retry_after(now_ms),
            secs(0)
        );
        assert_eq!(
            reply("Tue, 14 Nov 2023 22:13:20 GMT").retry_after(now_ms - 500),
            Some(Duration::from_millis(500))
        );
        for bad in [
            "soon",
            "-1",
            "Tuesday, 14-Nov-23 22:13:29 GMT",
            "Tue, 31 Foo 2023 22:13:29 GMT",
        ] {
            assert_eq!(reply(bad).retry_after(now_ms), None, "{bad}");
        }
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
    }
}
