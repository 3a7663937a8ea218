//! What a webhook says: one hub event as a Standard Webhooks payload,
//! `{"id", "type", "timestamp", "data"}` (docs/WEBHOOKS.md lists every
//! type and its data).

use beckon::hub::{HubEvent, Observed, Ticket};
use beckon::protocol::{InviteeState, InviteeStatus};
use serde_json::{json, Value};
use std::hash::{Hash, Hasher};

use crate::time::rfc3339;

/// Every event type, as endpoints' `events` filters name them.
pub const TYPES: [&str; 9] = [
    "invitation.created",
    "invitation.received",
    "invitation.accepted",
    "invitation.refused",
    "invitation.cancelled",
    "invitation.timed_out",
    "invitation.ended",
    "device.online",
    "device.offline",
];

/// One event, as every endpoint that wants it delivers it.
pub struct Event {
    /// `evt_` and 32 hex digits: the `webhook-id` of every attempt, for
    /// receivers to drop repeats.
    pub id: String,
    pub kind: &'static str,
    /// Events with the same key are delivered one after the other, in the
    /// order they happened: an invitation's, or a user's devices'.
    pub order_key: u64,
    /// The store ticket of the change: delivered once it is durable.
    pub ticket: Ticket,
    pub at_ms: u64,
    observed: HubEvent,
}

impl Event {
    pub fn new(observed: Observed) -> Event {
        let kind = kind_of(&observed.event);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        match &observed.event {
            HubEvent::InvitationCreated { invitation_id, .. }
            | HubEvent::InviteeChanged { invitation_id, .. }
            | HubEvent::InvitationEnded { invitation_id, .. } => invitation_id.hash(&mut hasher),
            HubEvent::DeviceOnline { user, .. } | HubEvent::DeviceOffline { user, .. } => {
                user.hash(&mut hasher)
            }
        }
        Event {
            id: format!("evt_{:032x}", rand::random::<u128>()),
            kind,
            order_key: hasher.finish(),
            ticket: observed.ticket,
            at_ms: observed.at_ms,
            observed: observed.event,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> String {
        let data = match &self.observed {
            HubEvent::InvitationCreated {
                invitation_id,
                inviter,
                invitees,
                timeout_secs,
                deadline_ms,
                extended_data,
            } => json!({
                "invitation_id": invitation_id,
                "inviter": inviter,
                "invitees": statuses(invitees),
                "timeout_secs": timeout_secs,
                "deadline": rfc3339(*deadline_ms),
                "extended_data": &**extended_data,
            }),
            HubEvent::InviteeChanged {
                invitation_id,
                inviter,
                invitee,
                state,
                extended_data,
            } => json!({
                "invitation_id": invitation_id,
                "inviter": inviter,
                "invitee": invitee,
                "state": state.name(),
                "extended_data": &**extended_data,
            }),
            HubEvent::InvitationEnded {
                invitation_id,
                inviter,
                invitees,
            } => json!({
                "invitation_id": invitation_id,
                "inviter": inviter,
                "invitees": statuses(invitees),
            }),
            HubEvent::DeviceOnline { user, device } => json!({
                "user_id": user,
                "device_id": device,
            }),
            HubEvent::DeviceOffline {
                user,
                device,
                reason,
            } => json!({
                "user_id": user,
                "device_id": device,
                "reason": reason,
            }),
        };
        json!({
            "id": self.id,
            "type": self.kind,
            "timestamp": rfc3339(self.at_ms),
            "data": data,
        })
        .to_string()
    }
}

pub fn kind_of(event: &HubEvent) -> &'static str {
    match event {
        HubEvent::InvitationCreated { .. } => "invitation.created",
        HubEvent::InviteeChanged { state, .. } => match state {
            InviteeState::Received => "invitation.received",
            InviteeState::Accepted => "invitation.accepted",
            InviteeState::Rejected => "invitation.refused",
            InviteeState::Cancelled => "invitation.cancelled",
            InviteeState::Timeout => "invitation.timed_out",
            // The hub tells no other change; were it to, it is still one.
            InviteeState::Inviting | InviteeState::Offline => "invitation.received",
        },
        HubEvent::InvitationEnded { .. } => "invitation.ended",
        HubEvent::DeviceOnline { .. } => "device.online",
        HubEvent::DeviceOffline { .. } => "device.offline",
    }
}

fn statuses(invitees: &[InviteeStatus]) -> Value {
    invitees
        .iter()
        .map(|i| json!({"user_id": i.user_id, "state": i.state.name()}))
        .collect()
}

/// An endpoint's `events` list: which types it gets.
#[derive(Clone, Debug)]
pub struct Filter {
    wanted: Vec<&'static str>,
}

impl Filter {
    /// Reads names (`invitation.accepted`), families (`invitation.*`) and
    /// `*`; refuses anything that matches no event type.
    pub fn parse(patterns: &[String]) -> Result<Filter, String> {
        if patterns.is_empty() {
            return Err("an empty list would send nothing (leave it out for every event)".into());
        }
        let mut wanted = Vec::new();
        for pattern in patterns {
            let matching: Vec<&'static str> = TYPES
                .iter()
                .copied()
                .filter(|kind| matches(pattern, kind))
                .collect();
            if matching.is_empty() {
                return Err(format!(
                    "'{pattern}' names no event (known: {}, a family such as invitation.*, or *)",
                    TYPES.join(", ")
                ));
            }
            wanted.extend(matching);
        }
        wanted.sort_unstable();
        wanted.dedup();
        Ok(Filter { wanted })
    }

    pub fn wants(&self, kind: &str) -> bool {
        self.wanted.contains(&kind)
    }
}

fn matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(family) if family.ends_with('.') => kind.starts_with(family),
        Some(_) => false,
        None => pattern == kind,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(patterns: &[&str]) -> Result<Filter, String> {
        Filter::parse(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn filters_take_names_families_and_everything() {
        let all = filter(&["*"]).unwrap();
        assert!(TYPES.iter().all(|kind| all.wants(kind)));
        let some = filter(&["invitation.accepted", "device.*"]).unwrap();
        assert!(some.wants("invitation.accepted"));
        assert!(some.wants("device.offline"));
        assert!(!some.wants("invitation.created"));
        for bad in [&["invitation.acepted"][..], &["invit*"], &["device."], &[]] {
            assert!(filter(bad).is_err(), "{bad:?}");
        }
        let message = filter(&["call.*"]).unwrap_err();
        assert!(message.contains("'call.*' names no event"), "{message}");
    }
}
