//! A user's invitation history: the query a device (or the server API)
//! makes, and the page it gets back (docs/PROTOCOL.md, "History").

use serde::{Deserialize, Serialize};

use super::{InvitationId, InviteeStatus, Text, UserId};
use crate::error::{Error, Result};

/// Which of a user's invitations a query asks for.
#[repr(i32)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryRole {
    /// Sent and received.
    #[default]
    Any = 0,
    /// Those the user sent (from a device, or the server API on its behalf).
    Sent = 1,
    /// Those the user was invited to.
    Received = 2,
}

/// A query of the calling user's ended invitations, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationQuery {
    #[serde(default)]
    pub role: HistoryRole,
    /// Only invitations sent at or after this (Unix milliseconds; 0: no
    /// bound).
    #[serde(default)]
    pub since_ms: u64,
    /// Only invitations sent before this (Unix milliseconds; 0: no bound).
    #[serde(default)]
    pub until_ms: u64,
    /// At most this many (1 to [`InvitationQuery::MAX_LIMIT`]; 0: 20).
    #[serde(default)]
    pub limit: u32,
    /// The `next_cursor` of the page before; none for the first page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Text>,
}

impl InvitationQuery {
    /// The most invitations one page holds.
    /// cbindgen:ignore
    pub const MAX_LIMIT: u32 = 100;
    /// What a limit of 0 means.
    /// cbindgen:ignore
    pub const DEFAULT_LIMIT: u32 = 20;

    /// Checks the fields; returns the page size.
    pub fn validate(&self) -> Result<usize> {
        if self.limit > Self::MAX_LIMIT {
            return Err(Error::invalid(format!(
                "query.limit: {} is outside 0..={}",
                self.limit,
                Self::MAX_LIMIT
            )));
        }
        if self.until_ms != 0 && self.until_ms <= self.since_ms {
            return Err(Error::invalid(format!(
                "query.until_ms: {} is not after query.since_ms ({})",
                self.until_ms, self.since_ms
            )));
        }
        if let Some(cursor) = &self.cursor {
            HistoryCursor::parse(cursor)?;
        }
        Ok(if self.limit == 0 {
            Self::DEFAULT_LIMIT as usize
        } else {
            self.limit as usize
        })
    }
}

/// One ended invitation as history keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationSummary {
    pub invitation_id: InvitationId,
    pub inviter: UserId,
    /// Every invitee with its final state.
    pub invitees: Vec<InviteeStatus>,
    /// When it was sent and when it ended (Unix milliseconds).
    pub created_ms: u64,
    pub ended_ms: u64,
    /// Sent through the server API on the inviter's behalf.
    #[serde(default)]
    pub sent_by_server: bool,
}

impl InvitationSummary {
    /// The order history lists invitations in: newest sent first, then by id.
    pub fn position(&self) -> HistoryCursor {
        HistoryCursor {
            created_ms: self.created_ms,
            id: self.invitation_id.clone(),
        }
    }

    /// Whether `user` took part in the role `role` asks for.
    pub fn has(&self, user: &UserId, role: HistoryRole) -> bool {
        let sent = &self.inviter == user;
        let received = self.invitees.iter().any(|i| &i.user_id == user);
        match role {
            HistoryRole::Any => sent || received,
            HistoryRole::Sent => sent,
            HistoryRole::Received => received,
        }
    }
}

/// One page of a query's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationPage {
    pub invitations: Vec<InvitationSummary>,
    /// Set when more may follow: the next page's `cursor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<Text>,
}

impl InvitationPage {
    /// A page of `invitations`, newest first; when `more` follow, its
    /// cursor is where the last one is.
    pub fn of(invitations: Vec<InvitationSummary>, more: bool) -> InvitationPage {
        let next_cursor = if more {
            invitations.last().map(|s| s.position().text())
        } else {
            None
        };
        InvitationPage {
            invitations,
            next_cursor,
        }
    }
}

/// Where a page ended: `<created_ms>-<invitation id>`. Opaque to clients.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HistoryCursor {
    pub created_ms: u64,
    pub id: InvitationId,
}

impl HistoryCursor {
    pub fn parse(text: &str) -> Result<HistoryCursor> {
        let bad = || {
            Error::invalid(format!(
                "query.cursor: '{text}' is not a cursor this server gave"
            ))
        };
        let (created, id) = text.split_once('-').ok_or_else(bad)?;
        Ok(HistoryCursor {
            created_ms: created.parse().map_err(|_| bad())?,
            id: InvitationId::parse(id, "query.cursor").map_err(|_| bad())?,
        })
    }

    pub fn text(&self) -> Text {
        Text::from(format!("{}-{}", self.created_ms, self.id))
    }
}
