//! The server API against a real `beckon-server` process: every endpoint
//! with good and bad input, its keys (missing, wrong, lacking an action or
//! a user), an API send ringing a device and a device's answer seen by the
//! API, the size limit, and keys kept out of the log.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use beckon::protocol::{Answer, ConnectionReason, InvitationId, Text};
use beckon::{ClientConfig, Event};
use serde_json::{json, Value};

mod common;
use common::api::call;
use common::{block, rand_suffix, unique, Peer, ServerProcess, WAIT};

const BACKEND_KEY: &str = "backend-key-0123456789abcdef0123456789";
const SUPPORT_KEY: &str = "support-key-0123456789abcdef0123456789";
const READER_KEY: &str = "reader-key-0123456789abcdef01234567890";

/// A server with a secret, extended data up to 1 KiB, and the API on
/// (bodies up to 4 KiB), with three keys: `backend` (all),
/// `support` (send and read, for users starting with `agent-`), `reader`
/// (read only).
fn api_server(extra_toml: &str) -> (ServerProcess, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("beckon-api-{}", rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = dir.join("secret");
    std::fs::write(&secret, "api-test-secret-0123456789").unwrap();
    let key_file = dir.join("backend.key");
    std::fs::write(&key_file, format!("{BACKEND_KEY}\n")).unwrap();
    let config = dir.join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[limits]\nmax_extended_data = 1024\n\
             [api]\nlisten = \"127.0.0.1:0\"\nmax_body_bytes = 4096\n{extra_toml}\n\
             [[api.key]]\nname = \"backend\"\nsecret_file = {:?}\n\
             [[api.key]]\nname = \"support\"\nsecret = \"{SUPPORT_KEY}\"\nallow = [\"send\", \"read\"]\nusers = [\"agent-*\"]\n\
             [[api.key]]\nname = \"reader\"\nsecret = \"{READER_KEY}\"\nallow = [\"read\"]\n",
            key_file.display().to_string()
        ),
    )
    .unwrap();
    let server = ServerProcess::start(&[
        "--config",
        config.to_str().unwrap(),
        "--secret-file",
        secret.to_str().unwrap(),
        "--grace-secs",
        "0",
    ]);
    (server, dir)
}

fn backend(server: &ServerProcess, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, _, value) = call(server, method, path, Some(BACKEND_KEY), body.as_deref());
    (status, value)
}

/// A device of `user` logged in with a token the API minted.
fn device_with_minted_token(server: &ServerProcess, user: &beckon::protocol::UserId) -> Peer {
    let (status, minted) = backend(
        server,
        "POST",
        "/v1/tokens",
        Some(json!({"user_id": user.as_str(), "ttl_secs": 600})),
    );
    assert_eq!(status, 200, "{minted}");
    assert_eq!(minted["user_id"], user.as_str());
    let expires = minted["expires_at_unix"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((now + 590..=now + 610).contains(&expires), "{minted}");
    let peer = Peer::with_config(ClientConfig::new(server.url()), user);
    block(
        peer.client
            .login(user.clone(), minted["token"].as_str().unwrap()),
    )
    .unwrap();
    // The first sync is sent after the login's callback; a renewal answered
    // after it went after the sync.
    block(peer.client.renew_token(minted["token"].as_str().unwrap())).unwrap();
    peer
}

fn invitation(server: &ServerProcess, id: &str) -> Value {
    let (status, body) = backend(server, "GET", &format!("/v1/invitations/{id}"), None);
    assert_eq!(status, 200, "{body}");
    body
}

fn wait_state(server: &ServerProcess, id: &str, invitee: usize, state: &str) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let body = invitation(server, id);
        if body["invitees"][invitee]["state"] == state {
            return body;
        }
        assert!(Instant::now() < deadline, "never {state}: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_api_is_off_by_default_and_needs_a_key_to_be_on() {
    let server = ServerProcess::start(&["--store", "memory"]);
    assert_eq!(server.api_port, None);
    let stderr = common::refused_start(&["--store", "memory", "--api", "127.0.0.1:0"]);
    assert!(stderr.contains("no [[api.key]] is configured"), "{stderr}");
}

#[test]
fn an_api_send_rings_a_device_whose_answer_the_api_sees() {
    let (server, _dir) = api_server("");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let bob_peer = device_with_minted_token(&server, &bob);

    // alice has no device: the server sends on her behalf.
    let send = json!({
        "inviter": alice.as_str(),
        "invitees": [bob.as_str(), "nobody-online"],
        "timeout_secs": 60,
        "extended_data": "{\"room\":\"support-42\"}",
        "notification": {"title": "Support", "message": "A call from support"},
        "idempotency_key": "ticket-42",
    });
    let (status, sent) = backend(&server, "POST", "/v1/invitations", Some(send.clone()));
    assert_eq!(status, 200, "{sent}");
    let id = sent["invitation_id"].as_str().unwrap().to_owned();
    assert_eq!(
        sent["error_invitees"],
        json!([{"user_id": "nobody-online", "state": "OFFLINE"}])
    );
    let (_, again) = backend(&server, "POST", "/v1/invitations", Some(send));
    assert_eq!(again, sent, "the idempotency key finds the same invitation");
    let rung = bob_peer.ringing();
    assert_eq!(rung.to_string(), id);

    let seen = wait_state(&server, &id, 0, "RECEIVED");
    assert_eq!(seen["inviter"], alice.as_str());
    assert_eq!(seen["sent_by_server"], true);
    assert_eq!(seen["ended"], false);
    assert_eq!(seen["extended_data"], "{\"room\":\"support-42\"}");
    assert_eq!(seen["invitees"][1]["state"], "OFFLINE");

    block(bob_peer.client.accept_invitation(Answer {
        invitation_id: InvitationId::parse(&id, "id").unwrap(),
        extended_data: Text::from("coming"),
    }))
    .unwrap();
    let answered = wait_state(&server, &id, 0, "ACCEPTED");
    assert_eq!(answered["ended"], false, "nobody-online may still come");

    // The API cancels what is left.
    let (status, cancelled) = backend(
        &server,
        "POST",
        &format!("/v1/invitations/{id}/cancel"),
        Some(json!({"extended_data": "call started"})),
    );
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(
        cancelled["error_invitees"],
        json!([{"user_id": bob.as_str(), "state": "ACCEPTED"}])
    );
    let ended = invitation(&server, &id);
    assert_eq!(ended["ended"], true);
    assert_eq!(ended["invitees"][1]["state"], "CANCELLED");
    assert!(ended["ended_at"].as_str().unwrap().ends_with('Z'));
    let (status, closed) = backend(
        &server,
        "POST",
        &format!("/v1/invitations/{id}/cancel"),
        None,
    );
    assert_eq!(status, 409, "{closed}");
    assert_eq!(closed["error"]["code"], "INVITATION_CLOSED");

    // Devices: listed, kicked (the device is told), gone.
    let (status, devices) = backend(&server, "GET", &format!("/v1/users/{bob}/devices"), None);
    assert_eq!(status, 200);
    assert_eq!(devices["devices"].as_array().unwrap().len(), 1, "{devices}");
    let device = devices["devices"][0]["device_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = backend(
        &server,
        "DELETE",
        &format!("/v1/users/{bob}/devices/{device}"),
        None,
    );
    assert_eq!(status, 204);
    bob_peer.expect("KICKED_OUT", |e| {
        matches!(
            e,
            Event::ConnectionStateChanged {
                reason: ConnectionReason::KickedOut,
                ..
            }
        )
        .then_some(())
    });
    let (_, devices) = backend(&server, "GET", &format!("/v1/users/{bob}/devices"), None);
    assert_eq!(devices["devices"], json!([]));
    let (status, missing) = backend(
        &server,
        "DELETE",
        &format!("/v1/users/{bob}/devices/{device}"),
        None,
    );
    assert_eq!(status, 404);
    assert_eq!(missing["error"]["code"], "DEVICE_NOT_FOUND");
}

type BadCase = (
    &'static str,
    String,
    Option<String>,
    u16,
    &'static str,
    &'static str,
);

#[test]
fn bad_input_gets_the_protocols_codes_and_messages() {
    let (server, _dir) = api_server("");
    let big = "x".repeat(5000);
    // method, path, body; the answer's status, code and a part of its message.
    let cases: Vec<BadCase> = vec![
        ("POST", "/v1/invitations".into(), Some("{not json".into()), 400, "INVALID_ARGUMENT", "body: "),
        (
            "POST",
            "/v1/invitations".into(),
            Some(json!({"inviter": "a", "invitees": ["b"], "timeout_secs": 30, "colour": 1}).to_string()),
            400,
            "INVALID_ARGUMENT",
            "unknown field `colour`",
        ),
        (
            "POST",
            "/v1/invitations".into(),
            Some(json!({"inviter": "a", "invitees": [], "timeout_secs": 30}).to_string()),
            400,
            "INVALID_ARGUMENT",
            "invitees: the list is empty",
        ),
        (
            "POST",
            "/v1/invitations".into(),
            Some(json!({"inviter": "", "invitees": ["b"], "timeout_secs": 30}).to_string()),
            400,
            "INVALID_ARGUMENT",
            "inviter",
        ),
        (
            "POST",
            "/v1/invitations".into(),
            Some(json!({"inviter": "a", "invitees": ["b", "bad id\n"], "timeout_secs": 30}).to_string()),
            400,
            "INVALID_ARGUMENT",
            "invitees[1]",
        ),
        (
            "POST",
            "/v1/invitations".into(),
            Some(json!({"inviter": "a", "invitees": ["b"], "timeout_secs": 0}).to_string()),
            400,
            "INVALID_ARGUMENT",
            "timeout",
        ),
        (
            "POST",
            "/v1/invitations".into(),
            Some(json!({"inviter": "a", "invitees": ["b"], "timeout_secs": 30, "extended_data": "y".repeat(2000)}).to_string()),
            413,
            "PAYLOAD_TOO_LARGE",
            "extended_data",
        ),
        ("POST", "/v1/invitations".into(), Some(big), 413, "PAYLOAD_TOO_LARGE", "api.max_body_bytes"),
        (
            "GET",
            format!("/v1/invitations/{}", "0".repeat(32)),
            None,
            404,
            "INVITATION_NOT_FOUND",
            "is not known",
        ),
        ("GET", "/v1/invitations/not-an-id".into(), None, 400, "INVALID_ARGUMENT", "invitation_id"),
        (
            "POST",
            "/v1/tokens".into(),
            Some(json!({"user_id": "a", "ttl_secs": 0}).to_string()),
            400,
            "INVALID_ARGUMENT",
            "ttl_secs: 0 is outside",
        ),
        ("GET", "/v1/users/a%0Ab/devices".into(), None, 400, "INVALID_ARGUMENT", "user_id"),
        ("GET", "/v2/everything".into(), None, 404, "NOT_FOUND", "no such endpoint"),
    ];
    for (method, path, body, status, code, fragment) in cases {
        let (got, _, answer) = call(&server, method, &path, Some(BACKEND_KEY), body.as_deref());
        assert_eq!(got, status, "{method} {path}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{method} {path}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(fragment), "{method} {path}: {message}");
    }
    let (_, metrics) = server.admin_get("/metrics");
    assert!(
        metrics.contains(r#"beckon_api_requests_total{route="send",status="400"}"#),
        "{metrics}"
    );
}

#[test]
fn keys_are_required_scoped_and_never_logged() {
    std::env::set_var("BECKON_TEST_SERVER_LOG_LEVEL", "debug");
    let (server, _dir) = api_server("");
    let agent = format!("agent-{}", &rand_suffix()[..6]);
    let send = |inviter: &str| {
        json!({"inviter": inviter, "invitees": ["someone"], "timeout_secs": 30}).to_string()
    };
    // No key, a wrong key: 401 with a Bearer challenge.
    for key in [None, Some("backend-key-0123456789abcdef012345678X")] {
        let (status, head, answer) =
            call(&server, "POST", "/v1/invitations", key, Some(&send("a")));
        assert_eq!(status, 401, "{answer}");
        assert_eq!(answer["error"]["code"], "UNAUTHORIZED");
        assert!(
            head.to_ascii_lowercase()
                .contains("www-authenticate: bearer"),
            "{head}"
        );
    }
    // 401 comes before anything else is looked at.
    let (status, _, _) = call(&server, "GET", "/v2/nothing", None, None);
    assert_eq!(status, 401);
    // A key lacking the action, or the user.
    let (status, _, answer) = call(
        &server,
        "POST",
        "/v1/invitations",
        Some(READER_KEY),
        Some(&send("a")),
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("may not send"));
    let (status, _, answer) = call(
        &server,
        "POST",
        "/v1/invitations",
        Some(SUPPORT_KEY),
        Some(&send("alice")),
    );
    assert_eq!(status, 403, "{answer}");
    assert!(answer["error"]["message"]
        .as_str()
        .unwrap()
        .contains("may not act for user 'alice'"));
    let (status, _, mine) = call(
        &server,
        "POST",
        "/v1/invitations",
        Some(SUPPORT_KEY),
        Some(&send(&agent)),
    );
    assert_eq!(status, 200, "{mine}");
    let (status, _, _) = call(
        &server,
        "POST",
        "/v1/tokens",
        Some(SUPPORT_KEY),
        Some(&json!({"user_id": agent, "ttl_secs": 60}).to_string()),
    );
    assert_eq!(status, 403, "support may not mint tokens");
    // Invitations of users outside the key are not found, as if they did
    // not exist.
    let (_, others) = backend(
        &server,
        "POST",
        "/v1/invitations",
        Some(json!({"inviter": "alice", "invitees": ["bob"], "timeout_secs": 30})),
    );
    let theirs = others["invitation_id"].as_str().unwrap();
    let (status, _, answer) = call(
        &server,
        "GET",
        &format!("/v1/invitations/{theirs}"),
        Some(SUPPORT_KEY),
        None,
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("INVITATION_NOT_FOUND"))
    );
    let id = mine["invitation_id"].as_str().unwrap();
    let (status, _, _) = call(
        &server,
        "GET",
        &format!("/v1/invitations/{id}"),
        Some(SUPPORT_KEY),
        None,
    );
    assert_eq!(status, 200);
    // Seen through an invitee, but not the key's to cancel (it acts as the
    // inviter).
    let (_, to_agent) = backend(
        &server,
        "POST",
        "/v1/invitations",
        Some(json!({"inviter": "alice", "invitees": [agent], "timeout_secs": 30})),
    );
    let to_agent = to_agent["invitation_id"].as_str().unwrap();
    let (status, _, _) = call(
        &server,
        "GET",
        &format!("/v1/invitations/{to_agent}"),
        Some(SUPPORT_KEY),
        None,
    );
    assert_eq!(status, 200, "visible through its invitee");
    let (status, _, answer) = call(
        &server,
        "POST",
        &format!("/v1/invitations/{to_agent}/cancel"),
        Some(SUPPORT_KEY),
        None,
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("FORBIDDEN")),
        "{answer}"
    );
    // Another method on a known path: 401 without a key, then 404; the
    // scheme's case does not matter.
    let (status, _, _) = call(&server, "PUT", "/v1/tokens", None, None);
    assert_eq!(status, 401);
    let (status, _, answer) = call(&server, "PUT", "/v1/tokens", Some(READER_KEY), None);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let port = server.api_port.unwrap();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET /v1/users/{agent}/devices HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: bearer {BACKEND_KEY}\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    let log = server.log();
    assert!(
        log.contains("api: invitation sent"),
        "the log is read: {log}"
    );
    for key in [
        BACKEND_KEY,
        SUPPORT_KEY,
        READER_KEY,
        "backend-key-0123456789abcdef012345678X",
    ] {
        assert!(!log.contains(key), "a key in the log");
    }
}

#[test]
fn the_openapi_document_lists_exactly_the_routes_served() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .expect("docs/openapi.json");
    let doc: Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "delete", "put", "patch"].contains(&method.as_str()) {
                documented.push((method.to_uppercase(), path.clone()));
                let op = &item[method];
                assert!(
                    op["operationId"].is_string(),
                    "{method} {path}: operationId"
                );
                assert!(
                    op["responses"]["401"].is_object(),
                    "{method} {path}: 401 documented"
                );
            }
        }
    }
    let mut served: Vec<(String, String)> = beckon_server::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
    // Every error code the API answers with is in the document's list.
    let codes = doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
        ["enum"]
        .as_array()
        .expect("error codes");
    for code in [
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "DEVICE_NOT_FOUND",
        "INVALID_ARGUMENT",
        "PAYLOAD_TOO_LARGE",
        "INVITATION_NOT_FOUND",
        "INVITATION_CLOSED",
        "RATE_LIMITED",
        "SERVER",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code}");
    }
}

#[test]
fn history_pages_through_both_roles_and_outlives_a_restart() {
    let (mut server, _dir) = api_server("");
    let (alice, bob) = (unique("alice"), unique("bob"));
    let alice_peer = device_with_minted_token(&server, &alice);
    let bob_peer = device_with_minted_token(&server, &bob);
    let mut ids = Vec::new();
    for round in 0..25 {
        let (from, to) = if round % 5 == 4 {
            (&bob_peer, &alice)
        } else {
            (&alice_peer, &bob)
        };
        let sent = from.invite(&[to], 30);
        let answerer = if round % 5 == 4 {
            &alice_peer
        } else {
            &bob_peer
        };
        assert_eq!(answerer.ringing(), sent.invitation_id);
        block(answerer.client.refuse_invitation(Answer {
            invitation_id: sent.invitation_id.clone(),
            extended_data: Text::from(""),
        }))
        .unwrap();
        ids.push(sent.invitation_id.to_string());
    }
    // Newest sent first; invitations sent within one millisecond come in id
    // order, so the order is checked by time and the ids as a set.
    let mut expected = ids.clone();
    expected.sort();

    // A device pages through its own history over the protocol.
    let mut seen = Vec::new();
    let mut created = Vec::new();
    let mut query = beckon::protocol::InvitationQuery {
        limit: 10,
        ..Default::default()
    };
    loop {
        let page = block(alice_peer.client.query_invitations(query.clone())).unwrap();
        assert!(page.invitations.len() <= 10);
        for summary in &page.invitations {
            assert_eq!(
                summary.invitees[0].state,
                beckon::protocol::InviteeState::Rejected
            );
            seen.push(summary.invitation_id.to_string());
            created.push(summary.created_ms);
        }
        match page.next_cursor {
            Some(cursor) => query.cursor = Some(cursor),
            None => break,
        }
    }
    assert!(
        created.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {created:?}"
    );
    let in_order = seen.clone();
    seen.sort();
    assert_eq!(seen, expected);
    let sent = block(
        alice_peer
            .client
            .query_invitations(beckon::protocol::InvitationQuery {
                role: beckon::protocol::HistoryRole::Sent,
                limit: 100,
                ..Default::default()
            }),
    )
    .unwrap();
    assert_eq!(sent.invitations.len(), 20);
    drop(alice_peer);
    drop(bob_peer);

    // kill -9 and a restart on the same store: the API sees the same.
    server.kill();
    server.restart();
    let mut api_seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            // The cursor percent-encoded, as a URL library may send it.
            Some(c) => format!(
                "/v1/users/{bob}/invitations?limit=7&cursor={}",
                c.replace('-', "%2D")
            ),
            None => format!("/v1/users/{bob}/invitations?limit=7"),
        };
        let (status, page) = backend(&server, "GET", &path, None);
        assert_eq!(status, 200, "{page}");
        for entry in page["invitations"].as_array().unwrap() {
            api_seen.push(entry["invitation_id"].as_str().unwrap().to_owned());
            assert_eq!(entry["invitees"][0]["state"], "REJECTED");
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(api_seen, in_order, "the same pages after the restart");
    let (_, received) = backend(
        &server,
        "GET",
        &format!("/v1/users/{bob}/invitations?role=%72eceived&limit=100"),
        None,
    );
    assert_eq!(received["invitations"].as_array().unwrap().len(), 20);
    let (status, bad) = backend(
        &server,
        "GET",
        &format!("/v1/users/{bob}/invitations?role=all"),
        None,
    );
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
}
