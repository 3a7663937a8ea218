//! The push providers against local fakes (tests/common/push_fakes.rs): an
//! in-process hub whose outlet is beckon-server's push service, an inviter
//! session that receives the push results, and invitees that are offline
//! with a push target. Every request's headers and fields are checked by the
//! fakes; these tests check what was sent, the results and the error paths.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beckon::hub::{Hub, HubConfig, MemoryStore, PushMessage, Ring, Session};
use beckon::protocol::{
    ApnsEnvironment, CancelInvitation, DeviceId, InvitationId, InviteeState, InviteeStatus,
    Notification, Push, PushOutcome, PushProvider, PushTarget, SendInvitation, SessionSink, UserId,
};
use beckon_server::config::{ApnsConfig, FcmConfig, PushConfig, WebhookConfig};
use beckon_server::metrics::{ProviderLabel, PushFailureLabel, PushMetrics};
use beckon_server::push::apns::{Apns, ApnsSettings};
use beckon_server::push::fcm::{Fcm, FcmSettings};
use beckon_server::push::http::{Endpoint, HttpClient};
use beckon_server::push::{
    Attempt, Clock, ManualClock, Outgoing, PushService, SystemClock, Tuning,
};
use beckon_server::store::DurableGate;

mod common;
use common::push_fakes::*;

const WAIT: Duration = Duration::from_secs(10);

fn apns_token(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

#[derive(Default)]
struct Inbox(Mutex<Vec<Push>>);

impl SessionSink for Inbox {
    fn deliver(&self, push: Push) {
        self.0.lock().unwrap().push(push);
    }
}

/// (outcome, reason, provider) of a push result.
type PushReport = (PushOutcome, String, Option<PushProvider>);

struct Rig {
    hub: Arc<Hub>,
    service: Arc<PushService>,
    metrics: PushMetrics,
    alice: Arc<Session>,
    inbox: Arc<Inbox>,
}

fn tuning() -> Tuning {
    Tuning {
        backoff_start: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        stop_retries: 2,
        stop_retry_window: Duration::from_secs(60),
        request_timeout: Duration::from_millis(1500),
    }
}

impl Rig {
    fn new(config: PushConfig) -> Rig {
        Self::with(config, Arc::new(SystemClock), tuning())
    }

    /// A rig whose pushes run on `clock` and `tuning`.
    fn with(config: PushConfig, clock: Arc<dyn Clock>, tuning: Tuning) -> Rig {
        let runtime = tokio::runtime::Handle::current();
        let metrics = PushMetrics::default();
        let service = PushService::start_with(
            &config,
            DurableGate::default(),
            metrics.clone(),
            &runtime,
            clock,
            tuning,
        )
        .unwrap()
        .expect("a provider is configured");
        let (hub, _) = Hub::with_store(
            hub_config(),
            &runtime,
            Arc::new(MemoryStore),
            Duration::from_secs(30),
            beckon::hub::Outlets::push(service.clone()),
        )
        .unwrap();
        let inbox = Arc::new(Inbox::default());
        let alice = hub
            .login(user("alice"), device("a1"), "", inbox.clone())
            .unwrap();
        hub.sync(&alice);
        Rig {
            hub,
            service,
            metrics,
            alice,
            inbox,
        }
    }

    /// `name` logs in on `phone`, sets `target` and goes away (the target stays).
    fn offline_with(&self, name: &str, target: PushTarget) -> UserId {
        let who = user(name);
        let session = self
            .hub
            .login(who.clone(), device("phone"), "", Arc::new(Inbox::default()))
            .unwrap();
        self.hub.set_push_target(&session, target).unwrap();
        self.hub.logout(&session);
        who
    }

    fn send(&self, invitees: &[&UserId]) -> InvitationId {
        self.send_with(invitees, "{\"room\":\"r1\"}", "{\"k\":1}")
    }

    fn send_with(&self, invitees: &[&UserId], extended_data: &str, payload: &str) -> InvitationId {
        let mut request = SendInvitation::new(invitees.iter().map(|u| (*u).clone()).collect(), 30);
        request.extended_data = extended_data.into();
        request.notification = Some(Notification {
            title: "Alice".into(),
            message: "Video call".into(),
            resource_id: "res-1".into(),
            payload: payload.into(),
        });
        self.hub.send(&self.alice, request).unwrap().invitation_id
    }

    fn cancel(&self, invitation_id: &InvitationId) {
        let request = CancelInvitation {
            invitation_id: invitation_id.clone(),
            invitees: None,
            extended_data: "".into(),
        };
        self.hub.cancel(&self.alice, request).unwrap();
    }

    /// The push results the inviter got for `invitation`, waiting for `count`.
    async fn results(&self, invitation: &InvitationId, count: usize) -> Vec<PushReport> {
        let started = Instant::now();
        loop {
            let found: Vec<PushReport> = self
                .inbox
                .0
                .lock()
                .unwrap()
                .iter()
                .filter_map(|push| match push {
                    Push::InvitationPushResult {
                        invitation_id,
                        outcome,
                        reason,
                        provider,
                        ..
                    } if invitation_id == invitation => {
                        Some((*outcome, reason.to_string(), *provider))
                    }
                    _ => None,
                })
                .collect();
            if found.len() >= count {
                return found;
            }
            assert!(
                started.elapsed() < WAIT,
                "{} push results, not {count}",
                found.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn result(&self, invitation: &InvitationId) -> PushReport {
        self.results(invitation, 1).await.remove(0)
    }

    /// Waits until `count` pushes of `provider` failed with `reason`.
    async fn wait_failures(&self, provider: &'static str, reason: &str, count: u64) {
        let started = Instant::now();
        while self.failures(provider, reason) < count {
            assert!(
                started.elapsed() < WAIT,
                "{} failures '{reason}', not {count}",
                self.failures(provider, reason)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn failures(&self, provider: &'static str, reason: &str) -> u64 {
        self.metrics
            .failed
            .get_or_create(&PushFailureLabel {
                provider,
                reason: reason.to_owned(),
            })
            .get()
    }
}

/// The default hub, with room for the load run's open invitations.
fn hub_config() -> HubConfig {
    HubConfig {
        max_open_invitations: 100_000,
        ..HubConfig::default()
    }
}

fn user(name: &str) -> UserId {
    UserId::parse(name, "user").unwrap()
}

fn device(name: &str) -> DeviceId {
    DeviceId::parse(name, "device").unwrap()
}

/// Test keys, the production and sandbox APNs fakes, and a rig pushing
/// through them (APNs only).
fn apns_rig() -> (TestKeys, Fake, Fake, Rig) {
    let keys = TestKeys::new();
    let (apns, sandbox) = (
        Fake::start(Kind::Apns, &keys),
        Fake::start(Kind::Apns, &keys),
    );
    let rig = Rig::new(PushConfig {
        apns: Some(apns_config(&keys, &apns, &sandbox)),
        ..push_config(&keys)
    });
    (keys, apns, sandbox, rig)
}

fn push_config(keys: &TestKeys) -> PushConfig {
    PushConfig {
        extra_root_ca: Some(keys.ca_file.clone()),
        ..PushConfig::default()
    }
}

fn apns_config(keys: &TestKeys, production: &Fake, sandbox: &Fake) -> ApnsConfig {
    ApnsConfig {
        team_id: TEAM_ID.into(),
        key_id: KEY_ID.into(),
        key_file: keys.apns_key_file.clone(),
        topic: Some(TOPIC.into()),
        endpoint: production.url(),
        sandbox_endpoint: sandbox.url(),
    }
}

fn fcm_config(keys: &TestKeys, fake: &Fake) -> FcmConfig {
    keys.write_service_account(&format!("{}/token", fake.url()));
    FcmConfig {
        service_account_file: keys.service_account_file.clone(),
        endpoint: fake.url(),
        token_url: None,
    }
}

fn webhook_config(fake: &Fake) -> WebhookConfig {
    WebhookConfig {
        url: format!("{}/hooks/beckon", fake.url()),
        secret: Some(webhook_secret()),
        secret_file: None,
    }
}

fn voip_target(n: u8, alert: Option<u8>) -> PushTarget {
    PushTarget {
        alert_token: alert.map(|a| apns_token(a).into()),
        ..PushTarget::new(PushProvider::ApnsVoip, apns_token(n))
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_voip_ring_then_an_alert_stop_to_the_alert_token() {
    let (_keys, apns, sandbox, rig) = apns_rig();
    let bob = rig.offline_with("bob", voip_target(1, Some(2)));
    let invitation = rig.send(&[&bob]);
    assert_eq!(
        rig.result(&invitation).await,
        (
            PushOutcome::Sent,
            String::new(),
            Some(PushProvider::ApnsVoip)
        )
    );
    let ring = apns.wait_requests(1, WAIT).remove(0);
    assert_eq!(ring.path, format!("/3/device/{}", apns_token(1)));
    assert_eq!(ring.header("apns-push-type"), "voip");
    assert_eq!(ring.header("apns-topic"), format!("{TOPIC}.voip"));
    assert_eq!(ring.header("apns-collapse-id"), invitation.to_string());
    assert_eq!(ring.header("apns-priority"), "10");
    let expiration: u64 = ring.header("apns-expiration").parse().unwrap();
    assert!(
        (unix_now()..=unix_now() + 31).contains(&expiration),
        "{expiration}"
    );
    let body = ring.json();
    assert_eq!(body["aps"], serde_json::json!({}));
    let beckon = &body["beckon"];
    assert_eq!(beckon["type"], "ring");
    assert_eq!(beckon["invitation_id"], invitation.to_string());
    assert_eq!(beckon["inviter"], "alice");
    assert_eq!(beckon["invitees"][0]["user_id"], "bob");
    assert_eq!(beckon["extended_data"], "{\"room\":\"r1\"}");
    assert_eq!(beckon["payload"], "{\"k\":1}");
    assert_eq!(beckon["resource_id"], "res-1");
    let left = beckon["seconds_left"].as_u64().unwrap();
    assert!((1..=30).contains(&left), "{left}");

    rig.cancel(&invitation);
    let stop = apns.wait_requests(2, WAIT).remove(1);
    assert_eq!(
        stop.path,
        format!("/3/device/{}", apns_token(2)),
        "to the alert token"
    );
    assert_eq!(stop.header("apns-push-type"), "alert");
    assert_eq!(stop.header("apns-topic"), TOPIC);
    assert_eq!(stop.header("apns-collapse-id"), invitation.to_string());
    let expiration: u64 = stop.header("apns-expiration").parse().unwrap();
    assert!(
        (unix_now() + 3590..=unix_now() + 3600).contains(&expiration),
        "a stop is deliverable for an hour: {expiration}"
    );
    let body = stop.json();
    assert_eq!(body["beckon"]["type"], "stop");
    assert_eq!(body["beckon"]["state"], "cancelled");
    assert!(body["aps"]["alert"]["body"].is_string());
    assert!(sandbox.requests().is_empty());
    assert_eq!(apns.problems(), Vec::<String>::new());
    let sent = rig.metrics.sent.get_or_create(&ProviderLabel {
        provider: "apns_voip",
    });
    assert_eq!(sent.get(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_alert_rings_go_to_the_sandbox_of_sandbox_targets() {
    let (_keys, apns, sandbox, rig) = apns_rig();
    let target = PushTarget {
        topic: Some("com.example.other".into()),
        environment: ApnsEnvironment::Sandbox,
        ..PushTarget::new(PushProvider::Apns, apns_token(3))
    };
    let bob = rig.offline_with("bob", target);
    let invitation = rig.send(&[&bob]);
    assert_eq!(rig.result(&invitation).await.0, PushOutcome::Sent);
    let ring = sandbox.wait_requests(1, WAIT).remove(0);
    assert_eq!(ring.header("apns-push-type"), "alert");
    assert_eq!(ring.header("apns-topic"), "com.example.other");
    let alert = &ring.json()["aps"]["alert"];
    assert_eq!(alert["title"], "Alice");
    assert_eq!(alert["body"], "Video call");
    // A stop to an APNS target: the same token and topic, an alert.
    rig.cancel(&invitation);
    let stop = sandbox.wait_requests(2, WAIT).remove(1);
    assert_eq!(stop.path, ring.path);
    assert_eq!(stop.header("apns-topic"), "com.example.other");
    assert_eq!(stop.header("apns-push-type"), "alert");
    assert!(apns.requests().is_empty());
    assert_eq!(sandbox.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apns_error_answers() {
    let (_keys, apns, _sandbox, rig) = apns_rig();
    let bob = rig.offline_with("bob", voip_target(1, None));
    let mut expected_requests = 0;
    // Each case: the fake's answers, the result, and requests it took.
    let cases: Vec<(Vec<Answer>, PushOutcome, &str, usize, bool)> = vec![
        (
            vec![Answer::apns(400, "BadDeviceToken")],
            PushOutcome::Failed,
            "BadDeviceToken",
            1,
            true,
        ),
        (
            vec![Answer::apns_unregistered()],
            PushOutcome::Failed,
            "Unregistered",
            1,
            true,
        ),
        // The server's topic is wrong, not the token.
        (
            vec![Answer::apns(400, "DeviceTokenNotForTopic")],
            PushOutcome::Failed,
            "DeviceTokenNotForTopic",
            1,
            false,
        ),
        (
            vec![Answer::apns(429, "TooManyRequests")],
            PushOutcome::Sent,
            "",
            2,
            false,
        ),
        (
            vec![
                Answer::apns(500, "InternalServerError"),
                Answer::apns(503, "ServiceUnavailable"),
            ],
            PushOutcome::Sent,
            "",
            3,
            false,
        ),
        (
            vec![Answer::apns(413, "PayloadTooLarge")],
            PushOutcome::Failed,
            "PayloadTooLarge",
            1,
            false,
        ),
        (
            vec![Answer::DropConnection],
            PushOutcome::Sent,
            "",
            2,
            false,
        ),
        (
            vec![Answer::Slow(
                Duration::from_secs(3),
                Box::new(Answer::apns(200, "")),
            )],
            PushOutcome::Sent,
            "",
            2,
            false,
        ),
    ];
    for (answers, outcome, reason, requests, forgets) in cases {
        if rig.hub.push_targets(&bob).is_empty() {
            rig.offline_with("bob", voip_target(1, None));
        }
        apns.script(answers.clone());
        let invitation = rig.send(&[&bob]);
        let (got, why, _) = rig.result(&invitation).await;
        expected_requests += requests;
        let seen = apns.wait_requests(expected_requests, WAIT).len();
        assert_eq!((got, why.as_str()), (outcome, reason), "{answers:?}");
        assert_eq!(seen, expected_requests, "{answers:?}");
        assert_eq!(
            rig.hub.push_targets(&bob).is_empty(),
            forgets,
            "{answers:?}"
        );
        // No stop for these: cancel and wait for it, so that the next case
        // starts clean.
        rig.cancel(&invitation);
        if outcome == PushOutcome::Sent {
            // A VoIP target without an alert token: no stop request.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert_eq!(apns.requests().len(), expected_requests, "no stop was sent");
    assert!(rig.failures("apns_voip", "no alert token for a stop push") >= 1);
    let retries = rig.metrics.retries.get_or_create(&ProviderLabel {
        provider: "apns_voip",
    });
    assert_eq!(retries.get(), 5);
    assert_eq!(apns.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_provider_token_is_replaced_and_the_push_retried_once() {
    let (_keys, apns, _sandbox, rig) = apns_rig();
    let bob = rig.offline_with("bob", voip_target(1, None));
    let first = rig.send(&[&bob]);
    assert_eq!(rig.result(&first).await.0, PushOutcome::Sent);
    let jwt = apns.requests()[0].header("authorization").to_owned();
    apns.expire_jwt(jwt.trim_start_matches("bearer "));
    rig.cancel(&first);
    let second = rig.send(&[&bob]);
    assert_eq!(rig.result(&second).await.0, PushOutcome::Sent);
    let requests = apns.wait_requests(3, WAIT);
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[1].header("authorization"), jwt, "refused");
    assert_ne!(requests[2].header("authorization"), jwt, "a new token");
    assert_eq!(apns.problems(), Vec::<String>::new());
}

fn ring_message(invitation: &str, seconds: u64, now_ms: u64) -> PushMessage {
    PushMessage::Ring(Arc::new(Ring {
        invitation_id: InvitationId::parse(invitation, "invitation_id").unwrap(),
        inviter: user("alice"),
        invitees: Arc::from(vec![InviteeStatus {
            user_id: user("bob"),
            state: InviteeState::Inviting,
        }]),
        extended_data: "".into(),
        notification: None,
        deadline_ms: now_ms + seconds * 1000,
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_tokens_are_refreshed_after_40_minutes_by_the_injected_clock() {
    let keys = TestKeys::new();
    let (apns, sandbox) = (
        Fake::start(Kind::Apns, &keys),
        Fake::start(Kind::Apns, &keys),
    );
    let start_ms = 1_700_000_000_000;
    let clock = ManualClock::at(start_ms);
    let settings = ApnsSettings::load(&apns_config(&keys, &apns, &sandbox)).unwrap();
    let http = Arc::new(HttpClient::new(Some(&keys.ca_file), "push").unwrap());
    let provider = Apns::new(settings, http, Arc::new(clock.clone()));
    let minute = Duration::from_secs(60);
    let iat = |jwt: &str| -> u64 {
        let claims = jwt.split('.').nth(1).unwrap();
        use base64::Engine;
        let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&claims).unwrap()["iat"]
            .as_u64()
            .unwrap()
    };
    let first = provider.provider_token(None).unwrap();
    assert_eq!(iat(&first), start_ms / 1000);
    clock.advance(39 * minute);
    assert_eq!(
        provider.provider_token(None).unwrap(),
        first,
        "39 minutes: kept"
    );
    clock.advance(minute);
    let second = provider.provider_token(None).unwrap();
    assert_ne!(second, first, "40 minutes: replaced");
    assert_eq!(iat(&second), start_ms / 1000 + 40 * 60);
    clock.advance(minute);
    assert_eq!(
        provider.provider_token(None).unwrap(),
        second,
        "1 minute old"
    );
    // Refused by Apple: replaced at once, but only the refused one (a
    // late refusal of the first token changes nothing).
    assert_eq!(provider.provider_token(Some(&first)).unwrap(), second);
    let third = provider.provider_token(Some(&second)).unwrap();
    assert_ne!(third, second);
    // Never past 55 minutes: at 54 minutes a token is long replaced.
    clock.advance(54 * minute);
    assert_ne!(provider.provider_token(None).unwrap(), third);

    // Through a send: the request carries the clock's token.
    let out = Outgoing::new(
        user("bob"),
        device("phone"),
        voip_target(1, None),
        ring_message("0123456789abcdef0123456789abcdef", 30, clock.now_ms()),
    );
    assert_eq!(
        provider.send(&out).await,
        Attempt::Done(beckon::hub::PushResult::Sent)
    );
    let sent = apns.wait_requests(1, WAIT).remove(0);
    let jwt = sent.header("authorization").trim_start_matches("bearer ");
    assert_eq!(iat(jwt), (start_ms / 1000) + 95 * 60);
    assert_eq!(apns.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_rings_stops_and_errors() {
    let keys = TestKeys::new();
    let fcm = Fake::start(Kind::Fcm, &keys);
    let rig = Rig::new(PushConfig {
        fcm: Some(fcm_config(&keys, &fcm)),
        ..push_config(&keys)
    });
    let target = PushTarget::new(PushProvider::Fcm, "fcm-token-1");
    let bob = rig.offline_with("bob", target.clone());
    let invitation = rig.send(&[&bob]);
    assert_eq!(
        rig.result(&invitation).await,
        (PushOutcome::Sent, String::new(), Some(PushProvider::Fcm))
    );
    let ring = fcm.wait_requests(1, WAIT).remove(0);
    let message = &ring.json()["message"];
    assert_eq!(message["token"], "fcm-token-1");
    let data = &message["data"];
    assert_eq!(data["type"], "ring");
    assert_eq!(data["invitation_id"], invitation.to_string());
    assert_eq!(data["inviter"], "alice");
    assert_eq!(data["title"], "Alice");
    assert_eq!(data["message"], "Video call");
    assert_eq!(data["payload"], "{\"k\":1}");
    assert_eq!(data["resource_id"], "res-1");
    assert_eq!(data["extended_data"], "{\"room\":\"r1\"}");
    let invitees: serde_json::Value =
        serde_json::from_str(data["invitees"].as_str().unwrap()).unwrap();
    assert_eq!(invitees[0]["user_id"], "bob");
    let left: u64 = data["seconds_left"].as_str().unwrap().parse().unwrap();
    assert_eq!(message["android"]["ttl"], format!("{left}s"));
    assert_eq!(message["android"]["priority"], "HIGH");
    rig.cancel(&invitation);
    let stop = fcm.wait_requests(2, WAIT).remove(1);
    let data = &stop.json()["message"]["data"];
    assert_eq!(
        (data["type"].as_str(), data["state"].as_str()),
        (Some("stop"), Some("cancelled"))
    );
    assert_eq!(stop.json()["message"]["android"]["ttl"], "3600s");
    assert_eq!(fcm.token_requests().len(), 1, "the access token is cached");

    // 401: a new access token, the push retried once.
    fcm.revoke_access_tokens();
    let second = rig.send(&[&bob]);
    assert_eq!(rig.result(&second).await.0, PushOutcome::Sent);
    assert_eq!(fcm.token_requests().len(), 2);
    let before = fcm.requests().len();
    rig.cancel(&second);
    fcm.wait_requests(before + 1, WAIT);

    let invalid = "The registration token is not a valid FCM registration token";
    let cases: Vec<(Answer, PushOutcome, &str, bool)> = vec![
        (
            Answer::fcm(
                404,
                "NOT_FOUND",
                "UNREGISTERED",
                "Requested entity was not found.",
            ),
            PushOutcome::Failed,
            "UNREGISTERED",
            true,
        ),
        // A 404 that is not about the token (a wrong project, say).
        (
            Answer::status(
                404,
                serde_json::json!({"error": {"code": 404, "status": "NOT_FOUND",
                    "message": "Requested entity was not found."}})
                .to_string(),
            ),
            PushOutcome::Failed,
            "NOT_FOUND",
            false,
        ),
        (
            Answer::fcm(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", invalid),
            PushOutcome::Failed,
            "INVALID_ARGUMENT",
            true,
        ),
        (
            Answer::fcm(
                400,
                "INVALID_ARGUMENT",
                "INVALID_ARGUMENT",
                "Invalid value at 'message.data'",
            ),
            PushOutcome::Failed,
            "INVALID_ARGUMENT",
            false,
        ),
        (
            Answer::fcm(503, "UNAVAILABLE", "UNAVAILABLE", "try later"),
            PushOutcome::Sent,
            "",
            false,
        ),
        (
            Answer::fcm(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "quota").retry_after(0),
            PushOutcome::Sent,
            "",
            false,
        ),
        (
            Answer::fcm(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "mismatch"),
            PushOutcome::Failed,
            "SENDER_ID_MISMATCH",
            false,
        ),
    ];
    for (answer, outcome, reason, forgets) in cases {
        if rig.hub.push_targets(&bob).is_empty() {
            rig.offline_with("bob", target.clone());
        }
        fcm.script([answer.clone()]);
        let invitation = rig.send(&[&bob]);
        let (got, why, _) = rig.result(&invitation).await;
        assert_eq!((got, why.as_str()), (outcome, reason), "{answer:?}");
        assert_eq!(rig.hub.push_targets(&bob).is_empty(), forgets, "{answer:?}");
        // The stop goes to the device pushed, whatever the ring's fate:
        // it must not take the next case's answer.
        let before = fcm.requests().len();
        rig.cancel(&invitation);
        fcm.wait_requests(before + 1, WAIT);
    }
    assert_eq!(fcm.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fcm_access_tokens_are_cached_until_5_minutes_before_they_expire() {
    let keys = TestKeys::new();
    let fake = Fake::start(Kind::Fcm, &keys);
    let clock = ManualClock::at(1_700_000_000_000);
    let settings = FcmSettings::load(&fcm_config(&keys, &fake)).unwrap();
    let http = Arc::new(HttpClient::new(Some(&keys.ca_file), "push").unwrap());
    let provider = Fcm::new(settings, http, Arc::new(clock.clone()));
    let send = || {
        let now = clock.now_ms();
        Outgoing::new(
            user("bob"),
            device("phone"),
            PushTarget::new(PushProvider::Fcm, "t1"),
            ring_message("fedcba9876543210fedcba9876543210", 30, now),
        )
    };
    let sent = Attempt::Done(beckon::hub::PushResult::Sent);
    assert_eq!(provider.send(&send()).await, sent);
    // The fake's tokens last 3599 s: used until 3299 s.
    clock.advance(Duration::from_secs(3298));
    assert_eq!(provider.send(&send()).await, sent);
    assert_eq!(fake.token_requests().len(), 1);
    clock.advance(Duration::from_secs(2));
    assert_eq!(provider.send(&send()).await, sent);
    assert_eq!(fake.token_requests().len(), 2);
    // An OAuth refusal is final, a 5xx is retried.
    fake.script_token([Answer::status(400, r#"{"error":"invalid_grant"}"#)]);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(
        provider.send(&send()).await,
        Attempt::failed("oauth: invalid_grant")
    );
    fake.script_token([Answer::status(503, "")]);
    assert!(matches!(
        provider.send(&send()).await,
        Attempt::Retry { .. }
    ));
    assert_eq!(fake.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_and_keep_their_id_across_retries() {
    let keys = TestKeys::new();
    let hook = Fake::start(Kind::Webhook, &keys);
    let rig = Rig::new(PushConfig {
        webhook: Some(webhook_config(&hook)),
        ..push_config(&keys)
    });
    let target = PushTarget::new(PushProvider::Webhook, "device-7");
    let bob = rig.offline_with("bob", target.clone());
    hook.script([Answer::status(500, "")]);
    let invitation = rig.send(&[&bob]);
    assert_eq!(
        rig.result(&invitation).await,
        (
            PushOutcome::Sent,
            String::new(),
            Some(PushProvider::Webhook)
        )
    );
    let requests = hook.wait_requests(2, WAIT);
    assert_eq!(requests[0].path, "/hooks/beckon");
    assert_eq!(
        requests[0].header("webhook-id"),
        requests[1].header("webhook-id")
    );
    let body = requests[1].json();
    assert_eq!(body["type"], "invitation.ring");
    assert_eq!(body["user"], "bob");
    assert_eq!(body["device"], "phone");
    assert_eq!(body["token"], "device-7");
    assert_eq!(body["invitation"]["invitation_id"], invitation.to_string());
    assert_eq!(body["invitation"]["title"], "Alice");
    rig.cancel(&invitation);
    let stop = hook.wait_requests(3, WAIT).remove(2);
    assert_eq!(stop.json()["type"], "invitation.stop");
    assert_eq!(stop.json()["invitation"]["state"], "cancelled");
    assert_ne!(stop.header("webhook-id"), requests[0].header("webhook-id"));
    assert_eq!(stop.json()["invitation"]["inviter"], "alice");

    for (answer, reason, forgets) in [
        (Answer::status(410, ""), "HTTP 410", true),
        (Answer::status(400, ""), "HTTP 400", false),
    ] {
        if rig.hub.push_targets(&bob).is_empty() {
            rig.offline_with("bob", target.clone());
        }
        hook.script([answer]);
        let invitation = rig.send(&[&bob]);
        let (outcome, why, _) = rig.result(&invitation).await;
        assert_eq!((outcome, why.as_str()), (PushOutcome::Failed, reason));
        assert_eq!(rig.hub.push_targets(&bob).is_empty(), forgets);
        let before = hook.requests().len();
        rig.cancel(&invitation);
        hook.wait_requests(before + 1, WAIT);
    }
    assert_eq!(hook.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_once_the_invitee_no_longer_rings() {
    let (_keys, apns, _sandbox, rig) = apns_rig();
    let bob = rig.offline_with("bob", voip_target(1, None));
    apns.outage(Some(Answer::apns(500, "InternalServerError")));
    let invitation = rig.send(&[&bob]);
    apns.wait_requests(3, WAIT);
    rig.cancel(&invitation);
    let (outcome, reason, _) = rig.result(&invitation).await;
    assert_eq!(
        (outcome, reason.as_str()),
        (
            PushOutcome::Failed,
            "no longer ringing: after InternalServerError"
        )
    );
    // Once reported, nothing more is tried (a later retry would be a bug).
    let after = apns.requests().len();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(apns.requests().len(), after);
    assert_eq!(apns.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_fails_pushes_at_once() {
    let keys = TestKeys::new();
    let hook = Fake::start(Kind::Webhook, &keys);
    let rig = Rig::new(PushConfig {
        queue: 1,
        concurrency: 1,
        webhook: Some(webhook_config(&hook)),
        ..push_config(&keys)
    });
    hook.outage(Some(Answer::Slow(
        Duration::from_millis(300),
        Box::new(Answer::status(200, "")),
    )));
    let names = ["u1", "u2", "u3", "u4", "u5", "u6"];
    let users: Vec<UserId> = names
        .iter()
        .map(|n| rig.offline_with(n, PushTarget::new(PushProvider::Webhook, format!("d-{n}"))))
        .collect();
    let invitation = rig.send(&users.iter().collect::<Vec<_>>());
    let results = rig.results(&invitation, names.len()).await;
    let full = results
        .iter()
        .filter(|(outcome, reason, _)| *outcome == PushOutcome::Failed && reason == "queue full")
        .count();
    let sent = results.iter().filter(|r| r.0 == PushOutcome::Sent).count();
    // One in flight, one waiting for it, one queued: at most three go.
    assert!(full >= 3, "{results:?}");
    assert_eq!(full + sent, names.len(), "{results:?}");
    let dropped = rig.metrics.dropped.get_or_create(&ProviderLabel {
        provider: "webhook",
    });
    assert_eq!(dropped.get(), full as u64);
    assert_eq!(rig.failures("webhook", "queue full"), full as u64);
}

fn refused(config: PushConfig) -> String {
    let runtime = tokio::runtime::Handle::current();
    match PushService::start(
        &config,
        DurableGate::default(),
        PushMetrics::default(),
        &runtime,
    ) {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configurations_are_refused_naming_the_file_and_the_cause() {
    let keys = TestKeys::new();
    let fake = Fake::start(Kind::Apns, &keys);
    let base = push_config(&keys);
    let apns = apns_config(&keys, &fake, &fake);
    let missing = keys.dir.join("missing.p8");
    let not_pem = keys.dir.join("not-pem.p8");
    std::fs::write(&not_pem, "hello").unwrap();
    let rsa = keys.dir.join("rsa.p8");
    std::fs::write(&rsa, TEST_ONLY_RSA_KEY).unwrap();
    let with_apns = |apns: ApnsConfig| PushConfig {
        apns: Some(apns),
        ..base.clone()
    };
    let cases = [
        (
            with_apns(ApnsConfig {
                key_file: missing.clone(),
                ..apns.clone()
            }),
            vec!["push.apns.key_file", "missing.p8", "No such file"],
        ),
        (
            with_apns(ApnsConfig {
                key_file: not_pem.clone(),
                ..apns.clone()
            }),
            vec!["push.apns.key_file", "not-pem.p8", "no PEM private key"],
        ),
        (
            with_apns(ApnsConfig {
                key_file: rsa.clone(),
                ..apns.clone()
            }),
            vec!["push.apns.key_file", "rsa.p8", "not an EC P-256 key"],
        ),
        (
            with_apns(ApnsConfig {
                endpoint: "http://push.example.com".into(),
                ..apns.clone()
            }),
            vec!["push.apns.endpoint", "plain http"],
        ),
        (
            with_apns(ApnsConfig {
                sandbox_endpoint: "nonsense".into(),
                ..apns.clone()
            }),
            vec!["push.apns.sandbox_endpoint"],
        ),
        (
            with_apns(ApnsConfig {
                team_id: "".into(),
                ..apns.clone()
            }),
            vec!["push.apns.team_id"],
        ),
        // `.voip` is the server's to add (APNS_VOIP), and Apple's topics
        // are at most 255 bytes with it.
        (
            with_apns(ApnsConfig {
                topic: Some(format!("{TOPIC}.voip")),
                ..apns.clone()
            }),
            vec!["push.apns.topic", "without '.voip'"],
        ),
        (
            with_apns(ApnsConfig {
                topic: Some("a".repeat(251)),
                ..apns.clone()
            }),
            vec!["push.apns.topic", "1 to 250"],
        ),
        (
            PushConfig {
                extra_root_ca: Some(missing.clone()),
                ..with_apns(apns.clone())
            },
            vec!["push.extra_root_ca", "missing.p8"],
        ),
        (
            PushConfig {
                extra_root_ca: Some(not_pem.clone()),
                ..with_apns(apns.clone())
            },
            vec!["push.extra_root_ca", "no certificate"],
        ),
    ];
    for (config, words) in cases {
        let message = refused(config);
        for word in words {
            assert!(message.contains(word), "'{word}' not in: {message}");
        }
    }

    // FCM: the service account file.
    let account = keys.dir.join("account.json");
    let fcm = |file: &std::path::Path| PushConfig {
        fcm: Some(FcmConfig {
            service_account_file: file.to_owned(),
            endpoint: fake.url(),
            token_url: None,
        }),
        ..base.clone()
    };
    let message = refused(fcm(&missing));
    assert!(
        message.contains("push.fcm.service_account_file") && message.contains("missing.p8"),
        "{message}"
    );
    std::fs::write(&account, "{}").unwrap();
    assert!(refused(fcm(&account)).contains("not a service account key"));
    let mut json = serde_json::json!({
        "project_id": PROJECT, "client_email": CLIENT_EMAIL,
        "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        "token_uri": "https://localhost:1/token",
    });
    std::fs::write(&account, json.to_string()).unwrap();
    let message = refused(fcm(&account));
    assert!(
        message.contains("account.json") && message.contains("private_key"),
        "{message}"
    );
    json["private_key"] = TEST_ONLY_RSA_KEY.into();
    json["token_uri"] = "http://oauth.example.com/token".into();
    std::fs::write(&account, json.to_string()).unwrap();
    let message = refused(fcm(&account));
    assert!(
        message.contains("token_uri") && message.contains("plain http"),
        "{message}"
    );

    // Webhook: the URL and the secret.
    let hook = |url: &str, secret: Option<&str>, file: Option<&std::path::Path>| PushConfig {
        webhook: Some(WebhookConfig {
            url: url.to_owned(),
            secret: secret.map(str::to_owned),
            secret_file: file.map(|f| f.to_owned()),
        }),
        ..base.clone()
    };
    let good_url = "https://localhost:9/hook";
    let secret = webhook_secret();
    assert!(
        refused(hook("http://hooks.example.com/", Some(&secret), None))
            .contains("push.webhook.url")
    );
    assert!(refused(hook(good_url, None, None)).contains("secret"));
    let message = refused(hook(good_url, Some("whsec_short"), None));
    assert!(message.contains("push.webhook.secret"), "{message}");
    assert!(
        !message.contains("short"),
        "the secret is never shown: {message}"
    );
    assert!(refused(hook(good_url, None, Some(&missing))).contains("missing.p8"));
    assert!(refused(hook(good_url, Some(&secret), Some(&missing))).contains("not both"));
}

/// The load figure of bench/push.sh (ignored: run it with `--ignored
/// --nocapture`, in release). Pushes per second through the APNs fake, then
/// the ring latency of online invitees (send to the invitee's session) with
/// a slow provider taking pushes for offline invitees at the same time,
/// side by side with a hub without push. Bounded: PUSH_LOAD_N sends each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a load figure: bench/push.sh"]
async fn push_load() {
    let n: usize = std::env::var("PUSH_LOAD_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
        .clamp(10, 100_000);
    let keys = TestKeys::new();
    let (apns, sandbox) = (
        Fake::start(Kind::Apns, &keys),
        Fake::start(Kind::Apns, &keys),
    );
    let config = PushConfig {
        apns: Some(apns_config(&keys, &apns, &sandbox)),
        ..push_config(&keys)
    };

    // Pushes per second: n invitations to n offline invitees, until every
    // result is back.
    let rig = Rig::new(config.clone());
    let invitees: Vec<UserId> = (0..n)
        .map(|i| rig.offline_with(&format!("off{i}"), voip_target(1, None)))
        .collect();
    let started = Instant::now();
    let mut sent = Vec::with_capacity(n);
    for invitee in &invitees {
        sent.push(rig.send(&[invitee]));
    }
    for invitation in &sent {
        rig.results(invitation, 1).await;
    }
    let took = started.elapsed();
    println!(
        "pushes: {n} in {:.2} s = {:.0} pushes/s (APNs fake, HTTP/2 over TLS, one connection)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );

    // Ring latency of online invitees, slow provider vs no push.
    apns.outage(Some(Answer::Slow(
        Duration::from_secs(2),
        Box::new(Answer::status(200, "")),
    )));
    let with_push = ring_latencies(Some(config), n).await;
    let without = ring_latencies(None, n).await;
    let show = |name: &str, mut l: Vec<Duration>| {
        l.sort();
        let at = |q: f64| l[((l.len() - 1) as f64 * q) as usize];
        println!(
            "ring latency, {name}: p50 {:?} p99 {:?} (n={})",
            at(0.5),
            at(0.99),
            l.len()
        );
    };
    show("slow provider on (2 s per push)", with_push);
    show("push off", without);
}

/// Send-to-delivery times of online invitees; with push, every send also
/// has an offline invitee with a target.
async fn ring_latencies(config: Option<PushConfig>, n: usize) -> Vec<Duration> {
    #[derive(Default)]
    struct Clocked(Mutex<Vec<Instant>>);
    impl SessionSink for Clocked {
        fn deliver(&self, push: Push) {
            if matches!(push, Push::InvitationReceived { .. }) {
                self.0.lock().unwrap().push(Instant::now());
            }
        }
    }
    let runtime = tokio::runtime::Handle::current();
    let (hub, offline, _service) = match config {
        Some(config) => {
            let rig = Rig::new(config);
            let offline = rig.offline_with("offline", voip_target(1, None));
            (rig.hub.clone(), Some(offline), Some(rig))
        }
        None => (Hub::new(hub_config(), &runtime).unwrap(), None, None),
    };
    let inviter = hub
        .login(user("caller"), device("c1"), "", Arc::new(Inbox::default()))
        .unwrap();
    let sink = Arc::new(Clocked::default());
    let online = hub
        .login(user("online"), device("o1"), "", sink.clone())
        .unwrap();
    hub.sync(&online);
    let mut latencies = Vec::with_capacity(n);
    for _ in 0..n {
        let mut invitees = vec![user("online")];
        invitees.extend(offline.clone());
        let before = Instant::now();
        let outcome = hub
            .send(&inviter, SendInvitation::new(invitees, 30))
            .unwrap();
        let delivered = sink.0.lock().unwrap().pop().expect("rang at once");
        latencies.push(delivered.saturating_duration_since(before));
        let cancel = CancelInvitation {
            invitation_id: outcome.invitation_id,
            invitees: None,
            extended_data: "".into(),
        };
        hub.cancel(&inviter, cancel).unwrap();
    }
    latencies
}

/// A rig on a manual clock started at the real time (the hub's deadlines
/// are real), pushing through `config`.
fn manual_rig(config: PushConfig, tuning: Tuning) -> (ManualClock, Rig) {
    let clock = ManualClock::at(SystemClock.now_ms());
    let rig = Rig::with(config, Arc::new(clock.clone()), tuning);
    (clock, rig)
}

/// Waits until a push waits to retry on `clock`: its wake time, and the
/// wait (from the clock's now).
async fn retry_wait(clock: &ManualClock) -> (u64, u64) {
    let started = Instant::now();
    loop {
        if let Some(wake) = clock.sleeping().first() {
            return (*wake, wake.saturating_sub(clock.now_ms()));
        }
        assert!(started.elapsed() < WAIT, "no push waits to retry");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn webhook_target(name: &str) -> PushTarget {
    PushTarget::new(PushProvider::Webhook, format!("d-{name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_ended_during_its_retry_wait_is_not_sent_again() {
    let keys = TestKeys::new();
    let (apns, sandbox) = (
        Fake::start(Kind::Apns, &keys),
        Fake::start(Kind::Apns, &keys),
    );
    let config = PushConfig {
        apns: Some(apns_config(&keys, &apns, &sandbox)),
        ..push_config(&keys)
    };
    let (clock, rig) = manual_rig(config, tuning());
    let bob = rig.offline_with("bob", voip_target(1, Some(2)));
    apns.script([Answer::apns(503, "ServiceUnavailable")]);
    let invitation = rig.send(&[&bob]);
    apns.wait_requests(1, WAIT);
    let (wake, _) = retry_wait(&clock).await;
    rig.cancel(&invitation);
    // The stop queued behind the ring wakes it: it rings no more and ends.
    assert_eq!(
        rig.result(&invitation).await,
        (
            PushOutcome::Failed,
            "no longer ringing: after ServiceUnavailable".to_owned(),
            Some(PushProvider::ApnsVoip)
        )
    );
    let requests = apns.wait_requests(2, WAIT);
    assert_eq!(requests[1].path, format!("/3/device/{}", apns_token(2)));
    assert_eq!(requests[1].json()["beckon"]["type"], "stop");
    // Nothing more, even once the ring's wait would have been over.
    clock.set(wake + 60_000);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(apns.requests().len(), 2);
    assert_eq!(apns.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ring_still_queued_when_its_invitee_stops_ringing_is_never_sent() {
    let keys = TestKeys::new();
    let hook = Fake::start(Kind::Webhook, &keys);
    let rig = Rig::new(PushConfig {
        concurrency: 1,
        webhook: Some(webhook_config(&hook)),
        ..push_config(&keys)
    });
    let carol = rig.offline_with("carol", webhook_target("carol"));
    let bob = rig.offline_with("bob", webhook_target("bob"));
    hook.script([Answer::Hold(Box::new(Answer::status(200, "")))]);
    let first = rig.send(&[&carol]);
    // Carol's ring holds the one slot; Bob's waits in the queue, then his
    // call is cancelled.
    hook.wait_requests(1, WAIT);
    let second = rig.send(&[&bob]);
    rig.cancel(&second);
    hook.release();
    assert_eq!(rig.result(&first).await.0, PushOutcome::Sent);
    assert_eq!(
        rig.result(&second).await,
        (
            PushOutcome::Failed,
            "no longer ringing".to_owned(),
            Some(PushProvider::Webhook)
        )
    );
    rig.cancel(&first);
    let requests = hook.wait_requests(3, WAIT);
    let sent: Vec<(String, String)> = requests
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["user"].as_str().unwrap_or("").to_owned(),
                body["type"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        sent,
        [
            ("carol".to_owned(), "invitation.ring".to_owned()),
            ("bob".to_owned(), "invitation.stop".to_owned()),
            ("carol".to_owned(), "invitation.stop".to_owned()),
        ]
    );
    assert_eq!(hook.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_waiting_to_retry_holds_no_slot() {
    let keys = TestKeys::new();
    let hook = Fake::start(Kind::Webhook, &keys);
    let config = PushConfig {
        concurrency: 1,
        webhook: Some(webhook_config(&hook)),
        ..push_config(&keys)
    };
    let (clock, rig) = manual_rig(config, tuning());
    let bob = rig.offline_with("bob", webhook_target("bob"));
    let carol = rig.offline_with("carol", webhook_target("carol"));
    hook.script([Answer::status(503, "")]);
    let first = rig.send(&[&bob]);
    // Bob's ring waits to retry (the clock does not move) ...
    retry_wait(&clock).await;
    // ... and Carol's goes meanwhile through the one slot.
    let second = rig.send(&[&carol]);
    assert_eq!(rig.result(&second).await.0, PushOutcome::Sent);
    assert!(rig.results(&first, 0).await.is_empty());
    assert_eq!(hook.problems(), Vec::<String>::new());
}

/// `at` (Unix ms) as an HTTP-date (IMF-fixdate).
fn http_date(at_ms: u64) -> String {
    let secs = at_ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil from days (Howard Hinnant's algorithm), days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months[(month - 1) as usize],
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[test]
fn http_dates_are_formatted_as_imf_fixdate() {
    assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_eq!(
        http_date(1_700_000_000_000),
        "Tue, 14 Nov 2023 22:13:20 GMT"
    );
    assert_eq!(http_date(951_782_400_000), "Tue, 29 Feb 2000 00:00:00 GMT");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_waits_for_the_longer_of_retry_after_and_the_backoff() {
    let keys = TestKeys::new();
    let hook = Fake::start(Kind::Webhook, &keys);
    let config = PushConfig {
        webhook: Some(webhook_config(&hook)),
        ..push_config(&keys)
    };
    let backoff = Duration::from_secs(1);
    let tuning = Tuning {
        backoff_start: backoff,
        backoff_max: Duration::from_secs(4),
        ..tuning()
    };
    let (clock, rig) = manual_rig(config, tuning);
    let bob = rig.offline_with("bob", webhook_target("bob"));
    // (answer, the shortest wait in ms): the jitter adds up to half the
    // backoff. `None`: Retry-After is an HTTP-date 9 s on.
    let cases = [
        (Some(Answer::status(429, "").retry_after(0)), 1000),
        (Some(Answer::status(503, "").retry_after(7)), 7000),
        (None, 9000),
        (Some(Answer::status(503, "")), 1000),
    ];
    for (i, (answer, least)) in cases.into_iter().enumerate() {
        let answer = answer.unwrap_or_else(|| {
            // On a whole second, so that the date names the wait exactly.
            clock.set(clock.now_ms().div_ceil(1000) * 1000);
            let date = http_date(clock.now_ms() + 9000);
            Answer::status(503, "").with_header("retry-after", &date)
        });
        hook.script([answer.clone()]);
        let invitation = rig.send(&[&bob]);
        // Each case: the ring, its retry, and the stop.
        hook.wait_requests(3 * i + 1, WAIT);
        let (wake, wait) = retry_wait(&clock).await;
        assert!(
            (least..=least + 500).contains(&wait),
            "{answer:?}: waits {wait} ms"
        );
        clock.set(wake);
        assert_eq!(rig.result(&invitation).await.0, PushOutcome::Sent);
        assert_eq!(hook.requests().len(), 3 * i + 2, "{answer:?}");
        rig.cancel(&invitation);
        hook.wait_requests(3 * i + 3, WAIT);
    }
    assert_eq!(hook.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_push_is_retried_at_most_stop_retries_times_and_within_its_window() {
    let keys = TestKeys::new();
    let hook = Fake::start(Kind::Webhook, &keys);
    let rig = Rig::new(PushConfig {
        webhook: Some(webhook_config(&hook)),
        ..push_config(&keys)
    });
    let bob = rig.offline_with("bob", webhook_target("bob"));
    let first = rig.send(&[&bob]);
    assert_eq!(rig.result(&first).await.0, PushOutcome::Sent);
    hook.outage(Some(Answer::status(503, "")));
    rig.cancel(&first);
    rig.wait_failures("webhook", "HTTP 503", 1).await;
    // The ring, then the stop and its two retries (tuning().stop_retries).
    assert_eq!(hook.requests().len(), 4);

    // A Retry-After past the stop's window (a minute here) ends it at once.
    hook.outage(None);
    let second = rig.send(&[&bob]);
    assert_eq!(rig.result(&second).await.0, PushOutcome::Sent);
    hook.outage(Some(Answer::status(503, "").retry_after(120)));
    rig.cancel(&second);
    rig.wait_failures("webhook", "HTTP 503", 2).await;
    assert_eq!(hook.requests().len(), 6);
    assert_eq!(hook.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_attempts_under_way_finish_and_queued_pushes_get_theirs() {
    let keys = TestKeys::new();
    let hook = Fake::start(Kind::Webhook, &keys);
    let rig = Rig::new(PushConfig {
        concurrency: 1,
        webhook: Some(webhook_config(&hook)),
        ..push_config(&keys)
    });
    let bob = rig.offline_with("bob", webhook_target("bob"));
    let carol = rig.offline_with("carol", webhook_target("carol"));
    let dave = rig.offline_with("dave", webhook_target("dave"));
    hook.script([
        Answer::Hold(Box::new(Answer::status(200, ""))),
        Answer::status(503, ""),
    ]);
    let first = rig.send(&[&bob]);
    hook.wait_requests(1, WAIT);
    let second = rig.send(&[&carol]);
    let service = rig.service.clone();
    let stopping = service.shutdown(WAIT);
    tokio::pin!(stopping);
    // Polled once: the service is stopping.
    tokio::select! {
        biased;
        _ = &mut stopping => panic!("stopped with a request under way"),
        _ = std::future::ready(()) => {}
    }
    // A push after that fails at once ...
    let third = rig.send(&[&dave]);
    assert_eq!(
        rig.result(&third).await,
        (
            PushOutcome::Failed,
            "server shutting down".to_owned(),
            Some(PushProvider::Webhook)
        )
    );
    // ... the one under way finishes, the queued one has its attempt, and
    // nothing is retried.
    hook.release();
    stopping.await;
    assert_eq!(rig.result(&first).await.0, PushOutcome::Sent);
    assert_eq!(
        rig.result(&second).await,
        (
            PushOutcome::Failed,
            "HTTP 503".to_owned(),
            Some(PushProvider::Webhook)
        )
    );
    assert_eq!(hook.requests().len(), 2);
    assert_eq!(hook.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_still_under_way_when_the_shutdown_deadline_passes_is_reported_dropped() {
    let keys = TestKeys::new();
    let hook = Fake::start(Kind::Webhook, &keys);
    let rig = Rig::new(PushConfig {
        webhook: Some(webhook_config(&hook)),
        ..push_config(&keys)
    });
    let bob = rig.offline_with("bob", webhook_target("bob"));
    // Never answered.
    hook.script([Answer::Hold(Box::new(Answer::status(200, "")))]);
    let invitation = rig.send(&[&bob]);
    hook.wait_requests(1, WAIT);
    rig.service.shutdown(Duration::from_millis(100)).await;
    assert_eq!(
        rig.result(&invitation).await,
        (
            PushOutcome::Failed,
            "dropped".to_owned(),
            Some(PushProvider::Webhook)
        )
    );
    assert_eq!(rig.failures("webhook", "dropped"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_went_silent_is_replaced_after_a_timeout() {
    let keys = TestKeys::new();
    let (apns, sandbox) = (
        Fake::start(Kind::Apns, &keys),
        Fake::start(Kind::Apns, &keys),
    );
    let config = PushConfig {
        apns: Some(apns_config(&keys, &apns, &sandbox)),
        ..push_config(&keys)
    };
    let rig = Rig::with(
        config,
        Arc::new(SystemClock),
        Tuning {
            request_timeout: Duration::from_millis(1000),
            ..tuning()
        },
    );
    let bob = rig.offline_with("bob", voip_target(1, None));
    let first = rig.send(&[&bob]);
    assert_eq!(rig.result(&first).await.0, PushOutcome::Sent);
    rig.cancel(&first);
    // The connection goes silent (no reset, no FIN): the request times out
    // and the retry goes on a new connection.
    apns.script([Answer::Freeze]);
    let second = rig.send(&[&bob]);
    assert_eq!(rig.result(&second).await.0, PushOutcome::Sent);
    let requests = apns.wait_requests(3, WAIT);
    assert_eq!(requests.len(), 3);
    assert_eq!(requests[0].connection, requests[1].connection);
    assert_ne!(requests[1].connection, requests[2].connection);
    assert_eq!(apns.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_has_its_own_time_limit() {
    let keys = TestKeys::new();
    // Takes connections (the kernel's backlog) and never speaks TLS.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let http = HttpClient::new(Some(&keys.ca_file), "push")
        .unwrap()
        .with_connect_timeout(Duration::from_millis(100));
    let endpoint = Endpoint::parse(&format!("https://localhost:{port}")).unwrap();
    let request = hyper::Request::post(endpoint.uri("/3/device/00").unwrap())
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let answer = tokio::time::timeout(WAIT, http.send(&endpoint, request, true))
        .await
        .expect("connecting gives up");
    let error = answer.unwrap_err().to_string();
    assert!(
        error.contains("connection failed") && error.contains("timed out"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_is_final_whatever_its_body_does() {
    let keys = TestKeys::new();
    for hook in [
        Fake::start(Kind::Webhook, &keys),
        Fake::start_http1(Kind::Webhook, &keys),
    ] {
        let rig = Rig::with(
            PushConfig {
                webhook: Some(webhook_config(&hook)),
                ..push_config(&keys)
            },
            Arc::new(SystemClock),
            Tuning {
                request_timeout: Duration::from_millis(1000),
                ..tuning()
            },
        );
        let bob = rig.offline_with("bob", webhook_target("bob"));
        // A body that never ends, then one past the client's limit.
        for (i, answer) in [
            Answer::BodyStalls(200),
            Answer::status(200, "x".repeat(200_000)),
        ]
        .into_iter()
        .enumerate()
        {
            hook.script([answer]);
            let invitation = rig.send(&[&bob]);
            assert_eq!(rig.result(&invitation).await.0, PushOutcome::Sent);
            assert_eq!(hook.requests().len(), 2 * i + 1, "sent once");
            rig.cancel(&invitation);
            hook.wait_requests(2 * i + 2, WAIT);
        }
        assert_eq!(hook.problems(), Vec::<String>::new());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_over_http1_reuse_their_connection() {
    let keys = TestKeys::new();
    let hook = Fake::start_http1(Kind::Webhook, &keys);
    let rig = Rig::new(PushConfig {
        webhook: Some(webhook_config(&hook)),
        ..push_config(&keys)
    });
    let bob = rig.offline_with("bob", webhook_target("bob"));
    hook.script([Answer::status(500, "")]);
    let invitation = rig.send(&[&bob]);
    assert_eq!(rig.result(&invitation).await.0, PushOutcome::Sent);
    rig.cancel(&invitation);
    let requests = hook.wait_requests(3, WAIT);
    for request in &requests {
        assert_eq!(request.version, hyper::Version::HTTP_11);
        assert_eq!(request.path, "/hooks/beckon");
        assert_eq!(
            request.header("host"),
            format!("localhost:{}", hook.addr.port())
        );
    }
    assert_eq!(requests[2].json()["type"], "invitation.stop");
    assert_eq!(requests[0].connection, requests[2].connection, "kept");
    assert_eq!(hook.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_provider_token_is_replaced_only_once_20_minutes_old() {
    let keys = TestKeys::new();
    let (apns, sandbox) = (
        Fake::start(Kind::Apns, &keys),
        Fake::start(Kind::Apns, &keys),
    );
    let clock = ManualClock::at(SystemClock.now_ms());
    let settings = ApnsSettings::load(&apns_config(&keys, &apns, &sandbox)).unwrap();
    let http = Arc::new(HttpClient::new(Some(&keys.ca_file), "push").unwrap());
    let provider = Apns::new(settings, http, Arc::new(clock.clone()));
    let out = || {
        Outgoing::new(
            user("bob"),
            device("phone"),
            voip_target(1, None),
            ring_message("0123456789abcdef0123456789abcdef", 30, clock.now_ms()),
        )
    };
    let sent = Attempt::Done(beckon::hub::PushResult::Sent);
    assert_eq!(provider.send(&out()).await, sent);
    // A young token refused as invalid: Apple would refuse a new one too
    // ("TooManyProviderTokenUpdates"), so none is made.
    apns.script([Answer::apns(403, "InvalidProviderToken")]);
    clock.advance(Duration::from_secs(19 * 60));
    let Attempt::Done(beckon::hub::PushResult::Failed {
        reason,
        token_invalid: false,
    }) = provider.send(&out()).await
    else {
        panic!("not a plain failure");
    };
    assert!(reason.starts_with("InvalidProviderToken"), "{reason}");
    assert_eq!(apns.requests().len(), 2);
    // 20 minutes old: replaced, the push sent again with the new one.
    clock.advance(Duration::from_secs(60));
    apns.script([Answer::apns(403, "InvalidProviderToken")]);
    assert_eq!(provider.send(&out()).await, sent);
    let requests = apns.wait_requests(4, WAIT);
    assert_eq!(
        requests[2].header("authorization"),
        requests[0].header("authorization")
    );
    assert_ne!(
        requests[3].header("authorization"),
        requests[2].header("authorization")
    );
    assert_eq!(apns.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_lived_access_token_is_used_for_half_its_life() {
    let keys = TestKeys::new();
    let fake = Fake::start(Kind::Fcm, &keys);
    let clock = ManualClock::at(1_700_000_000_000);
    let settings = FcmSettings::load(&fcm_config(&keys, &fake)).unwrap();
    let http = Arc::new(HttpClient::new(Some(&keys.ca_file), "push").unwrap());
    let provider = Fcm::new(settings, http, Arc::new(clock.clone()));
    // Issued by hand: it is then accepted once (the fake's own tokens
    // are for the rest).
    fake.script_token([Answer::status(
        200,
        r#"{"access_token": "ya29.short", "expires_in": 120, "token_type": "Bearer"}"#,
    )]);
    fake.accept_access_token("ya29.short");
    let send = || {
        Outgoing::new(
            user("bob"),
            device("phone"),
            PushTarget::new(PushProvider::Fcm, "t1"),
            ring_message("fedcba9876543210fedcba9876543210", 30, clock.now_ms()),
        )
    };
    let sent = Attempt::Done(beckon::hub::PushResult::Sent);
    assert_eq!(provider.send(&send()).await, sent);
    clock.advance(Duration::from_secs(59));
    assert_eq!(provider.send(&send()).await, sent);
    assert_eq!(fake.token_requests().len(), 1, "cached for 60 s");
    clock.advance(Duration::from_secs(1));
    assert_eq!(provider.send(&send()).await, sent);
    assert_eq!(fake.token_requests().len(), 2);
    assert_eq!(fake.problems(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rings_too_large_for_a_provider_go_without_their_data() {
    let keys = TestKeys::new();
    let (apns, sandbox) = (
        Fake::start(Kind::Apns, &keys),
        Fake::start(Kind::Apns, &keys),
    );
    let fcm = Fake::start(Kind::Fcm, &keys);
    let hook = Fake::start(Kind::Webhook, &keys);
    let rig = Rig::new(PushConfig {
        apns: Some(apns_config(&keys, &apns, &sandbox)),
        fcm: Some(fcm_config(&keys, &fcm)),
        webhook: Some(webhook_config(&hook)),
        ..push_config(&keys)
    });
    let bob = rig.offline_with("bob", voip_target(1, None));
    let carol = rig.offline_with("carol", PushTarget::new(PushProvider::Apns, apns_token(3)));
    let dave = rig.offline_with("dave", PushTarget::new(PushProvider::Fcm, "fcm-dave"));
    let erin = rig.offline_with("erin", webhook_target("erin"));
    // Fits nowhere but the webhook: extended data and payload near their
    // limits (8 KiB, 4 KiB), with characters JSON escapes.
    let data = "\"".repeat(8000);
    let payload = "\\".repeat(4000);
    let invitation = rig.send_with(&[&bob, &carol, &dave, &erin], &data, &payload);
    let results = rig.results(&invitation, 4).await;
    assert!(
        results.iter().all(|r| r.0 == PushOutcome::Sent),
        "{results:?}"
    );
    let voip = apns.wait_requests(2, WAIT);
    for ring in &voip {
        let limit = if ring.header("apns-push-type") == "voip" {
            5120
        } else {
            4096
        };
        assert!(ring.body.len() <= limit, "{} bytes", ring.body.len());
        let beckon = &ring.json()["beckon"];
        assert_eq!(beckon["truncated"], true);
        assert_eq!(beckon["extended_data"], "");
        assert_eq!(beckon["payload"], "");
        assert_eq!(beckon["title"], "Alice");
        assert_eq!(beckon["invitation_id"], invitation.to_string());
    }
    let message = &fcm.wait_requests(1, WAIT)[0].json()["message"];
    assert!(message["data"].to_string().len() <= 4096);
    assert_eq!(message["data"]["truncated"], "true");
    assert_eq!(message["data"]["extended_data"], "");
    // The webhook has no limit: all of it.
    let hooked = &hook.wait_requests(1, WAIT)[0].json()["invitation"];
    assert_eq!(hooked["truncated"], false);
    assert_eq!(hooked["extended_data"], data.as_str());
    assert_eq!(hooked["payload"], payload.as_str());

    // A ring that fits is whole.
    let whole = rig.send(&[&bob]);
    assert_eq!(rig.result(&whole).await.0, PushOutcome::Sent);
    let ring = apns.wait_requests(3, WAIT).remove(2);
    assert_eq!(ring.json()["beckon"]["truncated"], false);
    assert_eq!(ring.json()["beckon"]["extended_data"], "{\"room\":\"r1\"}");
    for fake in [&apns, &fcm, &hook] {
        assert_eq!(fake.problems(), Vec::<String>::new());
    }
}
