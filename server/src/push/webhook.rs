//! A signed POST to the app's own backend, which pushes however it likes
//! (Standard Webhooks headers: `webhook-id`, `webhook-timestamp`,
//! `webhook-signature`; see [`crate::signing`]).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};
use serde_json::json;

use super::http::{Endpoint, HttpClient};
use super::{invitation_object, Attempt, Clock, Outgoing};
use crate::config::WebhookConfig;
use crate::signing::{self, WebhookSecret};
use beckon::hub::{PushMessage, PushResult};

/// `[push.webhook]`, the secret read and parsed.
pub struct WebhookSettings {
    pub endpoint: Endpoint,
    path: String,
    secrets: Vec<WebhookSecret>,
}

impl WebhookSettings {
    pub fn load(config: &WebhookConfig) -> Result<WebhookSettings, String> {
        let endpoint =
            Endpoint::parse(&config.url).map_err(|e| format!("push.webhook.url: {e}"))?;
        let secrets = signing::load_secrets(
            "push.webhook",
            config.secret.as_deref(),
            config.secret_file.as_deref(),
        )?;
        Ok(WebhookSettings {
            // The whole URL's path is the endpoint's base.
            path: String::new(),
            endpoint,
            secrets,
        })
    }
}

pub struct Webhook {
    settings: WebhookSettings,
    http: Arc<HttpClient>,
    clock: Arc<dyn Clock>,
}

impl Webhook {
    pub fn new(settings: WebhookSettings, http: Arc<HttpClient>, clock: Arc<dyn Clock>) -> Webhook {
        Webhook {
            settings,
            http,
            clock,
        }
    }

    /// The JSON body for `out`.
    pub fn body(&self, out: &Outgoing) -> serde_json::Value {
        let kind = match out.message {
            PushMessage::Ring(_) => "invitation.ring",
            PushMessage::Stop { .. } => "invitation.stop",
        };
        let mut body = json!({
            "type": kind,
            "user": out.user,
            "device": out.device,
            "provider": out.target.provider,
            "token": &*out.target.token,
            "invitation": invitation_object(&out.message, self.clock.now_ms()),
        });
        if let Some(alert) = &out.target.alert_token {
            body["alert_token"] = json!(&**alert);
        }
        body
    }

    pub async fn send(&self, out: &Outgoing) -> Attempt {
        let body = self.body(out).to_string();
        // Each attempt is signed afresh: the timestamp is the attempt's.
        let timestamp = self.clock.now_ms() / 1000;
        let signature = signing::sign(&self.settings.secrets, &out.id, timestamp, body.as_bytes());
        let uri = match self.settings.endpoint.uri(&self.settings.path) {
            Ok(uri) => uri,
            Err(e) => return Attempt::failed(e),
        };
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header("content-type", "application/json")
            .header("webhook-id", &out.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::from(body)));
        let request = match request {
            Ok(r) => r,
            Err(e) => return Attempt::failed(format!("bad webhook request: {e}")),
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
        let status = reply.status;
        let reason = format!("HTTP {}", status.as_u16());
        match status {
            s if s.is_success() => Attempt::Done(PushResult::Sent),
            StatusCode::GONE => Attempt::token_invalid(reason),
            StatusCode::TOO_MANY_REQUESTS => Attempt::Retry {
                reason,
                after: reply.retry_after(self.clock.now_ms()),
            },
            s if s.is_server_error() => Attempt::Retry {
                reason,
                after: reply.retry_after(self.clock.now_ms()),
            },
            _ => Attempt::failed(reason),
        }
    }
}
