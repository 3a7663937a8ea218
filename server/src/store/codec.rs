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

/// The record in `bytes`, which must hold exactly one. A record as version
/// 2 wrote it (before `sent_by_server`) is read too, as not sent by the
/// server: a Redis store has no schema version to migrate by, and the two
/// encodings cannot be mistaken for each other (version 3 adds fields at the
/// end, so a version 2 record is too short for it and a version 3 one too
/// long for version 2: each is read as exactly one record of one layout).
pub fn decode(bytes: &[u8]) -> Result<InvitationRecord, String> {
    match exactly_one::<InvitationRecord>(bytes) {
        Ok(record) => Ok(record),
        Err(current) => match exactly_one::<v2::Record>(bytes) {
            Ok(old) => Ok(old.into()),
            Err(_) => Err(current),
        },
    }
}

fn exactly_one<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes(bytes).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the record", rest.len()));
    }
    Ok(value)
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
        let old: Record = super::exactly_one(bytes)?;
        let record = super::v2::Record {
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
        postcard::to_allocvec(&record).map_err(|e| e.to_string())
    }
}

/// Records as schema version 2 wrote them (before `sent_by_server`): read
/// by [`decode`], and rewritten by the migration to version 3.
pub mod v2 {
    use beckon::hub::{InvitationRecord, InviteeRecord};
    use beckon::protocol::{InvitationId, InviteeStatus, Notification, Text, UserId};
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize)]
    pub struct Record {
        pub id: InvitationId,
        pub version: u64,
        pub inviter: UserId,
        pub invitees: Vec<InviteeRecord>,
        pub extended_data: Text,
        pub notification: Option<Notification>,
        pub online_only: bool,
        pub idempotency_key: Option<Text>,
        pub deadline_ms: u64,
        pub ended_ms: Option<u64>,
        pub error_invitees: Vec<InviteeStatus>,
    }

    impl From<Record> for InvitationRecord {
        fn from(old: Record) -> InvitationRecord {
            InvitationRecord {
                id: old.id,
                version: old.version,
                inviter: old.inviter,
                invitees: old.invitees,
                extended_data: old.extended_data,
                notification: old.notification,
                online_only: old.online_only,
                idempotency_key: old.idempotency_key,
                deadline_ms: old.deadline_ms,
                ended_ms: old.ended_ms,
                error_invitees: old.error_invitees,
                sent_by_server: false,
                created_ms: 0,
            }
        }
    }

    /// `record` as version 2 encoded it (for tests of the migration).
    pub fn encode(record: &InvitationRecord) -> Result<Vec<u8>, String> {
        let old = Record {
            id: record.id.clone(),
            version: record.version,
            inviter: record.inviter.clone(),
            invitees: record.invitees.clone(),
            extended_data: record.extended_data.clone(),
            notification: record.notification.clone(),
            online_only: record.online_only,
            idempotency_key: record.idempotency_key.clone(),
            deadline_ms: record.deadline_ms,
            ended_ms: record.ended_ms,
            error_invitees: record.error_invitees.clone(),
        };
        postcard::to_allocvec(&old).map_err(|e| e.to_string())
    }

    /// A version 2 record, encoded as version 3 (not sent by the server).
    pub fn upgrade(bytes: &[u8]) -> Result<Vec<u8>, String> {
        let record: InvitationRecord = super::exactly_one::<Record>(bytes)?.into();
        let mut encoded = Vec::new();
        super::encode(&record, &mut encoded)?;
        Ok(encoded)
    }
}
