//! How the SQLite store encodes an invitation's record: postcard (serde's
//! field order, integers as varints, no field names). About a third of the
//! size of the same record as JSON and several times faster to write, which
//! matters twice: the writer encodes every change, and smaller rows put the
//! invitations a busy server changes into fewer pages per group commit.
//! Not self-describing: a change to `InvitationRecord` needs a schema
//! version and a migration that re-encodes the rows. `beckon-server store
//! dump` prints the records as JSON for people.

use beckon::hub::InvitationRecord;
use beckon::protocol::PushTarget;

/// Appends `record`'s encoding to `buffer`.
pub fn encode(record: &InvitationRecord, buffer: &mut Vec<u8>) -> Result<(), String> {
    let taken = std::mem::take(buffer);
    *buffer = postcard::to_extend(record, taken).map_err(|e| e.to_string())?;
    Ok(())
}

/// The record in `bytes`, which must hold exactly one.
pub fn decode(bytes: &[u8]) -> Result<InvitationRecord, String> {
    let (record, rest) = postcard::take_from_bytes(bytes).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the record", rest.len()));
    }
    Ok(record)
}

/// A push target as the `push_targets` table keeps it.
pub fn decode_target(bytes: &[u8]) -> Result<PushTarget, String> {
    let (target, rest) = postcard::take_from_bytes(bytes).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the push target", rest.len()));
    }
    Ok(target)
}

/// Records as schema version 1 wrote them (before invitees had pushed
/// devices): read once, by the migration to version 2.
pub mod v1 {
    use beckon::hub::{InvitationRecord, InviteeRecord};
    use beckon::protocol::{InvitationId, InviteeState, InviteeStatus, Notification, Text, UserId};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub struct Record {
        pub id: InvitationId,
        pub version: u64,
        pub inviter: UserId,
        pub invitees: Vec<Invitee>,
        pub extended_data: Text,
        pub notification: Option<Notification>,
        pub online_only: bool,
        pub idempotency_key: Option<Text>,
        pub deadline_ms: u64,
        pub ended_ms: Option<u64>,
        pub error_invitees: Vec<InviteeStatus>,
    }

    #[derive(Serialize, Deserialize)]
    pub struct Invitee {
        pub user: UserId,
        pub state: InviteeState,
        pub closed_offline: bool,
    }

    impl From<&InvitationRecord> for Record {
        fn from(record: &InvitationRecord) -> Record {
            Record {
                id: record.id.clone(),
                version: record.version,
                inviter: record.inviter.clone(),
                invitees: record
                    .invitees
                    .iter()
                    .map(|i| Invitee {
                        user: i.user.clone(),
                        state: i.state,
                        closed_offline: i.closed_offline,
                    })
                    .collect(),
                extended_data: record.extended_data.clone(),
                notification: record.notification.clone(),
                online_only: record.online_only,
                idempotency_key: record.idempotency_key.clone(),
                deadline_ms: record.deadline_ms,
                ended_ms: record.ended_ms,
                error_invitees: record.error_invitees.clone(),
            }
        }
    }

    /// `record` as version 1 encoded it (for tests of the migration).
    pub fn encode(record: &InvitationRecord) -> Result<Vec<u8>, String> {
        postcard::to_allocvec(&Record::from(record)).map_err(|e| e.to_string())
    }

    /// A version 1 record, encoded as version 2 (nobody was pushed).
    pub fn upgrade(bytes: &[u8]) -> Result<Vec<u8>, String> {
        let (old, rest): (Record, _) =
            postcard::take_from_bytes(bytes).map_err(|e| e.to_string())?;
        if !rest.is_empty() {
            return Err(format!("{} bytes after the record", rest.len()));
        }
        let record = InvitationRecord {
            id: old.id,
            version: old.version,
            inviter: old.inviter,
            invitees: old
                .invitees
                .into_iter()
                .map(|i| InviteeRecord {
                    user: i.user,
                    state: i.state,
                    closed_offline: i.closed_offline,
                    pushed: Vec::new(),
                })
                .collect(),
            extended_data: old.extended_data,
            notification: old.notification,
            online_only: old.online_only,
            idempotency_key: old.idempotency_key,
            deadline_ms: old.deadline_ms,
            ended_ms: old.ended_ms,
            error_invitees: old.error_invitees,
        };
        let mut encoded = Vec::new();
        super::encode(&record, &mut encoded)?;
        Ok(encoded)
    }
}
