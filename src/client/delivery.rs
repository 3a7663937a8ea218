//! What the dispatcher runs for a client: operation callbacks, the client's
//! own events, and the hub's pushes, which it deduplicates (rule 9),
//! acknowledges (rule 4) and hands to the application's handler.

use std::sync::atomic::Ordering;

use super::dispatcher::{Job, JobRunner};
use super::{ClientCore, Event};
use crate::log::Level;
use crate::protocol::{ConnectionReason, ConnectionState, Push};

impl ClientCore {
    pub(super) fn deliver(&self, event: &Event) {
        if let Event::ConnectionStateChanged { state, .. } = event {
            self.connection_state
                .store(*state as i32, Ordering::Release);
        }
        #[cfg(feature = "test-hooks")]
        crate::testing::maybe_panic(crate::testing::PanicPoint::Dispatch);
        let _delivering = self.delivering.lock();
        let handler = self.handler.read().clone();
        if let Some(handler) = handler {
            handler(event);
        }
    }
}

impl JobRunner for ClientCore {
    fn run(&self, job: Job, shutdown: bool) {
        match job {
            Job::Call(call) => call.run(shutdown),
            Job::Event(_) | Job::Push { .. } | Job::Link { .. } if shutdown => {}
            // A network transport reconnecting: shown only for the current
            // login; DISCONNECTED ends it.
            Job::Link {
                login_epoch,
                state,
                reason,
            } => {
                if state == ConnectionState::Disconnected {
                    self.session_ended(reason, login_epoch);
                } else if self.connection_of(login_epoch).is_some() {
                    self.deliver(&Event::ConnectionStateChanged { state, reason });
                }
            }
            Job::Event(event) => self.deliver(&event),
            // Invitation pushes of an older login are still shown: they were
            // queued before that login's DISCONNECTED. Session notices of an
            // older login are not (that session is gone).
            Job::Push {
                login_epoch,
                user,
                push,
            } => {
                match push {
                    Push::KickedOut => self.session_ended(ConnectionReason::KickedOut, login_epoch),
                    Push::TokenExpired => {
                        self.session_ended(ConnectionReason::TokenExpired, login_epoch)
                    }
                    Push::TokenWillExpire { seconds_left } => {
                        if login_epoch == self.login_epoch.load(Ordering::Acquire) {
                            self.deliver(&Event::TokenWillExpire { seconds_left })
                        }
                    }
                    Push::InvitationReceived {
                        ref invitation_id,
                        seconds_left,
                        ..
                    } => {
                        // Receipts are idempotent at the hub: send one for every
                        // delivery of the current login (a repeat after a
                        // re-login included; an older login's push is handed
                        // over again by the new login's sync), and show the
                        // invitation once per user (rule 9).
                        if let Some(conn) = self.connection_of(login_epoch) {
                            conn.acknowledge(invitation_id);
                        }
                        if !self
                            .seen
                            .lock()
                            .first_sight(user, invitation_id, seconds_left)
                        {
                            return;
                        }
                        crate::log!(Level::Info, "room", "invitation received: {invitation_id}");
                        self.deliver(&Event::Invitation(push));
                    }
                    // Everything else is shown as it comes, each once: the
                    // hub sends it once and the transport drops repeats.
                    // Push results in particular are not rule 9's business
                    // (several come for one invitation, one per device).
                    other => self.deliver(&Event::Invitation(other)),
                }
            }
        }
    }
}
