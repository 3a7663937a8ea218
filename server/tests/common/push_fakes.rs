//! Local fakes of the push providers for the push tests, on 127.0.0.1 with
//! TLS from a test CA made here: APNs (HTTP/2 only), FCM with its OAuth
//! token endpoint, and a webhook receiver. Each checks every header and
//! field it is sent (JWTs and signatures verified with the test keys; what is
//! wrong goes to `problems()`), records the requests, and answers as scripted
//! (the providers' real error shapes, slow answers, dropped connections),
//! else with success.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use beckon::protocol::UserId;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// The TEST-ONLY RSA key of the fake FCM service account (made with
/// `openssl genpkey -algorithm RSA`; never used anywhere else).
pub const TEST_ONLY_RSA_KEY: &str = include_str!("../data/TEST-ONLY-fcm-service-account-key.pem");

pub const TEAM_ID: &str = "TEAM123456";
pub const KEY_ID: &str = "KEY7654321";
pub const TOPIC: &str = "com.example.beckon";
pub const PROJECT: &str = "beckon-test";
pub const CLIENT_EMAIL: &str = "pusher@beckon-test.iam.gserviceaccount.com";
/// The webhook secret's raw bytes, and as configured.
pub const WEBHOOK_KEY: &[u8] = b"webhook-test-secret-32-bytes-ok!";

pub fn webhook_secret() -> String {
    format!("whsec_{}", STANDARD.encode(WEBHOOK_KEY))
}

/// Keys and certificates for one test, written to a temp directory.
pub struct TestKeys {
    pub dir: PathBuf,
    /// The CA the providers are told to trust (`push.extra_root_ca`).
    pub ca_file: PathBuf,
    /// The fakes' certificate (localhost, 127.0.0.1; signed by the CA) and
    /// its key, as PEM files, for other servers a test runs (a TLS Redis).
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// The APNs .p8 key (PKCS#8 PEM, EC P-256).
    pub apns_key_file: PathBuf,
    pub service_account_file: PathBuf,
    apns_public: Vec<u8>,
    rsa_public: Vec<u8>,
    cert: CertificateDer<'static>,
    key_pem: String,
}

impl TestKeys {
    pub fn new() -> TestKeys {
        let dir = std::env::temp_dir().join(format!("beckon-push-{}", super::rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let cert = params.signed_by(&server_key, &ca, &ca_key).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, ca.pem()).unwrap();
        let cert_file = dir.join("server.pem");
        std::fs::write(&cert_file, cert.pem()).unwrap();
        let key_file = dir.join("server.key");
        std::fs::write(&key_file, server_key.serialize_pem()).unwrap();

        let apns = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let apns_key_file = dir.join("AuthKey_TEST.p8");
        std::fs::write(&apns_key_file, apns.serialize_pem()).unwrap();

        let der = PrivateKeyDer::from_pem_slice(TEST_ONLY_RSA_KEY.as_bytes()).unwrap();
        let rsa = ring::signature::RsaKeyPair::from_pkcs8(der.secret_der()).unwrap();
        use ring::signature::KeyPair as _;
        let rsa_public = rsa.public_key().as_ref().to_vec();
        let service_account_file = dir.join("service-account.json");
        TestKeys {
            dir,
            ca_file,
            cert_file,
            key_file,
            apns_key_file,
            service_account_file,
            apns_public: apns.public_key_raw().to_vec(),
            rsa_public,
            cert: cert.der().clone(),
            key_pem: server_key.serialize_pem(),
        }
    }

    /// Writes the service account file, its token_uri pointing at `fcm`.
    pub fn write_service_account(&self, token_uri: &str) {
        let account = json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "test-key-1",
            "private_key": TEST_ONLY_RSA_KEY,
            "client_email": CLIENT_EMAIL,
            "token_uri": token_uri,
        });
        std::fs::write(&self.service_account_file, account.to_string()).unwrap();
    }

    fn tls(&self, alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

impl Drop for TestKeys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// How a fake answers one request.
#[derive(Clone, Debug)]
pub enum Answer {
    Status {
        code: u16,
        body: String,
        headers: Vec<(&'static str, String)>,
    },
    /// The answer after a wait.
    Slow(Duration, Box<Answer>),
    /// Every connection of the fake is closed, this request unanswered.
    DropConnection,
    /// The answer once the test calls [`Fake::release`] (after this
    /// request arrived).
    Hold(Box<Answer>),
    /// This request's connection goes silent: nothing more is read from it
    /// or written to it, and it stays open (a dead peer behind a NAT).
    Freeze,
    /// The status and headers, then a first piece of the body and nothing
    /// more: the body never ends.
    BodyStalls(u16),
}

impl Answer {
    pub fn status(code: u16, body: impl Into<String>) -> Answer {
        Answer::Status {
            code,
            body: body.into(),
            headers: Vec::new(),
        }
    }
    pub fn apns(code: u16, reason: &str) -> Answer {
        Answer::status(code, json!({"reason": reason}).to_string())
    }
    /// APNs' 410 shape.
    pub fn apns_unregistered() -> Answer {
        Answer::status(
            410,
            json!({"reason": "Unregistered", "timestamp": 1_700_000_000_000u64}).to_string(),
        )
    }
    pub fn fcm(code: u16, status: &str, error_code: &str, message: &str) -> Answer {
        Answer::status(
            code,
            json!({"error": {"code": code, "message": message, "status": status, "details": [
                {"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}
            ]}})
            .to_string(),
        )
    }
    pub fn retry_after(self, secs: u64) -> Answer {
        self.with_header("retry-after", &secs.to_string())
    }
    pub fn with_header(self, name: &'static str, value: &str) -> Answer {
        match self {
            Answer::Status {
                code,
                body,
                mut headers,
            } => {
                headers.push((name, value.to_owned()));
                Answer::Status {
                    code,
                    body,
                    headers,
                }
            }
            other => other,
        }
    }
}

/// One request as a fake received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// Which connection it came on (counted from 1, per fake).
    pub connection: u64,
    pub version: Version,
    pub method: String,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Apns,
    Fcm,
    Webhook,
    /// A receiver of the server's event webhooks (`[[webhooks.endpoint]]`).
    Events,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    /// Answers for provider requests (not the OAuth token endpoint).
    script: VecDeque<Answer>,
    /// Answers for the OAuth token endpoint.
    token_script: VecDeque<Answer>,
    problems: Vec<String>,
    /// APNs provider tokens answered as expired.
    expired_jwts: HashSet<String>,
    /// FCM access tokens issued and still accepted.
    access_tokens: HashSet<String>,
    issued: usize,
    /// When set, provider requests answer this (an outage), the script
    /// untouched.
    outage: Option<Answer>,
    /// How many times [`Fake::release`] was called.
    released: u64,
    /// The `webhook-id`s of requests answered 2xx at once.
    succeeded: HashSet<String>,
}

/// A fake provider on 127.0.0.1, served from a thread of its own.
pub struct Fake {
    pub kind: Kind,
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    kill: watch::Sender<u64>,
    released: watch::Sender<u64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    apns_public: Vec<u8>,
    rsa_public: Vec<u8>,
}

impl Fake {
    pub fn start(kind: Kind, keys: &TestKeys) -> Fake {
        let alpn: &[&[u8]] = match kind {
            // APNs is HTTP/2 only.
            Kind::Apns => &[b"h2"],
            _ => &[b"h2", b"http/1.1"],
        };
        Self::start_with_alpn(kind, keys, alpn)
    }

    /// A fake that only speaks HTTP/1.1 (ALPN `http/1.1`): a webhook
    /// receiver behind an older proxy.
    pub fn start_http1(kind: Kind, keys: &TestKeys) -> Fake {
        Self::start_with_alpn(kind, keys, &[b"http/1.1"])
    }

    fn start_with_alpn(kind: Kind, keys: &TestKeys, alpn: &[&[u8]]) -> Fake {
        let acceptor = keys.tls(alpn);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let (kill, _) = watch::channel(0u64);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let fake = Fake {
            kind,
            addr,
            state,
            kill,
            released: watch::channel(0u64).0,
            stop: Some(stop),
            apns_public: keys.apns_public.clone(),
            rsa_public: keys.rsa_public.clone(),
        };
        let shared = Arc::new(FakeCore {
            kind,
            state: fake.state.clone(),
            kill: fake.kill.clone(),
            apns_public: fake.apns_public.clone(),
            rsa_public: fake.rsa_public.clone(),
            port: addr.port(),
            released: fake.released.clone(),
            connections: std::sync::atomic::AtomicU64::new(0),
        });
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let serve = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let acceptor = acceptor.clone();
                        let core = shared.clone();
                        tokio::spawn(async move {
                            let mut killed = core.kill.subscribe();
                            let Ok(tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            let connection = Arc::new(Connection {
                                id: core
                                    .connections
                                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
                                    + 1,
                                frozen: tokio::sync::Notify::new(),
                            });
                            let this = connection.clone();
                            let service = hyper::service::service_fn(move |request| {
                                let core = core.clone();
                                let this = this.clone();
                                async move { core.handle(request, this).await }
                            });
                            let builder =
                                hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                            let serving = builder.serve_connection(TokioIo::new(tls), service);
                            tokio::pin!(serving);
                            tokio::select! {
                                _ = &mut serving => {}
                                _ = killed.changed() => {}
                                _ = connection.frozen.notified() => {
                                    // Kept open, never served again.
                                    let _ = killed.changed().await;
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = serve => {}
                    _ = stopped => {}
                }
            });
            // Connections still open are dropped with the runtime.
            runtime.shutdown_background();
        });
        fake
    }

    /// https://localhost:<port>
    pub fn url(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }

    /// The next provider requests' answers, in order (then success).
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().script.extend(answers);
    }

    pub fn script_token(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.lock().unwrap().token_script.extend(answers);
    }

    /// Every provider request answers `answer` until `outage(None)`.
    pub fn outage(&self, answer: Option<Answer>) {
        self.state.lock().unwrap().outage = answer;
    }

    /// Provider requests so far (not the token endpoint's).
    pub fn requests(&self) -> Vec<Recorded> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.path != "/token")
            .cloned()
            .collect()
    }

    pub fn token_requests(&self) -> Vec<Recorded> {
        self.state
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.path == "/token")
            .cloned()
            .collect()
    }

    /// Everything the fake found wrong in what it was sent.
    pub fn problems(&self) -> Vec<String> {
        self.state.lock().unwrap().problems.clone()
    }

    /// Answers the provider token `jwt` with 403 ExpiredProviderToken.
    pub fn expire_jwt(&self, jwt: &str) {
        self.state
            .lock()
            .unwrap()
            .expired_jwts
            .insert(jwt.to_owned());
    }

    /// Accepts `token` as an FCM access token (one scripted for the token
    /// endpoint).
    pub fn accept_access_token(&self, token: &str) {
        self.state
            .lock()
            .unwrap()
            .access_tokens
            .insert(token.to_owned());
    }

    /// Forgets every FCM access token issued (the next request gets 401).
    pub fn revoke_access_tokens(&self) {
        self.state.lock().unwrap().access_tokens.clear();
    }

    /// Lets every request answered [`Answer::Hold`] so far have its answer.
    /// The `webhook-id`s of the requests answered 2xx at once.
    pub fn succeeded_ids(&self) -> HashSet<String> {
        self.state.lock().unwrap().succeeded.clone()
    }

    pub fn release(&self) {
        self.state.lock().unwrap().released += 1;
        self.released.send_modify(|n| *n += 1);
    }

    /// Closes every open connection.
    pub fn drop_connections(&self) {
        self.kill.send_modify(|n| *n += 1);
    }

    /// Waits until `count` provider requests arrived; panics after `wait`.
    pub fn wait_requests(&self, count: usize, wait: Duration) -> Vec<Recorded> {
        let started = Instant::now();
        loop {
            let requests = self.requests();
            if requests.len() >= count {
                return requests;
            }
            assert!(
                started.elapsed() < wait,
                "{:?} fake: {} requests, not {count}, within {wait:?}",
                self.kind,
                requests.len()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.drop_connections();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

struct FakeCore {
    kind: Kind,
    state: Arc<Mutex<State>>,
    kill: watch::Sender<u64>,
    apns_public: Vec<u8>,
    rsa_public: Vec<u8>,
    port: u16,
    /// Counts [`Fake::release`] calls.
    released: watch::Sender<u64>,
    connections: std::sync::atomic::AtomicU64,
}

/// One connection the fake accepted.
struct Connection {
    id: u64,
    frozen: tokio::sync::Notify,
}

type Reply = Response<BoxBody<Bytes, std::convert::Infallible>>;

/// A body that sends one piece and then never ends.
struct Stalled(bool);

impl hyper::body::Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.0 {
            return std::task::Poll::Pending;
        }
        self.0 = true;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(
            b"{\"name\": ",
        )))))
    }
}

/// The Standard Webhooks signature of `r` under the test secret, checked
/// with ring directly (not with the server's signing module: a second code
/// path); a 401 when it does not match.
fn check_signature(r: &Recorded, problems: &mut Vec<String>) -> Result<(), Answer> {
    let id = r.header("webhook-id");
    let timestamp = r.header("webhook-timestamp");
    let content = [id.as_bytes(), b".", timestamp.as_bytes(), b".", &r.body].concat();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, WEBHOOK_KEY);
    let expected = STANDARD.encode(ring::hmac::sign(&key, &content).as_ref());
    let signed = r
        .header("webhook-signature")
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()));
    if id.is_empty() || timestamp.parse::<u64>().is_err() || !signed {
        problems.push(format!(
            "signature: id '{id}' timestamp '{timestamp}' header '{}'",
            r.header("webhook-signature")
        ));
        return Err(Answer::status(401, "bad signature"));
    }
    Ok(())
}

impl FakeCore {
    async fn handle(
        self: Arc<Self>,
        request: Request<hyper::body::Incoming>,
        connection: Arc<Connection>,
    ) -> Result<Reply, std::convert::Infallible> {
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes().to_vec())
            .unwrap_or_default();
        let recorded = Recorded {
            connection: connection.id,
            version: parts.version,
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            headers: parts.headers,
            body,
        };
        let token_endpoint = self.kind == Kind::Fcm && recorded.path == "/token";
        let mut problems = Vec::new();
        let checked = match (self.kind, token_endpoint) {
            (Kind::Apns, _) => self.check_apns(&recorded, &mut problems),
            (Kind::Fcm, true) => self.check_oauth(&recorded, &mut problems),
            (Kind::Fcm, false) => self.check_fcm(&recorded, &mut problems),
            (Kind::Webhook, _) => self.check_webhook(&recorded, &mut problems),
            (Kind::Events, _) => self.check_event(&recorded, &mut problems),
        };
        let (answer, released) = {
            let mut state = self.state.lock().unwrap();
            let released = state.released;
            let webhook_id = recorded.header("webhook-id").to_owned();
            state.requests.push(recorded);
            state.problems.extend(problems);
            let answer = match checked {
                Err(refusal) => refusal,
                Ok(()) if token_endpoint => match state.token_script.pop_front() {
                    Some(answer) => answer,
                    None => {
                        state.issued += 1;
                        let token = format!("ya29.test-{}", state.issued);
                        state.access_tokens.insert(token.clone());
                        Answer::status(
                            200,
                            json!({"access_token": token, "expires_in": 3599, "token_type": "Bearer"})
                                .to_string(),
                        )
                    }
                },
                Ok(()) => match (state.outage.clone(), state.script.pop_front()) {
                    (Some(outage), _) => outage,
                    (None, Some(answer)) => answer,
                    (None, None) => match self.kind {
                        Kind::Fcm => Answer::status(
                            200,
                            json!({"name": format!("projects/{PROJECT}/messages/0:1")}).to_string(),
                        ),
                        _ => Answer::status(200, ""),
                    },
                },
            };
            if matches!(&answer, Answer::Status { code, .. } if (200..300).contains(code)) {
                state.succeeded.insert(webhook_id);
            }
            (answer, released)
        };
        Ok(self.answer(answer, released, &connection).await)
    }

    async fn answer(&self, mut answer: Answer, released: u64, connection: &Connection) -> Reply {
        loop {
            match answer {
                Answer::Slow(wait, then) => {
                    tokio::time::sleep(wait).await;
                    answer = *then;
                }
                Answer::Hold(then) => {
                    let mut release = self.released.subscribe();
                    let _ = release.wait_for(|n| *n > released).await;
                    answer = *then;
                }
                Answer::DropConnection => {
                    self.kill.send_modify(|n| *n += 1);
                    std::future::pending::<()>().await;
                }
                Answer::Freeze => {
                    connection.frozen.notify_one();
                    std::future::pending::<()>().await;
                }
                Answer::BodyStalls(code) => {
                    return Response::builder()
                        .status(StatusCode::from_u16(code).unwrap())
                        .header("content-type", "application/json")
                        .body(Stalled(false).boxed())
                        .unwrap();
                }
                Answer::Status {
                    code,
                    body,
                    headers,
                } => {
                    let mut response = Response::builder()
                        .status(StatusCode::from_u16(code).unwrap())
                        .header("content-type", "application/json");
                    for (name, value) in headers {
                        response = response.header(name, value);
                    }
                    return response.body(Full::new(Bytes::from(body)).boxed()).unwrap();
                }
            }
        }
    }

    fn check_apns(&self, r: &Recorded, problems: &mut Vec<String>) -> Result<(), Answer> {
        let mut wrong = |what: String| problems.push(format!("apns: {what}"));
        if r.version != Version::HTTP_2 {
            wrong(format!("not HTTP/2: {:?}", r.version));
        }
        if r.method != "POST" {
            wrong(format!("method {}", r.method));
        }
        let token = r.path.strip_prefix("/3/device/").unwrap_or("");
        if token.is_empty() || !token.chars().all(|c| c.is_ascii_hexdigit()) {
            wrong(format!("path {}", r.path));
            return Err(Answer::apns(400, "BadPath"));
        }
        // The provider token: {alg: ES256, kid}, {iss, iat}, signed by the key.
        let jwt = r
            .header("authorization")
            .strip_prefix("bearer ")
            .unwrap_or("");
        match verify_jwt(jwt, &ECDSA_P256_SHA256_FIXED, &self.apns_public) {
            Ok((header, claims)) => {
                if header != json!({"alg": "ES256", "kid": KEY_ID}) {
                    wrong(format!("JWT header {header}"));
                }
                if claims["iss"] != TEAM_ID || !claims["iat"].is_u64() {
                    wrong(format!("JWT claims {claims}"));
                }
            }
            Err(e) => {
                wrong(format!("JWT: {e}"));
                return Err(Answer::apns(403, "InvalidProviderToken"));
            }
        }
        if self.state.lock().unwrap().expired_jwts.contains(jwt) {
            return Err(Answer::apns(403, "ExpiredProviderToken"));
        }
        let push_type = r.header("apns-push-type");
        let topic = r.header("apns-topic");
        if topic.is_empty() {
            wrong("no apns-topic".into());
            return Err(Answer::apns(400, "MissingTopic"));
        }
        match push_type {
            "voip" if !topic.ends_with(".voip") => wrong(format!("voip topic {topic}")),
            "alert" if topic.ends_with(".voip") => wrong(format!("alert topic {topic}")),
            "voip" | "alert" => {}
            other => wrong(format!("apns-push-type '{other}'")),
        }
        if r.header("apns-expiration").parse::<u64>().is_err() {
            wrong(format!("apns-expiration '{}'", r.header("apns-expiration")));
        }
        if r.header("apns-priority") != "10" {
            wrong(format!("apns-priority '{}'", r.header("apns-priority")));
        }
        let collapse = r.header("apns-collapse-id");
        if collapse.is_empty() || collapse.len() > 64 {
            wrong(format!("apns-collapse-id '{collapse}'"));
        }
        let body = r.json();
        let beckon = &body["beckon"];
        if !body["aps"].is_object() || !beckon.is_object() {
            wrong(format!("body {body}"));
        }
        if beckon["invitation_id"] != collapse {
            wrong("collapse id is not the invitation id".into());
        }
        let alert = &body["aps"]["alert"];
        match (push_type, beckon["type"].as_str()) {
            ("voip", Some("ring")) => {
                if !alert.is_null() {
                    wrong("a VoIP push with an alert".into());
                }
                check_ring_object(beckon, &mut wrong);
            }
            ("alert", Some("ring")) => {
                if !alert["title"].is_string() || !alert["body"].is_string() {
                    wrong(format!("alert {alert}"));
                }
                check_ring_object(beckon, &mut wrong);
            }
            ("alert", Some("stop")) => {
                if !alert.is_object() || !beckon["state"].is_string() {
                    wrong(format!("stop body {body}"));
                }
            }
            (kind, what) => wrong(format!("a {kind} push of type {what:?}")),
        }
        Ok(())
    }

    fn check_oauth(&self, r: &Recorded, problems: &mut Vec<String>) -> Result<(), Answer> {
        let mut wrong = |what: String| problems.push(format!("oauth: {what}"));
        if r.header("content-type") != "application/x-www-form-urlencoded" {
            wrong(format!("content-type {}", r.header("content-type")));
        }
        let form = String::from_utf8_lossy(&r.body).into_owned();
        let mut grant = "";
        let mut assertion = "";
        for pair in form.split('&') {
            match pair.split_once('=') {
                Some(("grant_type", v)) => grant = v,
                Some(("assertion", v)) => assertion = v,
                _ => wrong(format!("form field {pair}")),
            }
        }
        if grant != "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer" {
            wrong(format!("grant_type {grant}"));
        }
        match verify_jwt(assertion, &RSA_PKCS1_2048_8192_SHA256, &self.rsa_public) {
            Ok((header, claims)) => {
                if header["alg"] != "RS256" {
                    wrong(format!("assertion header {header}"));
                }
                let iat = claims["iat"].as_u64().unwrap_or(0);
                let aud = format!("https://localhost:{}/token", self.port);
                if claims["iss"] != CLIENT_EMAIL
                    || claims["scope"] != "https://www.googleapis.com/auth/firebase.messaging"
                    || claims["aud"] != aud
                    || claims["exp"].as_u64() != Some(iat + 3600)
                {
                    wrong(format!("assertion claims {claims}"));
                }
                Ok(())
            }
            Err(e) => {
                wrong(format!("assertion: {e}"));
                Err(Answer::status(
                    400,
                    json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
                        .to_string(),
                ))
            }
        }
    }

    fn check_fcm(&self, r: &Recorded, problems: &mut Vec<String>) -> Result<(), Answer> {
        let mut wrong = |what: String| problems.push(format!("fcm: {what}"));
        if r.path != format!("/v1/projects/{PROJECT}/messages:send") || r.method != "POST" {
            wrong(format!("{} {}", r.method, r.path));
        }
        let token = r
            .header("authorization")
            .strip_prefix("Bearer ")
            .unwrap_or("");
        if !self.state.lock().unwrap().access_tokens.contains(token) {
            return Err(Answer::status(
                401,
                json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}})
                    .to_string(),
            ));
        }
        let body = r.json();
        let message = &body["message"];
        if !message["token"].is_string() {
            wrong(format!("message.token in {body}"));
        }
        let data = &message["data"];
        let all_strings = data
            .as_object()
            .is_some_and(|d| d.values().all(Value::is_string));
        if !all_strings {
            wrong(format!("data values are not all strings: {data}"));
        }
        let android = &message["android"];
        let ttl = android["ttl"].as_str().unwrap_or("");
        if android["priority"] != "HIGH"
            || android["collapse_key"] != data["invitation_id"]
            || !ttl.ends_with('s')
            || ttl.trim_end_matches('s').parse::<u64>().is_err()
        {
            wrong(format!("android {android}"));
        }
        match data["type"].as_str() {
            Some("ring") => {
                for key in [
                    "invitation_id",
                    "inviter",
                    "invitees",
                    "extended_data",
                    "seconds_left",
                    "title",
                    "message",
                    "payload",
                    "resource_id",
                ] {
                    if !data[key].is_string() {
                        wrong(format!("data.{key} missing"));
                    }
                }
                let invitees: Value = serde_json::from_str(data["invitees"].as_str().unwrap_or(""))
                    .unwrap_or_default();
                if !invitees.is_array() {
                    wrong("data.invitees is not JSON text of an array".into());
                }
            }
            Some("stop") => {
                if !data["state"].is_string() || !data["invitation_id"].is_string() {
                    wrong(format!("stop data {data}"));
                }
            }
            other => wrong(format!("data.type {other:?}")),
        }
        Ok(())
    }

    /// An event webhook: signed as a push webhook is, with the body
    /// `{"id", "type", "timestamp", "data"}` and `id` the `webhook-id`.
    fn check_event(&self, r: &Recorded, problems: &mut Vec<String>) -> Result<(), Answer> {
        check_signature(r, problems)?;
        let body = r.json();
        let mut wrong = |what: String| problems.push(format!("event: {what}"));
        if body["id"].as_str() != Some(r.header("webhook-id")) {
            wrong(format!(
                "id {} is not webhook-id {}",
                body["id"],
                r.header("webhook-id")
            ));
        }
        let timestamp = body["timestamp"].as_str().unwrap_or("");
        if !(timestamp.len() == 24 && timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T')
        {
            wrong(format!("timestamp {timestamp:?}"));
        }
        if !body["type"].as_str().is_some_and(|t| t.contains('.')) || !body["data"].is_object() {
            wrong(format!("shape of {body}"));
        }
        Ok(())
    }

    fn check_webhook(&self, r: &Recorded, problems: &mut Vec<String>) -> Result<(), Answer> {
        check_signature(r, problems)?;
        let mut wrong = |what: String| problems.push(format!("webhook: {what}"));
        let body = r.json();
        for key in ["user", "device", "token", "provider"] {
            if !body[key].is_string() {
                wrong(format!("{key} in {body}"));
            }
        }
        match (body["type"].as_str(), body["invitation"]["type"].as_str()) {
            (Some("invitation.ring"), Some("ring")) => {
                check_ring_object(&body["invitation"], &mut wrong)
            }
            (Some("invitation.stop"), Some("stop")) => {}
            other => wrong(format!("types {other:?}")),
        }
        Ok(())
    }
}

fn check_ring_object(beckon: &Value, wrong: &mut impl FnMut(String)) {
    let ok = beckon["invitation_id"].is_string()
        && beckon["inviter"].is_string()
        && beckon["invitees"].as_array().is_some_and(|i| {
            i.iter()
                .all(|e| e["user_id"].is_string() && e["state"].is_string())
        })
        && beckon["extended_data"].is_string()
        && beckon["seconds_left"].is_u64()
        && beckon["payload"].is_string()
        && beckon["resource_id"].is_string();
    if !ok {
        wrong(format!("ring object {beckon}"));
    }
}

/// Checks a compact JWT's signature; returns its header and claims.
pub fn verify_jwt(
    jwt: &str,
    algorithm: &'static dyn ring::signature::VerificationAlgorithm,
    public_key: &[u8],
) -> Result<(Value, Value), String> {
    let mut parts = jwt.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("not a JWT: '{jwt}'"));
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string());
    let signature = decode(signature)?;
    UnparsedPublicKey::new(algorithm, public_key)
        .verify(format!("{header}.{claims}").as_bytes(), &signature)
        .map_err(|_| "bad signature".to_owned())?;
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    let claims: Value = serde_json::from_slice(&decode(claims)?).map_err(|e| e.to_string())?;
    Ok((header, claims))
}

/// The `[push]` TOML for a server process pointing at these fakes.
pub fn push_toml(
    keys: &TestKeys,
    apns: Option<&Fake>,
    fcm: Option<&Fake>,
    hook: Option<&Fake>,
) -> String {
    let mut toml = format!(
        "[push]\nextra_root_ca = {:?}\nrequest_timeout_ms = 2000\n",
        keys.ca_file.display().to_string()
    );
    if let Some(apns) = apns {
        toml += &format!(
            "[push.apns]\nteam_id = {TEAM_ID:?}\nkey_id = {KEY_ID:?}\nkey_file = {:?}\ntopic = {TOPIC:?}\nendpoint = {:?}\nsandbox_endpoint = {:?}\n",
            keys.apns_key_file.display().to_string(),
            apns.url(),
            apns.url()
        );
    }
    if let Some(fcm) = fcm {
        keys.write_service_account(&format!("{}/token", fcm.url()));
        toml += &format!(
            "[push.fcm]\nservice_account_file = {:?}\nendpoint = {:?}\n",
            keys.service_account_file.display().to_string(),
            fcm.url()
        );
    }
    if let Some(hook) = hook {
        toml += &format!(
            "[push.webhook]\nurl = \"{}/hooks/beckon\"\nsecret = {:?}\n",
            hook.url(),
            webhook_secret()
        );
    }
    toml
}

/// Logs `user` in on device `device` with raw frames, sets `target`, and
/// closes the connection (with no grace period the device is offline at
/// once; its target stays).
pub fn set_target(url: &str, user: &UserId, device: &str, target: Value) {
    super::block(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let hello =
            json!({"type": "hello", "v": 1, "user": user, "device": device, "token": "dev"});
        ws.send(WsMessage::text(hello.to_string())).await.unwrap();
        ws.send(WsMessage::text(
            json!({"type": "set_push_target", "id": 1, "target": target}).to_string(),
        ))
        .await
        .unwrap();
        let answer = tokio::time::timeout(super::WAIT, async {
            while let Some(Ok(message)) = ws.next().await {
                if let WsMessage::Text(text) = message {
                    let frame: Value = serde_json::from_str(&text).unwrap();
                    if frame["type"] == "result" && frame["id"] == 1 {
                        return frame;
                    }
                }
            }
            Value::Null
        })
        .await
        .unwrap();
        assert!(answer.get("ok").is_some(), "set_push_target: {answer}");
        let _ = ws.close(None).await;
    });
    // The session ends when the server sees the close (grace 0).
    std::thread::sleep(Duration::from_millis(200));
}
