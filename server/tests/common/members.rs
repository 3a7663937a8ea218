//! Clients (pool dispatch: hundreds share a few threads) that record what
//! their application was told, for the fault tests that count each event
//! per invitation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use beckon::protocol::{
    ConnectionReason, ConnectionState, InvitationId, InviteeState, Push, UserId,
};
use beckon::{Client, ClientConfig, DispatchMode, Event};

/// What one client's application was told, by invitation.
#[derive(Default)]
pub struct Told {
    pub received: HashMap<InvitationId, u32>,
    pub accepted: HashMap<InvitationId, u32>,
    pub refused: HashMap<InvitationId, u32>,
    /// INVITATION_TIMEOUT (to an invitee).
    pub timed_out: HashMap<InvitationId, u32>,
    /// INVITATION_RESPONSE_TIMEOUT naming the invitation (to its inviter).
    pub response_timeout: HashMap<InvitationId, u32>,
    pub cancelled: HashMap<InvitationId, u32>,
    /// INVITATION_USER_STATE_CHANGED, in order.
    pub states: HashMap<InvitationId, Vec<InviteeState>>,
    /// Connection state changes, and when.
    pub links: Vec<(ConnectionState, ConnectionReason, Instant)>,
}

/// How often `map` counts `id`.
pub fn count(map: &HashMap<InvitationId, u32>, id: &InvitationId) -> u32 {
    map.get(id).copied().unwrap_or(0)
}

impl Told {
    fn record(&mut self, event: &Event) {
        let bump = |map: &mut HashMap<InvitationId, u32>, id: &InvitationId| {
            *map.entry(id.clone()).or_default() += 1;
        };
        match event {
            Event::ConnectionStateChanged { state, reason } => {
                self.links.push((*state, *reason, Instant::now()))
            }
            Event::TokenWillExpire { .. } => {}
            Event::Invitation(push) => match push {
                Push::InvitationReceived { invitation_id, .. } => {
                    bump(&mut self.received, invitation_id)
                }
                Push::InvitationAccepted { invitation_id, .. } => {
                    bump(&mut self.accepted, invitation_id)
                }
                Push::InvitationRefused { invitation_id, .. } => {
                    bump(&mut self.refused, invitation_id)
                }
                Push::InvitationTimeout { invitation_id, .. } => {
                    bump(&mut self.timed_out, invitation_id)
                }
                Push::InvitationResponseTimeout { invitation_id, .. } => {
                    bump(&mut self.response_timeout, invitation_id)
                }
                Push::InvitationCancelled { invitation_id, .. } => {
                    bump(&mut self.cancelled, invitation_id)
                }
                Push::UserStateChanged {
                    invitation_id,
                    state,
                    ..
                } => self
                    .states
                    .entry(invitation_id.clone())
                    .or_default()
                    .push(*state),
                // No push targets in these tests.
                Push::InvitationPushResult { .. } => {}
                Push::KickedOut | Push::TokenExpired | Push::TokenWillExpire { .. } => {}
            },
        }
    }

    /// The connection state changes, without their times.
    pub fn changes(&self) -> Vec<(ConnectionState, ConnectionReason)> {
        self.links.iter().map(|(s, r, _)| (*s, *r)).collect()
    }

    /// Logged in afresh after losing the connection: CONNECTED (LOGIN) after
    /// a RECONNECTING.
    pub fn came_back(&self) -> bool {
        let changes = self.changes();
        let away = changes
            .iter()
            .position(|(s, _)| *s == ConnectionState::Reconnecting);
        away.is_some_and(|at| {
            changes[at..].contains(&(ConnectionState::Connected, ConnectionReason::Login))
        })
    }

    /// When the client was connected again after it lost its connection
    /// (CONNECTED after a RECONNECTING), if it was.
    pub fn back_at(&self) -> Option<Instant> {
        let away = self
            .links
            .iter()
            .position(|(s, _, _)| *s == ConnectionState::Reconnecting)?;
        self.links[away..]
            .iter()
            .find(|(s, _, _)| *s == ConnectionState::Connected)
            .map(|(_, _, at)| *at)
    }

    pub fn lost_connection(&self) -> bool {
        self.links
            .iter()
            .any(|(s, _, _)| *s == ConnectionState::Reconnecting)
    }
}

/// A client (pool dispatch) and what its application was told.
pub struct Member {
    pub client: Client,
    pub user: UserId,
    told: Arc<Mutex<Told>>,
}

impl Member {
    pub fn new(url: &str, user: &UserId, request_timeout: Duration) -> Member {
        let mut config = ClientConfig::new(url);
        config.dispatch = DispatchMode::Pool;
        config.request_timeout = request_timeout;
        let client = Client::new(config).unwrap();
        let told: Arc<Mutex<Told>> = Arc::default();
        let log = told.clone();
        client.set_event_handler(Some(Arc::new(move |event: &Event| {
            log.lock().unwrap().record(event);
        })));
        Member {
            client,
            user: user.clone(),
            told,
        }
    }

    pub fn told(&self) -> MutexGuard<'_, Told> {
        self.told.lock().unwrap()
    }
}
