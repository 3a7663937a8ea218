//! History on the Redis store, shared by every node: a device or the server
//! API reads the same list whichever node it asks, and a restart forgets
//! nothing.
//!
//! - `{prefix}:hist:USER`, a sorted set of the user's ended invitations.
//!   Every member has score 0 and reads `CREATED:ID:PART` (`CREATED` the
//!   sent time as 16 hex digits, `PART` `s`, `r` or `b` as in
//!   [`HistoryEntry::parts`]), so Redis keeps them in history's order
//!   (sent time, then id: ids all have one length) and a page is one
//!   `ZREVRANGEBYLEX` from the cursor. Trimmed to the newest `per_user` and
//!   to `keep` as invitations end; it expires `keep` after its last write.
//! - `{prefix}:hsum:ID`, the invitation's summary (postcard, as SQLite keeps
//!   it), expiring when the invitation leaves history.
//!
//! The writer thread adds a batch's entries in the batch's commit script,
//! after its records and before its `WAIT`, so a page never lacks an
//! invitation whose end a device was told of.

use std::collections::HashMap;
use std::time::Duration;

use beckon::protocol::{
    HistoryCursor, HistoryRole, InvitationPage, InvitationQuery, InvitationSummary, UserId,
};
use beckon::{Error, ErrorCode};
use redis::aio::ConnectionLike;

use super::keys::Keys;
use crate::store::queue::HistoryEntry;

/// How many members one read takes while it looks for a page's entries of
/// one part (a `sent` page skips the received ones).
const SCAN_CHUNK: usize = 128;

/// How many entries per user, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct HistoryLimits {
    pub per_user: usize,
    pub keep: Duration,
}

impl HistoryLimits {
    fn keep_ms(&self) -> u64 {
        u64::try_from(self.keep.as_millis()).unwrap_or(u64::MAX)
    }
}

fn member(created_ms: u64, id: &str, part: u8) -> String {
    format!("{created_ms:016x}:{id}:{}", part as char)
}

/// Appends `entries` to a call of the commit script (store/redis/scripts.rs
/// says the layout): each summary, each participant's member, and each
/// touched list trimmed to the newest `per_user`, its expiry renewed.
/// Entries already past keeping are left out. Writing an entry again
/// changes nothing (a retried batch).
pub(super) fn add_to_commit(
    call: &mut redis::ScriptInvocation<'_>,
    keys: &Keys,
    entries: &[&HistoryEntry],
    limits: HistoryLimits,
    now_ms: u64,
) {
    let keep_ms = limits.keep_ms();
    let kept: Vec<(&HistoryEntry, u64)> = entries
        .iter()
        .map(|e| {
            (
                *e,
                e.created_ms.saturating_add(keep_ms).saturating_sub(now_ms),
            )
        })
        .filter(|(_, left_ms)| *left_ms > 0)
        .collect();
    call.arg(kept.len());
    if kept.is_empty() {
        return;
    }
    let mut users: HashMap<&UserId, usize> = HashMap::new();
    for (entry, _) in &kept {
        for (user, _) in &entry.parts {
            let next = users.len() + 1;
            if let std::collections::hash_map::Entry::Vacant(slot) = users.entry(user) {
                slot.insert(next);
                call.key(keys.history(user));
            }
        }
    }
    call.arg(limits.per_user).arg(keep_ms).arg(users.len());
    for (entry, left_ms) in &kept {
        call.key(keys.history_summary(&entry.id));
        call.arg(*left_ms)
            .arg(&entry.encoded[..])
            .arg(entry.parts.len());
        for (user, part) in &entry.parts {
            call.arg(users.get(user).copied().unwrap_or(0)).arg(member(
                entry.created_ms,
                entry.id.as_str(),
                *part,
            ));
        }
    }
}

/// `user`'s page that `query` asks for (checked already: `limit` is its page
/// size), newest first, leaving out what was sent before `cutoff_ms`.
pub async fn page<C: ConnectionLike>(
    conn: &mut C,
    keys: &Keys,
    user: &UserId,
    query: &InvitationQuery,
    limit: usize,
    cutoff_ms: u64,
) -> beckon::Result<InvitationPage> {
    let failed = |e: redis::RedisError| {
        Error::new(
            ErrorCode::Server,
            format!("history: cannot read from redis: {e}"),
        )
    };
    let key = keys.history(user);
    let mut max = match query.until_ms {
        0 => "+".to_string(),
        until => format!("({until:016x}"),
    };
    if let Some(cursor) = query.cursor.as_deref() {
        let cursor = HistoryCursor::parse(cursor)?;
        let bound = format!("({:016x}:{}:", cursor.created_ms, cursor.id);
        if max == "+" || bound < max {
            max = bound;
        }
    }
    let min = format!("[{:016x}", query.since_ms.max(cutoff_ms));
    let mut found: Vec<InvitationSummary> = Vec::with_capacity(limit + 1);
    let mut offset = 0;
    let chunk = match query.role {
        HistoryRole::Any => limit + 1,
        _ => SCAN_CHUNK.max(limit + 1),
    };
    while found.len() <= limit {
        let members: Vec<String> = redis::cmd("ZREVRANGEBYLEX")
            .arg(&key)
            .arg(&max)
            .arg(&min)
            .arg("LIMIT")
            .arg(offset)
            .arg(chunk)
            .query_async(conn)
            .await
            .map_err(failed)?;
        offset += members.len();
        let ids: Vec<&str> = members
            .iter()
            .filter_map(|m| wanted(m, query.role))
            .collect();
        if !ids.is_empty() {
            let mut get = redis::cmd("MGET");
            for id in &ids {
                get.arg(keys.history_summary_of(id));
            }
            let blobs: Vec<Option<Vec<u8>>> = get.query_async(conn).await.map_err(failed)?;
            for blob in blobs.into_iter().flatten() {
                // A summary this server cannot read (a newer layout) is left
                // out rather than failing the page.
                match postcard::from_bytes::<InvitationSummary>(&blob) {
                    Ok(summary) => found.push(summary),
                    Err(e) => tracing::warn!(error = %e, "history: an unreadable summary in redis"),
                }
                if found.len() > limit {
                    break;
                }
            }
        }
        if members.len() < chunk {
            break;
        }
    }
    let more = found.len() > limit;
    found.truncate(limit);
    Ok(InvitationPage::of(found, more))
}

/// The id in `member` when its part is one `role` asks for.
fn wanted(member: &str, role: HistoryRole) -> Option<&str> {
    let rest = member.get(17..)?;
    let (id, part) = rest.rsplit_once(':')?;
    let matches = match role {
        HistoryRole::Any => true,
        HistoryRole::Sent => part == "s" || part == "b",
        HistoryRole::Received => part == "r" || part == "b",
    };
    matches.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_sort_as_history_does_and_name_their_part() {
        let older = member(
            1_700_000_000_000,
            "00000000-0000-4000-8000-00000000000b",
            b's',
        );
        let newer = member(
            1_700_000_000_001,
            "00000000-0000-4000-8000-00000000000a",
            b'r',
        );
        let same_time_higher_id = member(
            1_700_000_000_001,
            "00000000-0000-4000-8000-00000000000c",
            b'b',
        );
        assert!(older < newer && newer < same_time_higher_id);
        assert_eq!(
            wanted(&newer, HistoryRole::Received),
            Some("00000000-0000-4000-8000-00000000000a")
        );
        assert_eq!(wanted(&newer, HistoryRole::Sent), None);
        assert!(wanted(&same_time_higher_id, HistoryRole::Sent).is_some());
        assert_eq!(wanted("short", HistoryRole::Any), None);
    }
}
