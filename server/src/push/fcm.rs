//! FCM HTTP v1 with a service account: an OAuth2 access token from the
//! JWT-bearer grant (an RS256 assertion signed with the account's key),
//! cached until 5 minutes before it expires (a token that lives less than
//! 10 minutes: for half its life); rings and stops go as high-priority data
//! messages.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use ring::signature::RsaKeyPair;
use serde::Deserialize;
use serde_json::json;

use super::http::{Endpoint, HttpClient};
use super::{invitation_object_fit, jwt, Attempt, Clock, Fit, Outgoing, STOP_TTL_SECS};
use crate::config::FcmConfig;
use beckon::hub::{PushMessage, PushResult};

pub const SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// An access token is replaced this long before Google says it expires (at
/// most half its life earlier).
pub const EARLY: Duration = Duration::from_secs(5 * 60);
/// The largest data payload of a message (FCM's limit), counted as the
/// `data` object's JSON.
pub const MAX_DATA: usize = 4096;

#[derive(Deserialize)]
struct ServiceAccount {
    project_id: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    client_email: String,
    token_uri: Option<String>,
}

/// `[push.fcm]`, the service account read and its key parsed.
pub struct FcmSettings {
    pub project_id: String,
    pub client_email: String,
    key_id: Option<String>,
    key: RsaKeyPair,
    pub endpoint: Endpoint,
    pub token_url: String,
    token_endpoint: Endpoint,
}

impl FcmSettings {
    pub fn load(config: &FcmConfig) -> Result<FcmSettings, String> {
        let file = config.service_account_file.display();
        let err = |e: String| format!("push.fcm.service_account_file {file}: {e}");
        let text = std::fs::read(&config.service_account_file).map_err(|e| err(e.to_string()))?;
        let account: ServiceAccount = serde_json::from_slice(&text)
            .map_err(|e| err(format!("not a service account key: {e}")))?;
        let der = jwt::pkcs8_from_pem(account.private_key.as_bytes())
            .map_err(|e| err(format!("private_key: {e}")))?;
        let key = jwt::rs256_key(&der).map_err(|e| err(format!("private_key: {e}")))?;
        if account.project_id.is_empty()
            || !account
                .project_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':' || c == '.')
        {
            return Err(err(format!(
                "project_id: '{}' is not a project id",
                account.project_id
            )));
        }
        if account.client_email.is_empty() {
            return Err(err("client_email: empty".to_owned()));
        }
        let endpoint =
            Endpoint::parse(&config.endpoint).map_err(|e| format!("push.fcm.endpoint: {e}"))?;
        let (token_url, what) = match (&config.token_url, &account.token_uri) {
            (Some(url), _) => (url.clone(), "push.fcm.token_url".to_owned()),
            (None, Some(uri)) => (
                uri.clone(),
                format!("push.fcm.service_account_file {file}: token_uri"),
            ),
            (None, None) => {
                return Err(err(
                    "no token_uri in the account and no push.fcm.token_url".to_owned()
                ))
            }
        };
        let token_endpoint = Endpoint::parse(&token_url).map_err(|e| format!("{what}: {e}"))?;
        Ok(FcmSettings {
            project_id: account.project_id,
            client_email: account.client_email,
            key_id: account.private_key_id,
            key,
            endpoint,
            token_url,
            token_endpoint,
        })
    }
}

#[derive(Clone)]
struct AccessToken {
    token: Arc<str>,
    /// Unix ms after which it is not used (5 minutes before its expiry).
    use_until_ms: u64,
}

pub struct Fcm {
    settings: FcmSettings,
    http: Arc<HttpClient>,
    clock: Arc<dyn Clock>,
    token: parking_lot::Mutex<Option<AccessToken>>,
    /// One token request at a time; the others wait for its token.
    fetching: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

impl Fcm {
    pub fn new(settings: FcmSettings, http: Arc<HttpClient>, clock: Arc<dyn Clock>) -> Fcm {
        Fcm {
            settings,
            http,
            clock,
            token: parking_lot::Mutex::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, refused: Option<&str>) -> Option<Arc<str>> {
        let now = self.clock.now_ms();
        let token = self.token.lock();
        let current = token.as_ref()?;
        let refused = refused.is_some_and(|r| *r == *current.token);
        (now < current.use_until_ms && !refused).then(|| current.token.clone())
    }

    /// The access token, from the cache or the token URL. `refused`: a token
    /// FCM just answered 401 to.
    async fn access_token(&self, refused: Option<&str>) -> Result<Arc<str>, Attempt> {
        if let Some(token) = self.cached(refused) {
            return Ok(token);
        }
        let _one = self.fetching.lock().await;
        if let Some(token) = self.cached(refused) {
            return Ok(token);
        }
        let now = self.clock.now_ms();
        let iat = now / 1000;
        let mut header = json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.settings.key_id {
            header["kid"] = json!(kid);
        }
        let claims = json!({
            "iss": self.settings.client_email,
            "scope": SCOPE,
            "aud": self.settings.token_url,
            "iat": iat,
            "exp": iat + 3600,
        });
        let assertion = jwt::sign_rs256(&self.settings.key, &header, &claims)
            .map_err(|e| Attempt::failed(format!("oauth assertion: {e}")))?;
        // The assertion is base64url: nothing in it needs escaping.
        let form = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        );
        let uri = self
            .settings
            .token_endpoint
            .uri("")
            .map_err(Attempt::failed)?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| Attempt::failed(format!("oauth request: {e}")))?;
        let reply = self
            .http
            .send(&self.settings.token_endpoint, request, false)
            .await
            .map_err(|e| Attempt::Retry {
                reason: format!("oauth: {e}"),
                after: None,
            })?;
        if reply.status.is_server_error() || reply.status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Attempt::Retry {
                reason: format!("oauth: HTTP {}", reply.status.as_u16()),
                after: reply.retry_after(self.clock.now_ms()),
            });
        }
        if !reply.status.is_success() {
            let error = serde_json::from_slice::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {}", reply.status.as_u16()));
            return Err(Attempt::failed(format!("oauth: {error}")));
        }
        let answer: TokenAnswer = serde_json::from_slice(&reply.body)
            .map_err(|e| Attempt::failed(format!("oauth: unreadable answer: {e}")))?;
        if answer.access_token.is_empty() {
            return Err(Attempt::failed("oauth: an empty access token"));
        }
        let token: Arc<str> = answer.access_token.into();
        // Used until 5 minutes before it expires, or for half its life if
        // that is shorter (0 s: used for this push only).
        let lifetime = answer.expires_in.saturating_mul(1000);
        let early = (EARLY.as_millis() as u64).min(lifetime / 2);
        let use_until_ms = now.saturating_add(lifetime - early);
        *self.token.lock() = Some(AccessToken {
            token: token.clone(),
            use_until_ms,
        });
        Ok(token)
    }

    /// The `message` FCM is sent for `out`: a ring carrying as much as fits
    /// [`MAX_DATA`] (Err when nothing does).
    pub fn message(&self, out: &Outgoing) -> Result<serde_json::Value, Attempt> {
        let now_ms = self.clock.now_ms();
        let ttl = match &out.message {
            PushMessage::Ring(ring) => u64::from(ring.seconds_left(now_ms)),
            PushMessage::Stop { .. } => STOP_TTL_SECS,
        };
        let data = Fit::ALL
            .into_iter()
            .map(|fit| data_map(&invitation_object_fit(&out.message, now_ms, fit)))
            .find(|data| serde_json::to_string(data).is_ok_and(|text| text.len() <= MAX_DATA))
            .ok_or_else(|| Attempt::failed(format!("payload too large: over {MAX_DATA} bytes")))?;
        Ok(json!({"message": {
            "token": &*out.target.token,
            "data": data,
            "android": {
                "priority": "HIGH",
                "ttl": format!("{ttl}s"),
                "collapse_key": out.message.invitation_id(),
            },
        }}))
    }

    pub async fn send(&self, out: &Outgoing) -> Attempt {
        let body = match self.message(out) {
            Ok(message) => message.to_string(),
            Err(done) => return done,
        };
        let path = format!("/v1/projects/{}/messages:send", self.settings.project_id);
        let uri = match self.settings.endpoint.uri(&path) {
            Ok(uri) => uri,
            Err(e) => return Attempt::failed(e),
        };
        let mut refused: Option<Arc<str>> = None;
        for _ in 0..2 {
            let token = match self.access_token(refused.as_deref()).await {
                Ok(token) => token,
                Err(attempt) => return attempt,
            };
            let request = Request::builder()
                .method(Method::POST)
                .uri(uri.clone())
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body.clone())));
            let request = match request {
                Ok(r) => r,
                Err(e) => return Attempt::failed(format!("bad FCM request: {e}")),
            };
            let reply = match self
                .http
                .send_push(&self.settings.endpoint, request, false)
                .await
            {
                Ok(reply) => reply,
                Err(e) => {
                    return Attempt::Retry {
                        reason: e.to_string(),
                        after: None,
                    }
                }
            };
            if reply.status.is_success() {
                return Attempt::Done(PushResult::Sent);
            }
            let error = FcmError::parse(&reply.body);
            let reason = error
                .code
                .clone()
                .or_else(|| error.status.clone())
                .unwrap_or_else(|| format!("HTTP {}", reply.status.as_u16()));
            let now_ms = self.clock.now_ms();
            return match reply.status {
                StatusCode::UNAUTHORIZED if refused.is_none() => {
                    refused = Some(token);
                    continue;
                }
                // The token is gone: UNREGISTERED (with a 404), or an
                // INVALID_ARGUMENT about the registration token. Any other
                // 404 (a wrong project, say) is a plain failure.
                _ if error.code.as_deref() == Some("UNREGISTERED") => {
                    Attempt::token_invalid(reason)
                }
                StatusCode::BAD_REQUEST if error.about_the_token() => {
                    Attempt::token_invalid(reason)
                }
                StatusCode::TOO_MANY_REQUESTS => Attempt::Retry {
                    reason,
                    after: reply.retry_after(now_ms),
                },
                s if s.is_server_error() => Attempt::Retry {
                    reason,
                    after: reply.retry_after(now_ms),
                },
                _ => Attempt::failed(reason),
            };
        }
        Attempt::failed("access token refused twice")
    }
}

/// FCM data values are strings: nested values go as JSON text.
fn data_map(object: &serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let mut data = serde_json::Map::new();
    if let Some(fields) = object.as_object() {
        for (key, value) in fields {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            data.insert(key.clone(), serde_json::Value::String(text));
        }
    }
    data
}

/// FCM's error body: `{"error": {"code", "message", "status", "details":
/// [{"@type": "...FcmError", "errorCode": "UNREGISTERED"}]}}`.
#[derive(Default)]
struct FcmError {
    status: Option<String>,
    message: String,
    code: Option<String>,
}

impl FcmError {
    fn parse(body: &[u8]) -> FcmError {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
            return FcmError::default();
        };
        let error = &value["error"];
        let code = error["details"].as_array().and_then(|details| {
            details
                .iter()
                .find_map(|d| d.get("errorCode")?.as_str().map(str::to_owned))
        });
        FcmError {
            status: error["status"].as_str().map(str::to_owned),
            message: error["message"].as_str().unwrap_or_default().to_owned(),
            code,
        }
    }

    /// INVALID_ARGUMENT because of the registration token (not, say, a
    /// field of the message).
    fn about_the_token(&self) -> bool {
        let invalid = self.code.as_deref() == Some("INVALID_ARGUMENT")
            || self.status.as_deref() == Some("INVALID_ARGUMENT");
        let message = self.message.to_ascii_lowercase();
        invalid && message.contains("registration token")
    }
}
