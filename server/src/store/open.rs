//! Opening a data directory: its lock, its database's schema version (with
//! the migrations up to this server's), and what it holds. Every way it can
//! fail is refused with the file and the cause named; nothing that cannot be
//! read is deleted or rewritten.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use beckon::hub::{InvitationRecord, PushTargetRecord, Recovered};
use beckon::protocol::{DeviceId, IdHashBuilder, InvitationId, InvitationSummary, UserId};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use super::schema::{APPLICATION_ID, CURRENT, ID_KEY, MIGRATIONS, REWRITES};
use crate::config::Durability;

/// The database in a data directory.
pub const DATABASE_FILE: &str = "beckon.db";
/// Held (flock) by the server that owns the directory; it holds that
/// server's pid.
pub const LOCK_FILE: &str = "beckon.lock";

/// Why a data directory cannot be used. The message names the file and the
/// cause.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

/// An open, locked, up-to-date database.
pub(super) struct Opened {
    pub conn: Connection,
    /// Dropping it lets the directory go.
    pub lock: File,
    pub path: PathBuf,
}

/// Locks `dir` and opens its database, creating both if missing and running
/// the migrations it needs.
pub(super) fn open(dir: &Path, durability: Durability) -> Result<Opened, OpenError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        OpenError(format!(
            "data directory {}: cannot create it: {e}",
            dir.display()
        ))
    })?;
    let lock = lock(dir)?;
    let path = dir.join(DATABASE_FILE);
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| OpenError(format!("{}: cannot open it: {e}", path.display())))?;
    let version = check_identity(&conn, &path)?;
    let synchronous = match durability {
        Durability::Normal => "NORMAL",
        Durability::Full => "FULL",
    };
    // A page cache large enough for the pages a busy server changes between
    // checkpoints (64 MiB at most; SQLite's default is 2 MiB).
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous};"
    ))
    .map_err(|e| write_error(&path, &e))?;
    migrate(&conn, &path, version)?;
    Ok(Opened { conn, lock, path })
}

/// Takes the directory's lock, or names the server that has it.
fn lock(dir: &Path) -> Result<File, OpenError> {
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| {
            OpenError(format!(
                "data directory {} is not writable: cannot open {}: {e}",
                dir.display(),
                path.display()
            ))
        })?;
    // SAFETY: flock on a descriptor this function owns; no memory involved.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if locked != 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == std::io::ErrorKind::WouldBlock {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another process".to_owned()
            } else {
                format!("another process (pid {holder})")
            };
            return Err(OpenError(format!(
                "{} is in use by {who}: one data directory serves one beckon-server (lock {})",
                dir.join(DATABASE_FILE).display(),
                path.display()
            )));
        }
        return Err(OpenError(format!(
            "{}: cannot lock it: {error}",
            path.display()
        )));
    }
    let written = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    written.map_err(|e| {
        OpenError(format!(
            "data directory {} is not writable: {}: {e}",
            dir.display(),
            path.display()
        ))
    })?;
    Ok(file)
}

/// Whether no process holds the directory's lock (no server runs on it).
pub(super) fn lock_is_free(dir: &Path) -> bool {
    let Ok(file) = File::open(dir.join(LOCK_FILE)) else {
        return true; // never locked
    };
    // SAFETY: flock on a descriptor this function owns.
    let taken = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    // Closing the file lets the lock go.
    taken
}

/// The file's schema version, after making sure it is a Beckon store this
/// server can read.
pub(super) fn check_identity(conn: &Connection, path: &Path) -> Result<i32, OpenError> {
    let read = |pragma: &str| -> Result<i32, OpenError> {
        conn.query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))
            .map_err(|e| read_error(path, &e))
    };
    let application_id = read("application_id")?;
    let version = read("user_version")?;
    if application_id != 0 && application_id != APPLICATION_ID {
        return Err(OpenError(format!(
            "{} is not a Beckon store (application id {application_id:#x}); it was left as it is",
            path.display()
        )));
    }
    if version > CURRENT {
        return Err(OpenError(format!(
            "{} has schema version {version}, newer than this beckon-server reads ({CURRENT}): \
             run the newer beckon-server, or restore a backup made for this one; the file was left as it is",
            path.display()
        )));
    }
    if application_id == 0 {
        // A new file, or some other program's database.
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
            .map_err(|e| read_error(path, &e))?;
        if tables > 0 {
            return Err(OpenError(format!(
                "{} is a SQLite database, but not a Beckon store; it was left as it is",
                path.display()
            )));
        }
    }
    Ok(version)
}

/// Runs the migrations from `version` up, each in one transaction.
fn migrate(conn: &Connection, path: &Path, version: i32) -> Result<(), OpenError> {
    let from = usize::try_from(version).unwrap_or(0);
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(from) {
        let to = index + 1;
        let rewrite = REWRITES.get(index).copied().flatten();
        let steps = || -> Result<(), String> {
            conn.execute_batch(&format!("BEGIN IMMEDIATE; {migration};"))
                .map_err(|e| e.to_string())?;
            if let Some(rewrite) = rewrite {
                rewrite_records(conn, rewrite)?;
            }
            conn.execute_batch(&format!(
                "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {to}; COMMIT;"
            ))
            .map_err(|e| e.to_string())
        };
        if let Err(e) = steps() {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(OpenError(format!(
                "{}: migrating the schema from version {index} to {to} failed: {e}; the file was left at version {index}",
                path.display()
            )));
        }
        tracing::info!(file = %path.display(), from = index, to, "store schema migrated");
    }
    Ok(())
}

/// Rewrites every invitation's record with `rewrite` (inside the
/// migration's transaction).
fn rewrite_records(conn: &Connection, rewrite: super::schema::Rewrite) -> Result<(), String> {
    let mut read = conn
        .prepare("SELECT row, id, record FROM invitations")
        .map_err(|e| e.to_string())?;
    let mut rows = read.query([]).map_err(|e| e.to_string())?;
    let mut rewritten = Vec::new();
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        let number: i64 = row.get(0).map_err(|e| e.to_string())?;
        let id: String = row.get(1).map_err(|e| e.to_string())?;
        let bytes: Vec<u8> = row.get(2).map_err(|e| e.to_string())?;
        let record = rewrite(&bytes).map_err(|e| format!("invitation {id:?}: {e}"))?;
        rewritten.push((number, record));
    }
    let mut write = conn
        .prepare("UPDATE invitations SET record = ?2 WHERE row = ?1")
        .map_err(|e| e.to_string())?;
    for (number, record) in rewritten {
        write
            .execute(params![number, record])
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// What a store holds: for the hub, and the row of each invitation for the
/// writer.
pub(super) struct Loaded {
    pub recovered: Recovered,
    pub rows: RowIndex,
}

/// Where each stored invitation's row is.
pub(super) type RowIndex = std::collections::HashMap<InvitationId, i64, IdHashBuilder>;

/// Reads what the store holds: the id key (made on first start) and every
/// invitation. A row that cannot be read stops the start.
pub(super) fn load(conn: &Connection, path: &Path) -> Result<Loaded, OpenError> {
    let id_key = id_key(conn, path)?;
    let mut statement = conn
        .prepare("SELECT row, id, version, record FROM invitations")
        .map_err(|e| read_error(path, &e))?;
    let mut rows = statement.query([]).map_err(|e| read_error(path, &e))?;
    let mut invitations = Vec::new();
    let mut index = RowIndex::default();
    while let Some(row) = rows.next().map_err(|e| read_error(path, &e))? {
        let number: i64 = row.get(0).map_err(|e| read_error(path, &e))?;
        let id: String = row.get(1).map_err(|e| read_error(path, &e))?;
        let version: i64 = row.get(2).map_err(|e| read_error(path, &e))?;
        let bytes: Vec<u8> = row.get(3).map_err(|e| read_error(path, &e))?;
        let record = decode(&id, version, &bytes).map_err(|cause| {
            OpenError(format!(
                "{}: invitation {id:?} cannot be read: {cause}; the file was left as it is \
                 (`beckon-server store check` lists every such row)",
                path.display()
            ))
        })?;
        index.insert(record.id.clone(), number);
        invitations.push(record);
    }
    let push_targets = load_push_targets(conn, path)?;
    Ok(Loaded {
        recovered: Recovered {
            id_key,
            invitations,
            push_targets,
        },
        rows: index,
    })
}

/// The history kept of invitations sent at or after `since_ms`, at most
/// `per_user` for any one user, oldest sent first. Rows are read newest
/// first, so a user past `per_user` takes no more memory. A row that cannot
/// be read is skipped with a warning: history is a convenience, and the
/// row's invitations have ended anyway.
pub(super) fn load_history(
    conn: &Connection,
    path: &Path,
    since_ms: u64,
    per_user: usize,
) -> Result<Vec<InvitationSummary>, OpenError> {
    let mut statement = conn
        .prepare("SELECT row, summaries FROM history WHERE newest_ms >= ?1 ORDER BY row DESC")
        .map_err(|e| read_error(path, &e))?;
    let since = i64::try_from(since_ms).unwrap_or(i64::MAX);
    let mut rows = statement.query([since]).map_err(|e| read_error(path, &e))?;
    let mut history = Vec::new();
    let mut per_user_count: std::collections::HashMap<UserId, usize> = Default::default();
    while let Some(row) = rows.next().map_err(|e| read_error(path, &e))? {
        let number: i64 = row.get(0).map_err(|e| read_error(path, &e))?;
        let bytes: Vec<u8> = row.get(1).map_err(|e| read_error(path, &e))?;
        let summaries = match postcard::from_bytes::<Vec<InvitationSummary>>(&bytes) {
            Ok(summaries) => summaries,
            Err(error) => {
                tracing::warn!(
                    file = %path.display(),
                    row = number,
                    %error,
                    "a history row cannot be read: its invitations are left out of history"
                );
                continue;
            }
        };
        for summary in summaries.into_iter().rev() {
            if summary.created_ms < since_ms {
                continue;
            }
            let mut wanted = false;
            let users = std::iter::once(&summary.inviter)
                .chain(summary.invitees.iter().map(|i| &i.user_id));
            for user in users {
                let count = per_user_count.entry(user.clone()).or_default();
                if *count < per_user {
                    *count += 1;
                    wanted = true;
                }
            }
            if wanted {
                history.push(summary);
            }
        }
    }
    // Rows are in commit order; history is listed by when they were sent.
    history.sort_by_key(InvitationSummary::position);
    Ok(history)
}

/// Every device's push target. A row that cannot be read stops the start.
fn load_push_targets(conn: &Connection, path: &Path) -> Result<Vec<PushTargetRecord>, OpenError> {
    let mut statement = conn
        .prepare("SELECT user, device, target FROM push_targets")
        .map_err(|e| read_error(path, &e))?;
    let mut rows = statement.query([]).map_err(|e| read_error(path, &e))?;
    let mut targets = Vec::new();
    while let Some(row) = rows.next().map_err(|e| read_error(path, &e))? {
        let user: String = row.get(0).map_err(|e| read_error(path, &e))?;
        let device: String = row.get(1).map_err(|e| read_error(path, &e))?;
        let bytes: Vec<u8> = row.get(2).map_err(|e| read_error(path, &e))?;
        let record = decode_push_target(&user, &device, &bytes).map_err(|cause| {
            OpenError(format!(
                "{}: the push target of {user:?} device {device:?} cannot be read: {cause}; \
                 the file was left as it is",
                path.display()
            ))
        })?;
        targets.push(record);
    }
    Ok(targets)
}

/// One stored push target, with its row's user and device checked.
pub(super) fn decode_push_target(
    user: &str,
    device: &str,
    bytes: &[u8],
) -> Result<PushTargetRecord, String> {
    let user = UserId::parse(user, "user").map_err(|e| e.message)?;
    let device = DeviceId::parse(device, "device").map_err(|e| e.message)?;
    let target = super::codec::decode_target(bytes)?;
    target.validate().map_err(|e| e.message)?;
    Ok(PushTargetRecord {
        user,
        device,
        target,
    })
}

/// A record as a file of schema `schema` (older than this server's, for
/// `store check` and `store dump`, which change nothing) encoded it.
pub(super) fn decode_from(
    schema: i32,
    id: &str,
    version: i64,
    bytes: &[u8],
) -> Result<InvitationRecord, String> {
    let from = usize::try_from(schema).unwrap_or(0);
    let mut upgraded = None;
    for rewrite in REWRITES.iter().skip(from).flatten() {
        let current: &[u8] = upgraded.as_deref().unwrap_or(bytes);
        upgraded = Some(rewrite(current)?);
    }
    decode(id, version, upgraded.as_deref().unwrap_or(bytes))
}

/// One stored invitation, checked against its row's columns.
pub(super) fn decode(id: &str, version: i64, bytes: &[u8]) -> Result<InvitationRecord, String> {
    let record = super::codec::decode(bytes)?;
    if record.id.as_str() != id {
        return Err(format!("its record is of invitation {}", record.id));
    }
    if i64::try_from(record.version).ok() != Some(version) {
        return Err(format!(
            "its record is version {}, its row says {version}",
            record.version
        ));
    }
    Ok(record)
}

/// The key idempotent ids are derived with, made and stored on first start.
fn id_key(conn: &Connection, path: &Path) -> Result<[u8; 32], OpenError> {
    let stored: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            params![ID_KEY],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| read_error(path, &e))?;
    match stored {
        Some(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
            OpenError(format!(
                "{}: meta.{ID_KEY} is {} bytes, not 32; the file was left as it is",
                path.display(),
                bytes.len()
            ))
        }),
        None => {
            let key: [u8; 32] = rand::random();
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![ID_KEY, key.as_slice()],
            )
            .map_err(|e| write_error(path, &e))?;
            Ok(key)
        }
    }
}

fn read_error(path: &Path, error: &rusqlite::Error) -> OpenError {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => OpenError(format!(
            "{} is corrupt or not a database ({error}); it was left as it is: \
             restore a backup, or move it aside to start empty",
            path.display()
        )),
        _ => OpenError(format!("{}: cannot read it: {error}", path.display())),
    }
}

fn write_error(path: &Path, error: &rusqlite::Error) -> OpenError {
    use rusqlite::ErrorCode;
    match error.sqlite_error_code() {
        Some(ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied) => {
            OpenError(format!("{} is not writable: {error}", path.display()))
        }
        Some(ErrorCode::DiskFull) => {
            OpenError(format!("{}: the disk is full: {error}", path.display()))
        }
        _ => read_error(path, error),
    }
}
