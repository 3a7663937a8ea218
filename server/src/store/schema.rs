//! The SQLite store's schema, by number. `PRAGMA user_version` says which
//! version a file has; opening runs every migration above it, each in its own
//! transaction, and refuses a file from a newer server. A new version is a
//! new entry at the end of [`MIGRATIONS`], never an edit of an old one, and a
//! test opens a file of every older version (server/tests/store.rs).

/// `PRAGMA application_id`: marks a file as a Beckon store ("BCKN").
pub const APPLICATION_ID: i32 = 0x4243_4B4E;

/// The version this server writes.
pub const CURRENT: i32 = MIGRATIONS.len() as i32;

/// `MIGRATIONS[n]` takes a file from version `n` to `n + 1`: its SQL, then
/// (for a version whose records are encoded differently) a rewrite of every
/// invitation's record, from the older encoding to the newer.
pub const MIGRATIONS: &[&str] = &[
    // 1: invitations (the whole record, encoded as `codec.rs` says, with the
    // columns an operator or a later query selects on), and the store's own
    // settings. Rows are
    // numbered in the order invitations were first stored (`row`), so the
    // invitations a busy server changes sit together in a few pages at the
    // end of the table. Random ids as the key, or an index on them, would
    // spread every group commit over as many pages as it has changes: the
    // writer keeps the row of each id in memory instead (ids are unique by
    // the hub's rules; `store check` reports duplicates).
    "CREATE TABLE meta (
         key   TEXT PRIMARY KEY,
         value BLOB NOT NULL
     ) WITHOUT ROWID;
     CREATE TABLE invitations (
         row         INTEGER PRIMARY KEY,
         id          TEXT NOT NULL,
         version     INTEGER NOT NULL,
         inviter     TEXT NOT NULL,
         deadline_ms INTEGER NOT NULL,
         ended_ms    INTEGER,
         record      BLOB NOT NULL
     );",
    // 2: push targets, one per user and device (the target encoded with
    // postcard); invitation records gain each invitee's pushed devices, so
    // every record is rewritten (`REWRITES`).
    "CREATE TABLE push_targets (
         user   TEXT NOT NULL,
         device TEXT NOT NULL,
         target BLOB NOT NULL,
         PRIMARY KEY (user, device)
     ) WITHOUT ROWID;",
    // 3: invitation records gain `sent_by_server` (the server API's sends,
    // which rule 7 leaves alone) and `created_ms`, so every record is
    // rewritten; ended invitations are kept for history queries: one row
    // per group commit with the summaries of the invitations that ended in
    // it (postcard, as a `Vec`), and when the newest of them was sent (what
    // keeping is judged by).
    "CREATE TABLE history (
         row        INTEGER PRIMARY KEY,
         newest_ms  INTEGER NOT NULL,
         summaries  BLOB NOT NULL
     );
     CREATE INDEX history_newest ON history (newest_ms);",
];

/// Re-encodes one record of the version before.
pub type Rewrite = fn(&[u8]) -> Result<Vec<u8>, String>;

/// `REWRITES[n]`: how a record written at version `n` becomes one of
/// version `n + 1`, if it changes (`None`: records stay as they are).
pub const REWRITES: &[Option<Rewrite>] = &[
    None,
    Some(super::codec::v1::upgrade),
    Some(super::codec::v2::upgrade),
];

/// The `meta` key of the key idempotent invitation ids are derived with.
pub const ID_KEY: &str = "id_key";
