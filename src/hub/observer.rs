//! What happened in a hub, told to whoever watches it: beckon-server turns it
//! into signed webhooks for the app's backend (docs/WEBHOOKS.md).
//!
//! The hub tells its observer while it still holds the invitation's lock, so
//! one invitation's events arrive in the order the hub decided them: created,
//! each invitee's changes, ended. An observer must only queue (it runs under
//! the hub's locks, like a session sink). Each event carries the store ticket
//! of the change it tells of, so an observer can wait until that change is
//! durable before it tells anyone (a crash must not leave a webhook about an
//! invitation the restarted server never heard of).
//!
//! On a deployment of several nodes, an invitation changes only on the node
//! that holds it and a device logs in at one node, so each event is told by
//! one node.

use std::sync::Arc;

use super::invitation::Invitation;
use super::{Hub, Session, Ticket};
use crate::protocol::{DeviceId, InvitationId, InviteeState, InviteeStatus, Text, UserId};

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubEvent {
    /// An invitation was sent; `invitees` are their states at send
    /// (INVITING, or OFFLINE for those with no device connected).
    InvitationCreated {
        invitation_id: InvitationId,
        inviter: UserId,
        invitees: Vec<InviteeStatus>,
        timeout_secs: u32,
        /// Unix milliseconds.
        deadline_ms: u64,
        extended_data: Text,
    },
    /// One invitee's state changed: RECEIVED, ACCEPTED, REFUSED, CANCELLED
    /// or TIMEOUT. `extended_data` is the answer's or the cancel's.
    InviteeChanged {
        invitation_id: InvitationId,
        inviter: UserId,
        invitee: UserId,
        state: InviteeState,
        extended_data: Text,
    },
    /// Every invitee is final; `invitees` are their final states.
    InvitationEnded {
        invitation_id: InvitationId,
        inviter: UserId,
        invitees: Vec<InviteeStatus>,
    },
    /// A device logged in at this hub.
    DeviceOnline { user: UserId, device: DeviceId },
    /// A device's session ended: `reason` is `logout`, `replaced` (the same
    /// device logged in again), `abandoned` (its connection did not come back
    /// within the grace period), `token expired` or `kicked` (by the server
    /// API).
    DeviceOffline {
        user: UserId,
        device: DeviceId,
        reason: &'static str,
    },
}

impl HubEvent {
    /// The invitation the event is about, if any.
    pub fn invitation_id(&self) -> Option<&InvitationId> {
        match self {
            HubEvent::InvitationCreated { invitation_id, .. }
            | HubEvent::InviteeChanged { invitation_id, .. }
            | HubEvent::InvitationEnded { invitation_id, .. } => Some(invitation_id),
            HubEvent::DeviceOnline { .. } | HubEvent::DeviceOffline { .. } => None,
        }
    }
}

/// An event with when it happened and the change it tells of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observed {
    pub event: HubEvent,
    /// Unix milliseconds, on the hub's clock.
    pub at_ms: u64,
    /// The store ticket of the change (0: nothing stored, e.g. a login).
    pub ticket: Ticket,
}

/// Watches a hub. Called under the hub's locks: only queue.
pub trait HubObserver: Send + Sync {
    fn observe(&self, observed: Observed);
}

impl Hub {
    /// Tells `observer` of everything that happens from now on. A hub has at
    /// most one observer; a second call is refused (false).
    pub fn set_observer(&self, observer: Arc<dyn HubObserver>) -> bool {
        self.observer.set(observer).is_ok()
    }

    fn tell(&self, ticket: Ticket, event: impl FnOnce() -> HubEvent) {
        if let Some(observer) = self.observer.get() {
            observer.observe(Observed {
                event: event(),
                at_ms: self.clock.unix_millis(),
                ticket,
            });
        }
    }

    pub(super) fn tell_created(&self, invitation: &Invitation, timeout_secs: u32, data: Text) {
        self.tell(invitation.ticket, || HubEvent::InvitationCreated {
            invitation_id: invitation.id.clone(),
            inviter: invitation.inviter.clone(),
            invitees: invitation.statuses().to_vec(),
            timeout_secs,
            deadline_ms: invitation.deadline_ms,
            extended_data: data,
        });
    }

    pub(super) fn tell_changed(
        &self,
        invitation: &Invitation,
        invitee: &UserId,
        state: InviteeState,
        data: &Text,
    ) {
        self.tell(invitation.ticket, || HubEvent::InviteeChanged {
            invitation_id: invitation.id.clone(),
            inviter: invitation.inviter.clone(),
            invitee: invitee.clone(),
            state,
            extended_data: data.clone(),
        });
    }

    /// Tells of the invitation's end if it has ended (call after its
    /// invitees' changes were told).
    pub(super) fn tell_if_ended(&self, invitation: &Invitation) {
        if invitation.ended_at.is_some() {
            self.tell(invitation.ticket, || HubEvent::InvitationEnded {
                invitation_id: invitation.id.clone(),
                inviter: invitation.inviter.clone(),
                invitees: invitation.statuses().to_vec(),
            });
        }
    }

    /// A device of this hub's own (a device of another node is that node's
    /// to tell of).
    pub(super) fn tell_online(&self, session: &Session) {
        if !session.is_remote() {
            self.tell(0, || HubEvent::DeviceOnline {
                user: session.user.clone(),
                device: session.device.clone(),
            });
        }
    }

    pub(super) fn tell_offline(&self, session: &Session, reason: &'static str) {
        if !session.is_remote() {
            self.tell(0, || HubEvent::DeviceOffline {
                user: session.user.clone(),
                device: session.device.clone(),
                reason,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use parking_lot::Mutex;

    use super::super::test_support::{user, Inbox, Recording};
    use super::super::{Hub, HubConfig, ManualClock, Session};
    use super::{HubEvent, HubObserver, Observed};
    use crate::protocol::{Answer, CancelInvitation, DeviceId, InviteeState, SendInvitation, Text};

    #[derive(Default)]
    struct Told(Mutex<Vec<Observed>>);
    impl HubObserver for Told {
        fn observe(&self, observed: Observed) {
            self.0.lock().push(observed);
        }
    }

    impl Told {
        fn take(&self) -> Vec<Observed> {
            std::mem::take(&mut *self.0.lock())
        }
    }

    fn device(name: &str) -> DeviceId {
        DeviceId::parse(name, "device").expect("device id")
    }

    fn hub() -> (Arc<Hub>, ManualClock, Arc<Told>) {
        let clock = ManualClock::new(1_800_000_000);
        let (hub, _) = Hub::with_store_and_manual_clock(
            HubConfig::default(),
            clock.clone(),
            Arc::new(Recording::default()),
            Duration::from_secs(5),
            super::super::Outlets::default(),
        )
        .expect("hub");
        let told = Arc::new(Told::default());
        assert!(hub.set_observer(told.clone()));
        assert!(!hub.set_observer(told.clone()), "one observer per hub");
        (hub, clock, told)
    }

    fn online(hub: &Hub, name: &str, device_name: &str) -> Arc<Session> {
        let session = hub
            .login(
                user(name),
                device(device_name),
                "t",
                Arc::new(Inbox::default()),
            )
            .expect("login");
        hub.sync(&session);
        session
    }

    /// The invitee and state of each InviteeChanged, in order.
    fn changes(events: &[Observed]) -> Vec<(String, InviteeState)> {
        events
            .iter()
            .filter_map(|o| match &o.event {
                HubEvent::InviteeChanged { invitee, state, .. } => {
                    Some((invitee.to_string(), *state))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_invitation_is_told_created_then_each_change_then_ended() {
        let (hub, _clock, told) = hub();
        let alice = online(&hub, "alice", "a1");
        let bob = online(&hub, "bob", "b1");
        let online = told.take();
        assert!(matches!(
            online.as_slice(),
            [
                Observed {
                    event: HubEvent::DeviceOnline { .. },
                    ticket: 0,
                    ..
                },
                Observed {
                    event: HubEvent::DeviceOnline { .. },
                    ticket: 0,
                    ..
                }
            ]
        ));

        let mut send = SendInvitation::new(vec![user("bob"), user("carol")], 30);
        send.extended_data = Text::from("{\"room\":1}");
        let sent = hub.send(&alice, send).expect("send");
        let id = sent.invitation_id.clone();
        hub.acknowledge(&bob, &id);
        hub.accept(
            &bob,
            Answer {
                invitation_id: id.clone(),
                extended_data: Text::from("yes"),
            },
        )
        .expect("accept");
        hub.cancel(
            &alice,
            CancelInvitation {
                invitation_id: id.clone(),
                invitees: None,
                extended_data: Text::from("bye"),
            },
        )
        .expect("cancel");

        let events = told.take();
        let HubEvent::InvitationCreated {
            invitees,
            timeout_secs,
            extended_data,
            ..
        } = &events[0].event
        else {
            panic!("first told: {:?}", events[0]);
        };
        assert_eq!(*timeout_secs, 30);
        assert_eq!(&**extended_data, "{\"room\":1}");
        assert_eq!(
            invitees[1].state,
            InviteeState::Offline,
            "carol has no device"
        );
        assert_eq!(
            changes(&events),
            vec![
                ("bob".to_owned(), InviteeState::Received),
                ("bob".to_owned(), InviteeState::Accepted),
                ("carol".to_owned(), InviteeState::Cancelled),
            ]
        );
        let accepted = events
            .iter()
            .find_map(|o| match &o.event {
                HubEvent::InviteeChanged {
                    state: InviteeState::Accepted,
                    extended_data,
                    ..
                } => Some(extended_data.to_string()),
                _ => None,
            })
            .expect("accepted");
        assert_eq!(accepted, "yes", "the answer's data");
        let HubEvent::InvitationEnded { invitees, .. } = &events[events.len() - 1].event else {
            panic!("last told: {:?}", events.last());
        };
        assert_eq!(invitees[0].state, InviteeState::Accepted);
        assert_eq!(invitees[1].state, InviteeState::Cancelled);
        assert_eq!(events.len(), 5, "{events:?}");
        assert!(
            events
                .windows(2)
                .all(|w| w[0].ticket <= w[1].ticket && w[0].ticket > 0),
            "each carries its change's ticket"
        );
        assert!(events.iter().all(|o| o.event.invitation_id() == Some(&id)));
    }

    #[test]
    fn a_deadline_and_an_inviter_leaving_are_told_too() {
        let (hub, clock, told) = hub();
        let alice = online(&hub, "alice", "a1");
        online(&hub, "bob", "b1");
        hub.send(&alice, SendInvitation::new(vec![user("bob")], 5))
            .expect("send");
        told.take();
        hub.advance(&clock, Duration::from_secs(6));
        let events = told.take();
        assert_eq!(
            changes(&events),
            vec![("bob".to_owned(), InviteeState::Timeout)]
        );
        assert!(matches!(events[1].event, HubEvent::InvitationEnded { .. }));

        hub.send(&alice, SendInvitation::new(vec![user("bob")], 30))
            .expect("send");
        // The same device logging in again replaces the older session.
        let alice2 = hub
            .login(user("alice"), device("a1"), "t", Arc::new(Inbox::default()))
            .expect("alice again");
        hub.logout(&alice2);
        let events = told.take();
        let kinds: Vec<String> = events
            .iter()
            .map(|o| match &o.event {
                HubEvent::InvitationCreated { .. } => "created".to_owned(),
                HubEvent::InviteeChanged { state, .. } => state.name().to_owned(),
                HubEvent::InvitationEnded { .. } => "ended".to_owned(),
                HubEvent::DeviceOnline { .. } => "online".to_owned(),
                HubEvent::DeviceOffline { reason, .. } => format!("offline {reason}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "created",
                "offline replaced",
                "online",
                "offline logout",
                "CANCELLED",
                "ended"
            ]
        );
    }
}
