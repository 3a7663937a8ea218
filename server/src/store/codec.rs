//! How the SQLite store encodes an invitation's record: postcard (serde's
//! field order, integers as varints, no field names). About a third of the
//! size of the same record as JSON and several times faster to write, which
//! matters twice: the writer encodes every change, and smaller rows put the
//! invitations a busy server changes into fewer pages per group commit.
//! Not self-describing: a change to `InvitationRecord` needs a schema
//! version and a migration that re-encodes the rows. `beckon-server store
//! dump` prints the records as JSON for people.

use beckon::hub::InvitationRecord;

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
