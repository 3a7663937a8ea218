//! Reading a Redis store at start: its schema, the node's invitations (its
//! own, and those of nodes whose lease lapsed), every push target, the id
//! key. Anything that cannot be read stops the start with the key and the
//! cause named; nothing is deleted or rewritten.

use beckon::hub::{InvitationRecord, PushTargetRecord, Recovered};
use beckon::protocol::InvitationId;
use redis::{Commands, Connection};

use super::keys::Keys;
use super::scripts;
use crate::store::OpenError;

/// The layout this server writes; a Redis holding a newer one is refused.
pub const SCHEMA: i64 = 1;

/// Ids read per round trip.
const CHUNK: usize = 1000;

/// Where the store is, for messages (the URL without its password).
pub(super) struct Place<'a> {
    pub url: &'a str,
    pub keys: &'a Keys,
}

impl Place<'_> {
    pub fn error(&self, what: &str, cause: impl std::fmt::Display) -> OpenError {
        OpenError(format!("redis {}: {what}: {cause}", self.url))
    }
}

/// Checks (or, on an empty Redis, writes) the schema version.
pub(super) fn check_schema(conn: &mut Connection, place: &Place) -> Result<(), OpenError> {
    let meta = place.keys.meta();
    let _: bool = conn
        .hset_nx(&meta, "schema", SCHEMA)
        .map_err(|e| place.error("cannot write its schema version", e))?;
    let stored: Option<String> = conn
        .hget(&meta, "schema")
        .map_err(|e| place.error("cannot read its schema version", e))?;
    let stored = stored.unwrap_or_default();
    match stored.parse::<i64>() {
        Ok(SCHEMA) => Ok(()),
        Ok(newer) if newer > SCHEMA => Err(OpenError(format!(
            "redis {}: {meta} says schema {newer}, newer than this server's {SCHEMA}: \
             a newer beckon-server wrote it; it was left as it is",
            place.url
        ))),
        _ => Err(OpenError(format!(
            "redis {}: {meta} holds schema {stored:?}, which no beckon-server wrote; \
             it was left as it is",
            place.url
        ))),
    }
}

/// The other nodes that share this store and are running (their lease is
/// held), and those whose lease lapsed.
pub(super) fn other_nodes(
    conn: &mut Connection,
    place: &Place,
    me: &str,
) -> Result<(Vec<String>, Vec<String>), OpenError> {
    let names: Vec<String> = conn
        .smembers(place.keys.nodes())
        .map_err(|e| place.error("cannot list its nodes", e))?;
    let mut live = Vec::new();
    let mut lapsed = Vec::new();
    for name in names.into_iter().filter(|n| n != me) {
        let held: bool = conn
            .exists(place.keys.lease(&name))
            .map_err(|e| place.error("cannot read a node's lease", e))?;
        if held {
            live.push(name);
        } else {
            lapsed.push(name);
        }
    }
    Ok((live, lapsed))
}

/// Moves the invitations of a node whose lease lapsed to this one; their
/// ids (None: that node is alive after all).
pub(super) fn adopt(
    conn: &mut Connection,
    place: &Place,
    me: &str,
    epoch: i64,
    dead: &str,
) -> Result<Option<Vec<String>>, OpenError> {
    let moved: Option<Vec<String>> = scripts::adopt()
        .key(place.keys.lease(dead))
        .key(place.keys.owned(dead))
        .key(place.keys.lease(me))
        .key(place.keys.owned(me))
        .key(place.keys.nodes())
        .arg(epoch)
        .arg(dead)
        .arg(me)
        .arg(place.keys.invitation_prefix())
        .invoke(conn)
        .map_err(|e| place.error(&format!("cannot take over node {dead:?}"), e))?;
    Ok(moved)
}

/// Everything the hub starts from: this node's invitations, every push
/// target, the id key; and where the stream of push-target changes stood
/// before the targets were read (the changes after it are read from there:
/// some may be in what was read too, and applying them again is harmless).
pub(super) fn recover(
    conn: &mut Connection,
    place: &Place,
    me: &str,
) -> Result<(Recovered, String), OpenError> {
    let changes = place.keys.push_target_changes();
    let last: Vec<(String, redis::Value)> = redis::cmd("XREVRANGE")
        .arg(&changes)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(conn)
        .map_err(|e| place.error("cannot read the push-target changes", e))?;
    let from = last
        .first()
        .map_or_else(|| "0-0".to_owned(), |(id, _)| id.clone());
    let recovered = Recovered {
        id_key: id_key(conn, place)?,
        invitations: invitations(conn, place, me)?,
        push_targets: push_targets(conn, place)?,
    };
    Ok((recovered, from))
}

fn invitations(
    conn: &mut Connection,
    place: &Place,
    me: &str,
) -> Result<Vec<InvitationRecord>, OpenError> {
    let (owned, ids) = owned_ids(conn, place, me)?;
    records(conn, place, &owned, &ids)
}

/// The key of `me`'s set of invitations, and the ids it lists.
pub(super) fn owned_ids(
    conn: &mut Connection,
    place: &Place,
    me: &str,
) -> Result<(String, Vec<String>), OpenError> {
    let owned = place.keys.owned(me);
    let ids: Vec<String> = conn
        .smembers(&owned)
        .map_err(|e| place.error("cannot list the node's invitations", e))?;
    Ok((owned, ids))
}

/// The records of `ids` (listed in the set `owned`); ids with no record
/// (claimed, never stored) are skipped.
pub(super) fn records(
    conn: &mut Connection,
    place: &Place,
    owned: &str,
    ids: &[String],
) -> Result<Vec<InvitationRecord>, OpenError> {
    let mut records = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        let mut keys = Vec::with_capacity(chunk.len());
        for id in chunk {
            let parsed = InvitationId::parse(id, "invitation_id").map_err(|e| {
                OpenError(format!(
                    "redis {}: {owned} lists {id:?}, not an invitation id ({}); \
                     it was left as it is",
                    place.url, e.message
                ))
            })?;
            let key = place.keys.invitation(&parsed);
            pipe.cmd("HMGET").arg(&key).arg("v").arg("r");
            keys.push(key);
        }
        let rows: Vec<(Option<String>, Option<Vec<u8>>)> = pipe
            .query(conn)
            .map_err(|e| place.error("cannot read invitations", e))?;
        for ((id, key), row) in chunk.iter().zip(&keys).zip(rows) {
            match row {
                (Some(version), Some(bytes)) => {
                    let version: i64 = version.parse().map_err(|_| {
                        OpenError(format!(
                            "redis {}: {key} has version {version:?}; it was left as it is",
                            place.url
                        ))
                    })?;
                    let record =
                        crate::store::open::decode(id, version, &bytes).map_err(|cause| {
                            OpenError(format!(
                                "redis {}: {key} cannot be read: {cause}; it was left as it is",
                                place.url
                            ))
                        })?;
                    records.push(record);
                }
                // An id claimed for a send that never committed (the node
                // stopped first: nothing was acknowledged), or a key removed
                // by hand: nothing to restore.
                _ => tracing::info!(key = %key, "claimed but never stored: skipped"),
            }
        }
    }
    Ok(records)
}

fn push_targets(conn: &mut Connection, place: &Place) -> Result<Vec<PushTargetRecord>, OpenError> {
    let key = place.keys.push_targets();
    let fields: Vec<(String, Vec<u8>)> = conn
        .hgetall(&key)
        .map_err(|e| place.error("cannot read the push targets", e))?;
    let mut targets = Vec::with_capacity(fields.len());
    for (field, bytes) in fields {
        let record = decode_target(&field, &bytes).map_err(|cause| {
            OpenError(format!(
                "redis {}: {key} field {field:?} cannot be read: {cause}; \
                 it was left as it is",
                place.url
            ))
        })?;
        targets.push(record);
    }
    Ok(targets)
}

/// A push target as stored: field "USER DEVICE", the encoded target.
pub fn decode_target(field: &str, bytes: &[u8]) -> Result<PushTargetRecord, String> {
    let (user, device) = field.split_once(' ').unwrap_or((field, ""));
    crate::store::open::decode_push_target(user, device, bytes)
}

/// The key idempotent ids are derived with: made by the first node that
/// starts, the same for every node after.
fn id_key(conn: &mut Connection, place: &Place) -> Result<[u8; 32], OpenError> {
    let key = place.keys.id_key();
    let fresh: [u8; 32] = rand::random();
    let _: bool = conn
        .set_nx(&key, &fresh[..])
        .map_err(|e| place.error("cannot write the id key", e))?;
    let stored: Vec<u8> = conn
        .get(&key)
        .map_err(|e| place.error("cannot read the id key", e))?;
    <[u8; 32]>::try_from(stored.as_slice()).map_err(|_| {
        OpenError(format!(
            "redis {}: {key} is {} bytes, not 32; it was left as it is",
            place.url,
            stored.len()
        ))
    })
}
