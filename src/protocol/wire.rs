//! The frames of the WebSocket protocol (docs/PROTOCOL.md): JSON text frames,
//! one message each, tagged by `type`. Both the client transport and the server
//! use these types, so the two cannot disagree.
//!
//! Every frame the server sends after `welcome`, except `shutdown` and `error`,
//! carries a sequence number `seq`. The server keeps what it sent in an outbox
//! until the client acknowledges it (`ack`), so a client that reconnects within the
//! grace period resumes its session and gets exactly what it missed: no event is
//! lost and none comes twice.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::UserId;
use super::{
    Answer, CancelInvitation, DeviceId, InvitationId, InvitationQuery, Limits, Push, PushTarget,
    SendInvitation, Snapshot,
};
use crate::error::{Error, ErrorCode};

/// The protocol version this library speaks. A server refuses a `hello` with
/// another version.
/// cbindgen:ignore
pub const PROTOCOL_VERSION: u32 = 1;

/// The WebSocket subprotocol name clients offer.
/// cbindgen:ignore
pub const SUBPROTOCOL: &str = "beckon.v1";

/// Sent by the client.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// The first frame on every connection: authenticates, and either starts a
    /// new session or resumes one after a reconnect.
    Hello {
        v: u32,
        user: UserId,
        device: DeviceId,
        token: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resume: Option<Resume>,
    },
    /// Ready for pushes: the server delivers what is ringing for this user.
    /// With `known` (a fresh session after one that could not be resumed), it
    /// first answers with a `snapshot` of every open invitation of the user and
    /// of each named one, so the client can tell the app what it missed.
    Sync {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        known: Option<Vec<InvitationId>>,
    },
    Send {
        id: u64,
        request: SendInvitation,
    },
    Cancel {
        id: u64,
        request: CancelInvitation,
    },
    Accept {
        id: u64,
        answer: Answer,
    },
    Refuse {
        id: u64,
        answer: Answer,
    },
    RenewToken {
        id: u64,
        token: String,
    },
    /// Rings this device by push while it is not connected (replacing the
    /// target it had). Kept by the server past this session, until cleared,
    /// the device logs out, or the provider says the token is no longer
    /// valid. The result's `ok` is `null`.
    SetPushTarget {
        id: u64,
        target: PushTarget,
    },
    /// Forgets this device's push target, if it has one. `ok` is `null`.
    ClearPushTarget {
        id: u64,
    },
    /// The user's ended invitations, newest first, a page at a time. `ok`
    /// is an `InvitationPage`.
    QueryInvitations {
        id: u64,
        query: InvitationQuery,
    },
    /// Ends the session for good (rule 7 applies); the server replies, then
    /// closes the connection. The device's push target is forgotten too.
    Logout {
        id: u64,
    },
    /// The delivery receipt of rule 4.
    Receipt {
        invitation_id: InvitationId,
    },
    /// Everything up to and including `seq` has arrived: the server may forget it.
    Ack {
        seq: u64,
    },
}

impl ClientFrame {
    /// The request id, for frames that get a `result`.
    pub fn request_id(&self) -> Option<u64> {
        match self {
            ClientFrame::Send { id, .. }
            | ClientFrame::Cancel { id, .. }
            | ClientFrame::Accept { id, .. }
            | ClientFrame::Refuse { id, .. }
            | ClientFrame::RenewToken { id, .. }
            | ClientFrame::SetPushTarget { id, .. }
            | ClientFrame::ClearPushTarget { id }
            | ClientFrame::QueryInvitations { id, .. }
            | ClientFrame::Logout { id } => Some(*id),
            ClientFrame::Hello { .. }
            | ClientFrame::Sync { .. }
            | ClientFrame::Receipt { .. }
            | ClientFrame::Ack { .. } => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resume {
    /// The `session` secret of the `welcome` being resumed.
    pub session: String,
    /// The last `seq` the client received.
    pub seq: u64,
}

/// Sent by the server. Decode with [`ServerFrame::decode`]: serde's tagged
/// enums cannot carry the raw `ok` value, whose shape depends on the request.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    Welcome(Welcome),
    /// The answer to request `id`: `ok` (shape per request) or `error`.
    Result {
        id: u64,
        seq: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ok: Option<Box<RawValue>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<WireError>,
    },
    Push {
        seq: u64,
        push: Push,
    },
    /// The answer to a `sync` with `known`: sequenced like a push.
    Snapshot {
        seq: u64,
        snapshot: Snapshot,
    },
    /// The connection is refused or ends because of `code`; the server closes it
    /// next. Not sequenced.
    Error(WireError),
    /// The server is going away (restart, deploy): reconnect after a pause.
    Shutdown,
}

/// Every field any server frame has, flat: what `decode` reads first.
#[derive(Deserialize)]
struct AnyServerFrame {
    #[serde(rename = "type")]
    kind: String,
    id: Option<u64>,
    seq: Option<u64>,
    ok: Option<Box<RawValue>>,
    error: Option<WireError>,
    push: Option<Push>,
    snapshot: Option<Snapshot>,
    code: Option<i32>,
    message: Option<String>,
}

impl ServerFrame {
    pub fn decode(text: &str) -> std::result::Result<ServerFrame, String> {
        let any: AnyServerFrame = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let missing = |field: &str| format!("{} frame without {field}", any.kind);
        Ok(match any.kind.as_str() {
            "welcome" => {
                ServerFrame::Welcome(serde_json::from_str(text).map_err(|e| e.to_string())?)
            }
            "result" => ServerFrame::Result {
                id: any.id.ok_or_else(|| missing("id"))?,
                seq: any.seq.ok_or_else(|| missing("seq"))?,
                ok: any.ok,
                error: any.error,
            },
            "push" => ServerFrame::Push {
                seq: any.seq.ok_or_else(|| missing("seq"))?,
                push: any.push.ok_or_else(|| missing("push"))?,
            },
            "snapshot" => ServerFrame::Snapshot {
                seq: any.seq.ok_or_else(|| missing("seq"))?,
                snapshot: any.snapshot.ok_or_else(|| missing("snapshot"))?,
            },
            "error" => ServerFrame::Error(WireError {
                code: any.code.ok_or_else(|| missing("code"))?,
                message: any.message.unwrap_or_default(),
            }),
            "shutdown" => ServerFrame::Shutdown,
            other => return Err(format!("unknown frame type '{other}'")),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    pub v: u32,
    /// A secret naming this session, for `hello.resume` after a reconnect.
    pub session: String,
    /// True when an earlier session was resumed; the missed frames follow.
    pub resumed: bool,
    /// The highest request id the server has answered in this session: the
    /// client re-sends its unanswered requests above it.
    pub last_request: u64,
    pub limits: Limits,
    /// The server pings at this interval and drops a silent peer after three.
    pub heartbeat_secs: u32,
    /// How long a dropped session waits for its client to come back.
    pub grace_secs: u32,
    /// The largest frame the server accepts (0 from a server that does not
    /// say): a client refuses a bigger request with PAYLOAD_TOO_LARGE.
    #[serde(default)]
    pub max_frame_bytes: usize,
    /// Whether this session has had its first `sync`: false on a fresh
    /// session; on a resumed one, whether a `sync` reached the server before
    /// the connection dropped (a client that sent one re-sends it when not).
    /// `None` from an older server that does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced: Option<bool>,
}

/// An error on the wire: the numeric code (docs/SEMANTICS.md, "Error codes")
/// and a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub code: i32,
    pub message: String,
}

impl From<&Error> for WireError {
    fn from(error: &Error) -> WireError {
        WireError {
            code: error.code as i32,
            message: error.message.clone(),
        }
    }
}

impl From<WireError> for Error {
    /// An unknown code from a newer server is reported as SERVER, with the number.
    fn from(wire: WireError) -> Error {
        match ErrorCode::from_i32(wire.code) {
            Some(code) if code != ErrorCode::Ok => Error::new(code, wire.message),
            _ => Error::new(
                ErrorCode::Server,
                format!("server error {}: {}", wire.code, wire.message),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_round_trip() {
        let frames = [
            r#"{"type":"hello","v":1,"user":"alice","device":"d1","token":"t"}"#,
            r#"{"type":"hello","v":1,"user":"alice","device":"d1","token":"t","resume":{"session":"s","seq":4}}"#,
            r#"{"type":"sync"}"#,
            r#"{"type":"sync","known":["0123456789abcdef0123456789abcdef"]}"#,
            r#"{"type":"send","id":1,"request":{"invitees":["bob"],"timeout_secs":30,"extended_data":"x","notification":null}}"#,
            r#"{"type":"accept","id":2,"answer":{"invitation_id":"0123456789abcdef0123456789abcdef","extended_data":""}}"#,
            r#"{"type":"receipt","invitation_id":"0123456789abcdef0123456789abcdef"}"#,
            r#"{"type":"ack","seq":9}"#,
            r#"{"type":"logout","id":3}"#,
            r#"{"type":"set_push_target","id":4,"target":{"provider":"apns_voip","token":"abababababababababababababababab","topic":"com.example.app","environment":"sandbox"}}"#,
            r#"{"type":"set_push_target","id":5,"target":{"provider":"fcm","token":"t"}}"#,
            r#"{"type":"clear_push_target","id":6}"#,
        ];
        for text in frames {
            let frame: ClientFrame = serde_json::from_str(text).unwrap();
            let again: ClientFrame =
                serde_json::from_str(&serde_json::to_string(&frame).unwrap()).unwrap();
            assert_eq!(frame, again, "{text}");
        }
    }

    #[test]
    fn malformed_client_frames_are_refused() {
        for text in [
            r#"{"type":"nope"}"#,
            r#"{"type":"send","id":1}"#,
            r#"{"type":"hello","v":1,"user":"bad user","device":"d","token":"t"}"#,
            r#"{"type":"ack","seq":-1}"#,
            r#"[1,2]"#,
        ] {
            assert!(serde_json::from_str::<ClientFrame>(text).is_err(), "{text}");
        }
    }

    #[test]
    fn server_frames_decode() {
        let result =
            ServerFrame::decode(r#"{"type":"result","id":3,"seq":7,"ok":{"error_invitees":[]}}"#)
                .unwrap();
        match result {
            ServerFrame::Result {
                id: 3,
                seq: 7,
                ok: Some(ok),
                error: None,
            } => {
                assert_eq!(ok.get(), r#"{"error_invitees":[]}"#)
            }
            other => panic!("{other:?}"),
        }
        let push =
            ServerFrame::decode(r#"{"type":"push","seq":8,"push":{"type":"kicked_out"}}"#).unwrap();
        assert!(matches!(
            push,
            ServerFrame::Push {
                seq: 8,
                push: Push::KickedOut
            }
        ));
        let error =
            ServerFrame::decode(r#"{"type":"error","code":5,"message":"bad token"}"#).unwrap();
        assert!(matches!(
            error,
            ServerFrame::Error(WireError { code: 5, .. })
        ));
        let snapshot = ServerFrame::decode(
            r#"{"type":"snapshot","seq":9,"snapshot":{"invitations":[{"invitation_id":"0123456789abcdef0123456789abcdef","inviter":"alice","invitees":[{"user_id":"bob","state":"accepted"}],"ended":true,"seconds_left":0}],"unknown":[]}}"#,
        )
        .unwrap();
        match snapshot {
            ServerFrame::Snapshot { seq: 9, snapshot } => {
                assert_eq!(snapshot.invitations.len(), 1);
                assert!(snapshot.invitations[0].ended);
            }
            other => panic!("{other:?}"),
        }
        assert!(ServerFrame::decode(r#"{"type":"result","seq":1}"#).is_err());
        assert!(ServerFrame::decode(r#"{"type":"surprise"}"#).is_err());
    }

    #[test]
    fn welcome_says_synced_and_older_or_newer_servers_still_decode() {
        let base = r#""v":1,"session":"s","resumed":true,"last_request":2,"limits":{},"heartbeat_secs":15,"grace_secs":30"#;
        let welcome = |extra: &str| match ServerFrame::decode(&format!(
            r#"{{"type":"welcome",{base}{extra}}}"#
        )) {
            Ok(ServerFrame::Welcome(welcome)) => welcome,
            other => panic!("{other:?}"),
        };
        assert_eq!(welcome("").synced, None, "an older server does not say");
        assert_eq!(welcome(r#","synced":false"#).synced, Some(false));
        assert_eq!(welcome(r#","synced":true"#).synced, Some(true));
        let newer = welcome(r#","synced":true,"something_new":[1,2]"#);
        assert_eq!(newer.synced, Some(true), "unknown fields are ignored");
        let text = serde_json::to_string(&ServerFrame::Welcome(newer)).unwrap();
        assert!(text.contains(r#""synced":true"#), "{text}");
    }

    #[test]
    fn unknown_error_codes_become_server_errors() {
        let error = Error::from(WireError {
            code: 99,
            message: "new".into(),
        });
        assert_eq!(error.code, ErrorCode::Server);
        assert!(error.message.contains("99"));
        let known = Error::from(WireError {
            code: 7,
            message: "gone".into(),
        });
        assert_eq!(known.code, ErrorCode::InvitationNotFound);
    }
}
