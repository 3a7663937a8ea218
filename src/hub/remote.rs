//! What a hub needs to be one node of several (`beckon-server --store
//! redis`): devices logged in at other nodes, and invitations taken over
//! from a node that stopped. The rules stay the hub's own: a device of
//! another node is a session like any other, whose sink forwards to that
//! node, and an invitation taken over is restored as after a restart.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::persistence::Recovery;
use super::store::InvitationRecord;
use super::{Hub, Session};
use crate::protocol::{DeviceId, SessionSink, UserId};

impl Hub {
    /// A device logged in at another node, reached through `sink`. No token
    /// (the node it is on checked it, and watches its expiry) and no device
    /// limit (that node enforced it). As a login, it replaces (kicks out) an
    /// older session of the same device, here or remote; unlike a login, it
    /// is synced at once: it is handed every invitation of this hub still
    /// ringing for its user.
    pub fn login_remote(
        &self,
        user: UserId,
        device: DeviceId,
        sink: Arc<dyn SessionSink>,
    ) -> Arc<Session> {
        super::store::reset_frame_ticket();
        let id = self.next_session_id.fetch_add(1, Ordering::Relaxed);
        let session = Arc::new(Session::new_remote(id, user, device, sink));
        match self.join(session.clone(), false) {
            Ok(session) => {
                self.sync(&session);
                session
            }
            // Without the device limit, joining cannot fail.
            Err(_) => session,
        }
    }

    /// Invitations of a node that stopped, taken over by this hub: restored
    /// as after a restart (deadlines that passed time out now, inviters get
    /// `inviter_grace` to be seen again, ended ones keep what is left of
    /// their retention), then handed to every live device of their
    /// invitees (which had them from the node that stopped; a client tells
    /// its app of an invitation once).
    pub fn adopt(&self, records: Vec<InvitationRecord>, inviter_grace: Duration) -> Recovery {
        let mut invitees: Vec<(UserId, crate::protocol::InvitationId)> = Vec::new();
        for record in &records {
            if record.ended_ms.is_none() {
                for invitee in &record.invitees {
                    invitees.push((invitee.user.clone(), record.id.clone()));
                }
            }
        }
        let recovery = self.recover(records, inviter_grace);
        for (user, id) in invitees {
            for session in self.users.sessions(&user) {
                self.deliver_pending(&session, &id);
            }
        }
        recovery
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::super::test_support::{user, Inbox, Recording};
    use super::super::{Hub, HubConfig};
    use crate::protocol::{
        Answer, CancelInvitation, DeviceId, InviteeState, Push, SendInvitation, Text,
    };

    fn hub() -> Arc<Hub> {
        Hub::new(HubConfig::default(), crate::runtime::handle()).expect("hub")
    }

    fn device(name: &str) -> DeviceId {
        DeviceId::parse(name, "device").expect("device id")
    }

    fn inbox() -> Arc<Inbox> {
        Arc::new(Inbox::default())
    }

    fn pushes(inbox: &Inbox) -> Vec<Push> {
        inbox.0.lock().clone()
    }

    fn received(inbox: &Inbox) -> usize {
        pushes(inbox)
            .iter()
            .filter(|p| matches!(p, Push::InvitationReceived { .. }))
            .count()
    }

    fn answered(id: &crate::protocol::InvitationId) -> Answer {
        Answer {
            invitation_id: id.clone(),
            extended_data: Text::from(""),
        }
    }

    #[test]
    fn a_remote_device_is_rung_answers_and_is_kicked_by_a_newer_login() {
        let hub = hub();
        let alice_inbox = inbox();
        let alice = hub
            .login(user("alice"), device("a1"), "t", alice_inbox.clone())
            .expect("alice");
        hub.sync(&alice);
        let remote_inbox = inbox();
        let bob_remote = hub.login_remote(user("bob"), device("b1"), remote_inbox.clone());
        assert!(bob_remote.is_remote());
        let sent = hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .expect("send");
        assert_eq!(received(&remote_inbox), 1, "rung through its sink");
        hub.accept(&bob_remote, answered(&sent.invitation_id))
            .expect("accept");
        assert!(pushes(&alice_inbox)
            .iter()
            .any(|p| matches!(p, Push::InvitationAccepted { .. })));
        // The device logs in here: the remote session is kicked out.
        hub.login(user("bob"), device("b1"), "t", inbox())
            .expect("bob here");
        assert!(!bob_remote.is_alive());
        assert!(pushes(&remote_inbox)
            .iter()
            .any(|p| matches!(p, Push::KickedOut)));
    }

    #[test]
    fn a_remote_device_is_synced_at_login_and_keeps_its_inviters_invitations_open() {
        let hub = hub();
        let alice = hub
            .login(user("alice"), device("a1"), "t", inbox())
            .expect("alice");
        hub.sync(&alice);
        let sent = hub
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .expect("send");
        let bob_inbox = inbox();
        hub.login_remote(user("bob"), device("b1"), bob_inbox.clone());
        assert_eq!(received(&bob_inbox), 1, "what rings is handed over at once");
        // Alice's device moves to another node: the invitation stays open
        // while her device is there.
        let alice_remote = hub.login_remote(user("alice"), device("a1"), inbox());
        assert!(!alice.is_alive(), "the device logged in elsewhere");
        let still = pushes(&bob_inbox).iter().any(|p| {
            matches!(
                p,
                Push::UserStateChanged {
                    state: InviteeState::Cancelled,
                    ..
                }
            )
        });
        assert!(!still, "not cancelled while the inviter is on another node");
        hub.logout(&alice_remote);
        let cancelled = pushes(&bob_inbox).iter().any(|p| {
            matches!(p, Push::UserStateChanged { invitation_id, state: InviteeState::Cancelled, .. } if *invitation_id == sent.invitation_id)
        });
        assert!(cancelled, "rule 7 once the inviter's last device is gone");
    }

    #[test]
    fn adopted_invitations_ring_their_invitees_devices_again_and_answer_here() {
        let store = Arc::new(Recording::default());
        let (old, _) = Hub::with_store(
            HubConfig::default(),
            crate::runtime::handle(),
            store.clone(),
            Duration::from_secs(30),
            super::super::Outlets::default(),
        )
        .expect("hub");
        let alice = old
            .login(user("alice"), device("a1"), "t", inbox())
            .expect("alice");
        old.sync(&alice);
        let sent = old
            .send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .expect("send");
        let records: Vec<_> = store.kept.lock().values().cloned().collect();

        let new = hub();
        let bob_inbox = inbox();
        let bob = new
            .login(user("bob"), device("b1"), "t", bob_inbox.clone())
            .expect("bob");
        new.sync(&bob);
        let alice_there = new.login_remote(user("alice"), device("a1"), inbox());
        let recovery = new.adopt(records, Duration::from_secs(30));
        assert_eq!(recovery.open, 1);
        assert_eq!(received(&bob_inbox), 1);
        let cancel = CancelInvitation {
            invitation_id: sent.invitation_id.clone(),
            invitees: None,
            extended_data: Text::from(""),
        };
        new.cancel(&alice_there, cancel)
            .expect("the adopted invitation is this hub's now");
    }
}
