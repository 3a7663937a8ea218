//! SPEC sections 2 to 4 as one suite that runs twice: against an in-process
//! `memory://` hub and against a real `beckon-server` process over WebSocket on
//! 127.0.0.1. The same scenario code for both, so the transports cannot drift.

use std::sync::OnceLock;

use beckon::protocol::{CancelInvitation, InviteeState, Push, SendInvitation};
use beckon::{ErrorCode, Event};

mod common;
use common::{block, unique, Peer, ServerProcess};

/// Where a scenario runs.
#[derive(Clone, Copy)]
enum Target {
    Memory,
    Server,
}

impl Target {
    /// A fresh hub for the memory target; the shared server for the other
    /// (users are unique per test, so tests do not see each other).
    fn url(self) -> String {
        match self {
            Target::Memory => format!("memory://scenario-{}", common::rand_suffix()),
            Target::Server => {
                static SERVER: OnceLock<ServerProcess> = OnceLock::new();
                SERVER
                    .get_or_init(|| ServerProcess::start(&["--grace-secs", "2"]))
                    .url()
            }
        }
    }
}

/// Declares each scenario twice: `memory::name` and `server::name`.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $name() { super::$name(super::Target::Memory) } )*
        }
        mod server {
            $( #[test] fn $name() { super::$name(super::Target::Server) } )*
        }
    };
}

scenarios!(demo_flow);

fn demo_flow(target: Target) {
    let url = target.url();
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = Peer::online(&url, &alice);
    let b = Peer::online(&url, &bob);
    let mut request = SendInvitation::new(vec![bob.clone()], 30);
    request.extended_data = "call:video".into();
    let sent = block(a.client.send_invitation(request)).unwrap();
    assert!(sent.error_invitees.is_empty());
    let (id, data) = b.expect("INVITATION_RECEIVED", |e| match e {
        Event::Invitation(Push::InvitationReceived {
            invitation_id,
            inviter,
            extended_data,
            ..
        }) => {
            assert_eq!(inviter, &alice);
            Some((invitation_id.clone(), extended_data.to_string()))
        }
        _ => None,
    });
    assert_eq!(id, sent.invitation_id);
    assert_eq!(data, "call:video");
    a.expect("RECEIVED state", |e| match e {
        Event::Invitation(Push::UserStateChanged {
            user_id,
            state: InviteeState::Received,
            ..
        }) if user_id == &bob => Some(()),
        _ => None,
    });
    block(b.client.accept_invitation(common_answer(&id, "ok"))).unwrap();
    let data = a.expect("INVITATION_ACCEPTED", |e| match e {
        Event::Invitation(Push::InvitationAccepted {
            invitee,
            extended_data,
            ..
        }) if invitee == &bob => Some(extended_data.to_string()),
        _ => None,
    });
    assert_eq!(data, "ok");
    let again = block(b.client.accept_invitation(common_answer(&id, "")));
    assert_eq!(again.unwrap_err().code, ErrorCode::AlreadyAnswered);
    let cancel = CancelInvitation {
        invitation_id: id,
        invitees: None,
        extended_data: "".into(),
    };
    let late = block(a.client.cancel_invitation(cancel)).unwrap_err();
    assert_eq!(late.code, ErrorCode::InvitationClosed);
}

fn common_answer(id: &beckon::protocol::InvitationId, data: &str) -> beckon::protocol::Answer {
    beckon::protocol::Answer {
        invitation_id: id.clone(),
        extended_data: data.into(),
    }
}
