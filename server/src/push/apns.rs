//! APNs over HTTP/2 with token authentication: an ES256 JWT (the provider
//! token) from the team's .p8 key. Apple refuses a token younger than 20
//! minutes as a new one ("TooManyProviderTokenUpdates") and older than 60
//! ("ExpiredProviderToken"): a token is used until it is 40 minutes old,
//! never past 55, and a new one is made earlier only after Apple says the
//! current one expired, or is invalid and at least 20 minutes old.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use ring::signature::EcdsaKeyPair;
use serde_json::json;

use super::http::{Endpoint, HttpClient};
use super::{
    cut, invitation_object, invitation_object_fit, jwt, Attempt, Clock, Fit, Outgoing, LEAST_TITLE,
    STOP_TTL_SECS,
};
use crate::config::ApnsConfig;
use beckon::hub::{PushMessage, PushResult, Ring};
use beckon::protocol::{ApnsEnvironment, InviteeState, PushProvider};

/// A provider token is replaced once it is this old...
pub const REFRESH_AFTER: Duration = Duration::from_secs(40 * 60);
/// ...and never used past this age (a refresh that failed to sign).
pub const NEVER_PAST: Duration = Duration::from_secs(55 * 60);
/// Apple refuses new tokens more often than this.
pub const MIN_INTERVAL: Duration = Duration::from_secs(20 * 60);

/// The largest body of an alert push, and of a VoIP push (Apple's limits).
pub const MAX_ALERT_BODY: usize = 4096;
pub const MAX_VOIP_BODY: usize = 5120;
/// The longest topic configured or set on a target: `.voip` is added for
/// APNS_VOIP targets, and Apple takes 255 bytes.
pub const MAX_BASE_TOPIC: usize = 250;

/// `[push.apns]`, its key read and parsed.
pub struct ApnsSettings {
    pub team_id: String,
    pub key_id: String,
    key: EcdsaKeyPair,
    pub topic: Option<String>,
    pub production: Endpoint,
    pub sandbox: Endpoint,
}

impl ApnsSettings {
    /// Reads the key file and checks every value; errors name the setting.
    pub fn load(config: &ApnsConfig) -> Result<ApnsSettings, String> {
        let file = config.key_file.display();
        let pem = std::fs::read(&config.key_file)
            .map_err(|e| format!("push.apns.key_file {file}: {e}"))?;
        let der =
            jwt::pkcs8_from_pem(&pem).map_err(|e| format!("push.apns.key_file {file}: {e}"))?;
        let key = jwt::es256_key(&der).map_err(|e| format!("push.apns.key_file {file}: {e}"))?;
        let id_like = |name: &str, value: &str| {
            if value.is_empty()
                || value.len() > 64
                || !value.chars().all(|c| c.is_ascii_alphanumeric())
            {
                Err(format!(
                    "push.apns.{name}: '{value}' is not an Apple id (letters and digits, like 'ABC123DEFG')"
                ))
            } else {
                Ok(())
            }
        };
        id_like("team_id", &config.team_id)?;
        id_like("key_id", &config.key_id)?;
        if let Some(topic) = &config.topic {
            let ok = !topic.is_empty()
                && topic.len() <= MAX_BASE_TOPIC
                && topic
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
            if !ok {
                return Err(format!(
                    "push.apns.topic: '{topic}' is not a bundle id (1 to {MAX_BASE_TOPIC} letters, digits, '.' and '-')"
                ));
            }
            if topic.ends_with(".voip") {
                return Err(format!(
                    "push.apns.topic: '{topic}': give the bundle id without '.voip' (added for APNS_VOIP targets)"
                ));
            }
        }
        let production =
            Endpoint::parse(&config.endpoint).map_err(|e| format!("push.apns.endpoint: {e}"))?;
        let sandbox = Endpoint::parse(&config.sandbox_endpoint)
            .map_err(|e| format!("push.apns.sandbox_endpoint: {e}"))?;
        Ok(ApnsSettings {
            team_id: config.team_id.clone(),
            key_id: config.key_id.clone(),
            key,
            topic: config.topic.clone(),
            production,
            sandbox,
        })
    }
}

#[derive(Clone)]
struct ProviderToken {
    jwt: Arc<str>,
    minted_ms: u64,
}

pub struct Apns {
    settings: ApnsSettings,
    http: Arc<HttpClient>,
    clock: Arc<dyn Clock>,
    token: parking_lot::Mutex<Option<ProviderToken>>,
}

impl Apns {
    pub fn new(settings: ApnsSettings, http: Arc<HttpClient>, clock: Arc<dyn Clock>) -> Apns {
        Apns {
            settings,
            http,
            clock,
            token: parking_lot::Mutex::new(None),
        }
    }

    /// The provider token to send with, made anew when the current one is
    /// 40 minutes old. `rejected`: the token Apple just refused as expired
    /// or invalid, replaced at once unless another request already did.
    pub fn provider_token(&self, rejected: Option<&str>) -> Result<Arc<str>, String> {
        let now = self.clock.now_ms();
        let mut token = self.token.lock();
        if let Some(current) = token.as_ref() {
            let age = Duration::from_millis(now.saturating_sub(current.minted_ms));
            // Only the token Apple refused is replaced early: concurrent
            // requests refused with the same token make one new token.
            let refused = rejected.is_some_and(|r| *r == *current.jwt);
            const { assert!(REFRESH_AFTER.as_secs() >= MIN_INTERVAL.as_secs()) };
            const { assert!(REFRESH_AFTER.as_secs() < NEVER_PAST.as_secs()) };
            if !refused && age < REFRESH_AFTER {
                return Ok(current.jwt.clone());
            }
        }
        let minted = jwt::sign_es256(
            &self.settings.key,
            &json!({"alg": "ES256", "kid": self.settings.key_id}),
            &json!({"iss": self.settings.team_id, "iat": now / 1000}),
        );
        let jwt: Arc<str> = match (minted, token.as_ref()) {
            (Ok(jwt), _) => jwt.into(),
            // Signing failed: the old token is still good until 55 minutes.
            (Err(_), Some(current))
                if now.saturating_sub(current.minted_ms) < NEVER_PAST.as_millis() as u64
                    && rejected.is_none() =>
            {
                return Ok(current.jwt.clone())
            }
            (Err(e), _) => return Err(e),
        };
        *token = Some(ProviderToken {
            jwt: jwt.clone(),
            minted_ms: now,
        });
        Ok(jwt)
    }

    /// How old the current provider token is, if `jwt` is it.
    fn age_of(&self, jwt: &str) -> Option<Duration> {
        let now = self.clock.now_ms();
        let token = self.token.lock();
        let current = token.as_ref().filter(|t| *t.jwt == *jwt)?;
        Some(Duration::from_millis(now.saturating_sub(current.minted_ms)))
    }

    /// The request for `out`: None with a final answer when there is
    /// nothing to send (a VoIP target's stop without an alert token).
    pub fn request_parts(&self, out: &Outgoing) -> Result<ApnsRequest, Attempt> {
        let now_ms = self.clock.now_ms();
        let target = &out.target;
        let base_topic = match target.topic.as_deref().or(self.settings.topic.as_deref()) {
            Some(topic) => topic.to_owned(),
            None => {
                return Err(Attempt::failed(
                    "no APNs topic: the target has none and push.apns.topic is not set",
                ))
            }
        };
        let endpoint = match target.environment {
            ApnsEnvironment::Production => self.settings.production.clone(),
            ApnsEnvironment::Sandbox => self.settings.sandbox.clone(),
        };
        match &out.message {
            PushMessage::Ring(ring) => {
                let voip = target.provider == PushProvider::ApnsVoip;
                let limit = if voip { MAX_VOIP_BODY } else { MAX_ALERT_BODY };
                let body = Fit::ALL
                    .into_iter()
                    .map(|fit| ring_body(&out.message, ring, voip, now_ms, fit))
                    .find(|body| body.len() <= limit);
                let Some(body) = body else {
                    return Err(Attempt::failed(format!(
                        "payload too large: over {limit} bytes"
                    )));
                };
                Ok(ApnsRequest {
                    endpoint,
                    token: target.token.to_string(),
                    push_type: if voip { "voip" } else { "alert" },
                    topic: if voip {
                        format!("{base_topic}.voip")
                    } else {
                        base_topic
                    },
                    expiration: ring.deadline_ms / 1000,
                    collapse_id: ring.invitation_id.to_string(),
                    body,
                    alert_token: false,
                })
            }
            PushMessage::Stop {
                invitation_id,
                inviter,
                state,
            } => {
                // Never VoIP: iOS ends an app that gets a VoIP push without
                // reporting a new call. A VoIP target's stop goes to its
                // regular (alert) token.
                let (token, alert_token) = match target.provider {
                    PushProvider::ApnsVoip => match &target.alert_token {
                        Some(alert) => (alert.to_string(), true),
                        None => return Err(Attempt::failed("no alert token for a stop push")),
                    },
                    _ => (target.token.to_string(), false),
                };
                let body = json!({
                    "aps": {"alert": {"title": inviter.to_string(), "body": stop_text(*state)}},
                    "beckon": invitation_object(&out.message, now_ms),
                });
                Ok(ApnsRequest {
                    endpoint,
                    token,
                    push_type: "alert",
                    topic: base_topic,
                    expiration: now_ms / 1000 + STOP_TTL_SECS,
                    collapse_id: invitation_id.to_string(),
                    body: body.to_string(),
                    alert_token,
                })
            }
        }
    }

    pub async fn send(&self, out: &Outgoing) -> Attempt {
        let request = match self.request_parts(out) {
            Ok(request) => request,
            Err(done) => return done,
        };
        let mut rejected: Option<Arc<str>> = None;
        // The second round only after a refused provider token.
        for _ in 0..2 {
            let jwt = match self.provider_token(rejected.as_deref()) {
                Ok(jwt) => jwt,
                Err(e) => return Attempt::failed(format!("provider token: {e}")),
            };
            let http_request = match request.build(&jwt) {
                Ok(r) => r,
                Err(e) => return Attempt::failed(e),
            };
            let reply = match self
                .http
                .send_push(&request.endpoint, http_request, true)
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
            let reason = serde_json::from_slice::<serde_json::Value>(&reply.body)
                .ok()
                .and_then(|v| v.get("reason")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| format!("HTTP {}", reply.status.as_u16()));
            let status = reply.status;
            let now_ms = self.clock.now_ms();
            let attempt = match status {
                StatusCode::OK => Attempt::Done(PushResult::Sent),
                // A token younger than 20 minutes is not replaced: Apple
                // would refuse the new one too (TooManyProviderTokenUpdates).
                StatusCode::FORBIDDEN
                    if reason == "InvalidProviderToken"
                        && self.age_of(&jwt).is_some_and(|age| age < MIN_INTERVAL) =>
                {
                    Attempt::failed(format!(
                        "{reason}: the provider token is not replaced before it is {} minutes old (check push.apns.team_id, key_id and key_file)",
                        MIN_INTERVAL.as_secs() / 60
                    ))
                }
                StatusCode::FORBIDDEN
                    if rejected.is_none()
                        && matches!(
                            reason.as_str(),
                            "ExpiredProviderToken" | "InvalidProviderToken"
                        ) =>
                {
                    rejected = Some(jwt);
                    continue;
                }
                StatusCode::GONE => Attempt::token_invalid(reason),
                // The device token is bad. (DeviceTokenNotForTopic is not
                // about the token but the topic it is sent with: a
                // configuration error, a plain failure.)
                StatusCode::BAD_REQUEST if reason == "BadDeviceToken" => {
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
            // A stop to a VoIP target's alert token: a bad alert token must
            // not cost the device its VoIP target, which may be fine.
            if request.alert_token {
                if let Attempt::Done(PushResult::Failed {
                    reason,
                    token_invalid: true,
                }) = attempt
                {
                    return Attempt::failed(format!("alert_token: {reason}"));
                }
            }
            return attempt;
        }
        Attempt::failed("provider token refused twice")
    }
}

/// A ring's body, carrying as much as `fit` says.
fn ring_body(message: &PushMessage, ring: &Ring, voip: bool, now_ms: u64, fit: Fit) -> String {
    let beckon = invitation_object_fit(message, now_ms, fit);
    let aps = if voip {
        json!({})
    } else {
        let (title, text, _, _) = super::notification_fields(ring);
        let title = if title.is_empty() {
            ring.inviter.as_str()
        } else {
            title
        };
        let body = if text.is_empty() {
            "Incoming call"
        } else {
            text
        };
        let (title, body) = match fit {
            Fit::Least => (cut(title, LEAST_TITLE), cut(body, 2 * LEAST_TITLE)),
            _ => (title, body),
        };
        json!({"alert": {"title": title, "body": body}, "sound": "default"})
    };
    json!({"aps": aps, "beckon": beckon}).to_string()
}

fn stop_text(state: InviteeState) -> &'static str {
    match state {
        InviteeState::Accepted => "Answered",
        InviteeState::Rejected => "Declined",
        InviteeState::Cancelled => "Call cancelled",
        InviteeState::Timeout => "Missed call",
        _ => "Call ended",
    }
}

/// Everything of an APNs request but its provider token.
#[derive(Clone, Debug)]
pub struct ApnsRequest {
    pub endpoint: Endpoint,
    pub token: String,
    pub push_type: &'static str,
    pub topic: String,
    /// Unix seconds.
    pub expiration: u64,
    pub collapse_id: String,
    pub body: String,
    /// Sent to a VoIP target's alert token.
    pub alert_token: bool,
}

impl ApnsRequest {
    fn build(&self, jwt: &str) -> Result<Request<Full<Bytes>>, String> {
        let uri = self.endpoint.uri(&format!("/3/device/{}", self.token))?;
        Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("authorization", format!("bearer {jwt}"))
            .header("apns-push-type", self.push_type)
            .header("apns-topic", &self.topic)
            .header("apns-expiration", self.expiration.to_string())
            .header("apns-collapse-id", &self.collapse_id)
            .header("apns-priority", "10")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(self.body.clone())))
            .map_err(|e| format!("bad APNs request: {e}"))
    }
}
