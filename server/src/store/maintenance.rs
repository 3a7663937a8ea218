//! What an operator runs on a data directory: `store check` (is it readable,
//! what does it hold), `store dump` (every invitation as a line of JSON),
//! `store compact` (give back free pages; the server must be stopped) and
//! `store backup` (a consistent copy, the server may run).

use std::path::{Path, PathBuf};

use beckon::hub::PushTargetRecord;
use rusqlite::{Connection, OpenFlags};

use super::open::{self, OpenError, DATABASE_FILE};
use crate::config::Durability;

/// What `store check` found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub path: PathBuf,
    pub schema_version: i32,
    /// `PRAGMA integrity_check`: "ok", or what is wrong.
    pub integrity: Vec<String>,
    pub open_invitations: u64,
    pub ended_invitations: u64,
    /// Devices with a push target.
    pub push_targets: u64,
    /// Invitations whose record cannot be read, with why.
    pub unreadable: Vec<(String, String)>,
    /// Push targets that cannot be read ("user/device"), with why.
    pub unreadable_targets: Vec<(String, String)>,
    pub bytes: u64,
}

impl CheckReport {
    pub fn is_healthy(&self) -> bool {
        self.integrity == ["ok"] && self.unreadable.is_empty() && self.unreadable_targets.is_empty()
    }
}

impl std::fmt::Display for CheckReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "file: {}", self.path.display())?;
        writeln!(
            f,
            "schema version: {} (this server: {})",
            self.schema_version,
            super::schema::CURRENT
        )?;
        writeln!(f, "size: {} bytes", self.bytes)?;
        writeln!(
            f,
            "invitations: {} open, {} ended (in retention)",
            self.open_invitations, self.ended_invitations
        )?;
        writeln!(f, "push targets: {}", self.push_targets)?;
        for line in &self.integrity {
            writeln!(f, "integrity: {line}")?;
        }
        for (id, why) in &self.unreadable {
            writeln!(f, "unreadable invitation {id:?}: {why}")?;
        }
        for (key, why) in &self.unreadable_targets {
            writeln!(f, "unreadable push target {key:?}: {why}")?;
        }
        write!(
            f,
            "{}",
            if self.is_healthy() {
                "healthy"
            } else {
                "NOT healthy"
            }
        )
    }
}

/// Runs `f` on a read-only connection to the store in `dir`. Opening a WAL
/// database read-only makes an empty `-wal` and a `-shm` file that the
/// connection cannot remove; if they were not there before and no server
/// holds the directory, they are removed after.
fn with_read_only<T>(
    dir: &Path,
    f: impl FnOnce(&Connection, &Path) -> Result<T, OpenError>,
) -> Result<T, OpenError> {
    let db = dir.join(DATABASE_FILE);
    let wal = db.with_extension("db-wal");
    let shm = db.with_extension("db-shm");
    let had_wal = wal.exists();
    let had_shm = shm.exists();
    let (conn, path) = read_only(dir)?;
    let result = f(&conn, &path);
    drop(conn);
    let empty_wal = std::fs::metadata(&wal).is_ok_and(|m| m.len() == 0);
    if !had_wal && !had_shm && empty_wal && open::lock_is_free(dir) {
        let _ = std::fs::remove_file(&wal);
        let _ = std::fs::remove_file(&shm);
    }
    result
}

fn read_only(dir: &Path) -> Result<(Connection, PathBuf), OpenError> {
    let path = dir.join(DATABASE_FILE);
    if !path.exists() {
        return Err(OpenError(format!("{}: no such file", path.display())));
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| OpenError(format!("{}: cannot open it: {e}", path.display())))?;
    Ok((conn, path))
}

/// Reads the whole store and says what it holds; changes nothing (a server
/// may be running on it).
pub fn check(dir: &Path) -> Result<CheckReport, OpenError> {
    with_read_only(dir, check_on)
}

fn check_on(conn: &Connection, path: &Path) -> Result<CheckReport, OpenError> {
    let failed = |e: rusqlite::Error| OpenError(format!("{}: {e}", path.display()));
    let schema_version = open::check_identity(conn, path)?;
    let mut report = CheckReport {
        path: path.to_path_buf(),
        schema_version,
        ..CheckReport::default()
    };
    let mut integrity = conn.prepare("PRAGMA integrity_check").map_err(failed)?;
    report.integrity = integrity
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(failed)?
        .collect::<Result<_, _>>()
        .map_err(failed)?;
    if schema_version > 0 {
        let mut rows = conn
            .prepare("SELECT id, version, record FROM invitations")
            .map_err(failed)?;
        let mut rows = rows.query([]).map_err(failed)?;
        while let Some(row) = rows.next().map_err(failed)? {
            let id: String = row.get(0).map_err(failed)?;
            let version: i64 = row.get(1).map_err(failed)?;
            let bytes: Vec<u8> = row.get(2).map_err(failed)?;
            match open::decode_from(schema_version, &id, version, &bytes) {
                Ok(record) if record.ended_ms.is_some() => report.ended_invitations += 1,
                Ok(_) => report.open_invitations += 1,
                Err(why) => report.unreadable.push((id, why)),
            }
        }
    }
    if schema_version >= 2 {
        push_targets(conn, path, |user, device, read| match read {
            Ok(_) => report.push_targets += 1,
            Err(why) => report
                .unreadable_targets
                .push((format!("{user}/{device}"), why)),
        })?;
    }
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    report.bytes = size(path) + size(&path.with_extension("db-wal"));
    Ok(report)
}

/// Calls `each` with every stored push target, read or not.
fn push_targets(
    conn: &Connection,
    path: &Path,
    mut each: impl FnMut(&str, &str, Result<PushTargetRecord, String>),
) -> Result<(), OpenError> {
    let failed = |e: rusqlite::Error| OpenError(format!("{}: {e}", path.display()));
    let mut statement = conn
        .prepare("SELECT user, device, target FROM push_targets ORDER BY user, device")
        .map_err(failed)?;
    let mut rows = statement.query([]).map_err(failed)?;
    while let Some(row) = rows.next().map_err(failed)? {
        let user: String = row.get(0).map_err(failed)?;
        let device: String = row.get(1).map_err(failed)?;
        let bytes: Vec<u8> = row.get(2).map_err(failed)?;
        each(
            &user,
            &device,
            open::decode_push_target(&user, &device, &bytes),
        );
    }
    Ok(())
}

/// Writes every stored invitation to `out` as one line of JSON, then every
/// push target as a line `{"push_target":{...}}` (rows that cannot be read
/// as a line `{"unreadable":ID,"why":...}`); returns how many lines. Changes
/// nothing (a server may be running on it).
pub fn dump(dir: &Path, out: &mut dyn std::io::Write) -> Result<u64, OpenError> {
    with_read_only(dir, |conn, path| {
        let failed = |e: rusqlite::Error| OpenError(format!("{}: {e}", path.display()));
        let schema = open::check_identity(conn, path)?;
        if schema == 0 {
            return Ok(0);
        }
        let mut statement = conn
            .prepare("SELECT id, version, record FROM invitations ORDER BY row")
            .map_err(failed)?;
        let mut rows = statement.query([]).map_err(failed)?;
        let mut lines = 0;
        while let Some(row) = rows.next().map_err(failed)? {
            let id: String = row.get(0).map_err(failed)?;
            let version: i64 = row.get(1).map_err(failed)?;
            let bytes: Vec<u8> = row.get(2).map_err(failed)?;
            let line = match open::decode_from(schema, &id, version, &bytes) {
                Ok(record) => serde_json::to_string(&record),
                Err(why) => serde_json::to_string(&serde_json::json!({
                    "unreadable": id,
                    "why": why,
                })),
            }
            .map_err(|e| OpenError(format!("{}: {e}", path.display())))?;
            writeln!(out, "{line}").map_err(|e| OpenError(format!("writing the dump: {e}")))?;
            lines += 1;
        }
        if schema >= 2 {
            let mut written = Ok(());
            push_targets(conn, path, |user, device, read| {
                let line = match read {
                    Ok(record) => serde_json::json!({ "push_target": record }),
                    Err(why) => serde_json::json!({
                        "unreadable": format!("{user}/{device}"),
                        "why": why,
                    }),
                };
                if written.is_ok() {
                    written = writeln!(out, "{line}");
                    lines += 1;
                }
            })?;
            written.map_err(|e| OpenError(format!("writing the dump: {e}")))?;
        }
        Ok(lines)
    })
}

/// Rewrites the database without its free pages. Takes the directory's lock:
/// refused while a server runs on it. Returns the sizes before and after.
pub fn compact(dir: &Path) -> Result<(u64, u64), OpenError> {
    let opened = open::open(dir, Durability::Full)?;
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let wal = opened.path.with_extension("db-wal");
    let before = size(&opened.path) + size(&wal);
    opened
        .conn
        .execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")
        .map_err(|e| OpenError(format!("{}: compacting failed: {e}", opened.path.display())))?;
    let after = size(&opened.path) + size(&wal);
    Ok((before, after))
}

/// Writes a consistent copy of the store to `to` (which must not exist),
/// while a server may be running on it (SQLite's `VACUUM INTO`).
pub fn backup(dir: &Path, to: &Path) -> Result<(), OpenError> {
    if to.exists() {
        return Err(OpenError(format!(
            "{}: exists already; a backup never overwrites a file",
            to.display()
        )));
    }
    let target = to
        .to_str()
        .ok_or_else(|| OpenError(format!("{}: not a UTF-8 path", to.display())))?;
    with_read_only(dir, |conn, path| {
        open::check_identity(conn, path)?;
        conn.execute("VACUUM INTO ?1", [target])
            .map_err(|e| OpenError(format!("backup of {} to {target}: {e}", path.display())))?;
        Ok(())
    })
}
