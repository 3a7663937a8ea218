//! The SQLite store in its bad states, and the operator's commands on it: a
//! data directory that cannot be written, one already served by another
//! server, a database from a newer schema, a corrupt file, some other
//! program's database, every older schema version (migrated at start), a disk
//! that fills up while the server runs, and `beckon-server store
//! check|backup|compact`. A server refuses to start with a message naming the
//! file and the cause, and never changes a file it refused.
//!
//! Where a test needs the exit status, the stderr or the pid of a server, or
//! runs one under a file-size limit, it starts `beckon-server` itself
//! ([`run`], [`launch`]); otherwise it uses `common::ServerProcess`.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beckon::hub::{InvitationRecord, InviteeRecord};
use beckon::protocol::{Answer, InvitationId, InviteeState, InviteeStatus, SendInvitation, UserId};
use beckon::{ClientConfig, ErrorCode};
use beckon_server::store::schema::{APPLICATION_ID, CURRENT, MIGRATIONS};
use rusqlite::Connection;

mod common;
use common::{block, rand_suffix, unique, Peer, ServerProcess, WAIT};

const DATABASE: &str = "beckon.db";
const LOCK: &str = "beckon.lock";

/// A directory of this test's own, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("beckon-store-{name}-{}", rand_suffix()));
        std::fs::create_dir_all(&path).unwrap();
        Scratch(path)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `beckon-server` with an environment that cannot pick the data directory
/// behind a test's back.
fn beckon_server() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_beckon-server"));
    command
        .env_remove("STATE_DIRECTORY")
        .env_remove("BECKON_LOG");
    command
}

/// `serve` on 127.0.0.1 (`port`, 0 for any) with its store in `data`.
fn serve_args(data: &Path, port: u16, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--admin".into(),
        "127.0.0.1:0".into(),
        "--dev".into(),
        "--exit-on-stdin-close".into(),
        "--data-dir".into(),
        data.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// How a command that ran to its end ended.
struct Exit {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `beckon-server args` to its exit (stdin closed: a `serve` that does
/// start stops again at once), within 30 s.
fn run(args: &[String]) -> Exit {
    let mut child = beckon_server()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start beckon-server");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("beckon-server {args:?} did not exit within 30 s");
        }
        thread::sleep(Duration::from_millis(20));
    };
    Exit {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// `serve` on `data` is refused with a message naming `file` and `cause`;
/// returns the message.
fn refused_naming(data: &Path, file: &Path, cause: &str) -> String {
    let message = serve_refused(data);
    assert!(
        message.contains(&file.display().to_string()),
        "the file is not named: {message}"
    );
    assert!(message.contains(cause), "the cause is not named: {message}");
    message
}

/// `serve` on `data` must be refused: exit status 1 and a message. Returns
/// the message.
fn serve_refused(data: &Path) -> String {
    let exit = run(&serve_args(data, 0, &[]));
    assert_eq!(
        exit.status.code(),
        Some(1),
        "serve on {} was not refused: {:?}\nstderr: {}",
        data.display(),
        exit.status,
        exit.stderr
    );
    assert!(
        exit.stderr.contains("beckon-server: "),
        "no message: {}",
        exit.stderr
    );
    exit.stderr
}

/// `beckon-server store <command> --data-dir <data> [extra]`.
fn store_command(command: &str, data: &Path, extra: &[&str]) -> Exit {
    let mut args: Vec<String> = vec![
        "store".into(),
        command.into(),
        "--data-dir".into(),
        data.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run(&args)
}

/// A `beckon-server serve` of this file's own: its pid and stderr are known,
/// and it may run under a file-size limit. Killed when dropped.
struct Running {
    child: Child,
    port: u16,
    admin_port: u16,
    stderr: Arc<Mutex<String>>,
    _scratch: Scratch,
}

/// Starts `beckon-server args`; `configure` may change the command (its
/// environment, limits). Err (with its stderr) if it exits before listening.
fn try_launch(args: &[String], configure: impl FnOnce(&mut Command)) -> Result<Running, String> {
    let scratch = Scratch::new("server");
    let port_file = scratch.join("ports.json");
    let mut command = beckon_server();
    command
        .args(args)
        .arg("--port-file")
        .arg(&port_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    configure(&mut command);
    let mut child = command.spawn().expect("start beckon-server");
    let stderr = Arc::new(Mutex::new(String::new()));
    let reader = {
        let log = stderr.clone();
        let echo = std::env::var_os("BECKON_TEST_SERVER_LOG").is_some();
        let mut pipe = BufReader::new(child.stderr.take().unwrap());
        thread::spawn(move || {
            let mut line = Vec::new();
            while matches!(pipe.read_until(b'\n', &mut line), Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line).into_owned();
                if echo {
                    eprint!("{text}");
                }
                log.lock().unwrap().push_str(&text);
                line.clear();
            }
        })
    };
    let started = Instant::now();
    let ports: serde_json::Value = loop {
        if let Some(ports) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
        {
            break ports;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let _ = reader.join();
            let text = stderr.lock().unwrap().clone();
            return Err(format!("beckon-server exited ({status}): {text}"));
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "beckon-server did not start within {WAIT:?}: {}",
                stderr.lock().unwrap()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let port_of = |key: &str| -> u16 {
        ports[key]
            .as_str()
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap()
    };
    Ok(Running {
        port: port_of("listen"),
        admin_port: port_of("admin"),
        child,
        stderr,
        _scratch: scratch,
    })
}

fn launch(args: &[String], configure: impl FnOnce(&mut Command)) -> Running {
    try_launch(args, configure).unwrap_or_else(|e| panic!("{e}"))
}

impl Running {
    fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (up to WAIT) until its stderr holds `needle`.
    fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.stderr();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the server's log within {WAIT:?}:\n{text}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then waits for the exit.
    fn terminate(&mut self) -> ExitStatus {
        // SAFETY: a signal to the child this value owns (not yet reaped).
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        self.child.wait().unwrap()
    }

    /// kill -9.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// GET on the admin address: (status line, body).
    fn admin_get(&self, path: &str) -> (String, String) {
        common::http_get(self.admin_port, path)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every file in `dir` but the lock (which a server rewrites with its pid
/// before it looks at the database), with its bytes.
fn contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap())
        .filter(|entry| entry.file_name() != LOCK)
        .map(|entry| {
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect()
}

/// Asserts that `dir` holds exactly what it held (`before`).
fn assert_unchanged(dir: &Path, before: &BTreeMap<String, Vec<u8>>, what: &str) {
    assert_same(dir, before, contents(dir), what);
}

fn assert_same(
    dir: &Path,
    before: &BTreeMap<String, Vec<u8>>,
    after: BTreeMap<String, Vec<u8>>,
    what: &str,
) {
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&after),
        names(before),
        "{what}: the files of {} changed",
        dir.display()
    );
    for (name, bytes) in before {
        assert!(
            after[name] == *bytes,
            "{what}: {} was changed ({} bytes before, {} after)",
            dir.join(name).display(),
            bytes.len(),
            after[name].len()
        );
    }
}

fn pragma(db: &Path, name: &str) -> i32 {
    let conn = Connection::open(db).unwrap();
    conn.pragma_query_value(None, name, |row| row.get(0))
        .unwrap()
}

/// Makes a store in `data` the way a server does: one invitation, sent by a
/// client and still ringing; the server then stopped cleanly. Returns the
/// invitation's id.
fn store_with_one_invitation(data: &Path) -> InvitationId {
    let mut server = ServerProcess::start(&["--data-dir", data.to_str().unwrap()]);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = Peer::online(&server.url(), &alice);
    let id = a.invite(&[&bob], 300).invitation_id;
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    drop(a);
    assert!(data.join(DATABASE).is_file());
    id
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// Bytes no SQLite header starts with.
fn garbage(len: usize) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len).map(|_| rand::random::<u8>()).collect();
    bytes[..6].copy_from_slice(b"junk!\n");
    bytes
}

#[test]
fn a_data_directory_that_cannot_be_written_is_refused() {
    let scratch = Scratch::new("not-writable");
    // Under a regular file: no directory can be made there (ENOTDIR).
    let file = scratch.join("a-file");
    std::fs::write(&file, b"not a directory\n").unwrap();
    let data = file.join("data");
    refused_naming(&data, &data, "Not a directory");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory\n");

    // A directory without write permission. Root writes through any mode
    // bits (as these tests usually run, in a container), so this case only
    // runs as another user.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        let read_only = scratch.join("read-only");
        std::fs::create_dir(&read_only).unwrap();
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o500)).unwrap();
        let message = serve_refused(&read_only);
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(
            message.contains(&read_only.display().to_string()),
            "the path is not named: {message}"
        );
        assert!(
            message.contains("not writable") && message.contains("Permission denied"),
            "the cause is not named: {message}"
        );
        assert_eq!(std::fs::read_dir(&read_only).unwrap().count(), 0);
    }
}

#[test]
fn a_second_server_on_the_same_directory_is_refused_and_the_first_serves_on() {
    let scratch = Scratch::new("second");
    let data = scratch.join("data");
    let first = launch(&serve_args(&data, 0, &[]), |_| {});

    let message = serve_refused(&data);
    let database = data.join(DATABASE).display().to_string();
    assert!(
        message.contains(&database),
        "the file is not named: {message}"
    );
    let holder = format!("in use by another process (pid {})", first.pid());
    assert!(
        message.contains(&holder),
        "the first server is not named ({holder}): {message}"
    );
    // The refused server left the lock as the first wrote it.
    assert_eq!(
        std::fs::read_to_string(data.join(LOCK)).unwrap().trim(),
        first.pid().to_string()
    );

    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = Peer::online(&first.url(), &alice);
    let b = Peer::online(&first.url(), &bob);
    let id = a.invite(&[&bob], 30).invitation_id;
    assert_eq!(b.ringing(), id, "the first server serves on");
}

#[test]
fn a_store_of_a_newer_schema_is_refused_and_left_as_it_is() {
    let scratch = Scratch::new("newer");
    let data = scratch.join("data");
    store_with_one_invitation(&data);
    let db = data.join(DATABASE);
    {
        let conn = Connection::open(&db).unwrap();
        conn.pragma_update(None, "user_version", CURRENT + 1)
            .unwrap();
    }
    let before = contents(&data);

    let message = serve_refused(&data);
    assert!(
        message.contains(&db.display().to_string()),
        "the file is not named: {message}"
    );
    let versions = format!(
        "schema version {}, newer than this beckon-server reads ({CURRENT})",
        CURRENT + 1
    );
    assert!(
        message.contains(&versions),
        "the versions are not named ({versions}): {message}"
    );
    assert_unchanged(&data, &before, "serve on a newer schema");

    let check = store_command("check", &data, &[]);
    assert_eq!(check.status.code(), Some(1), "{}", check.stdout);
    assert!(check.stderr.contains(&versions), "{}", check.stderr);
    assert_unchanged(&data, &before, "store check on a newer schema");
    assert_eq!(pragma(&db, "user_version"), CURRENT + 1);
}

#[test]
fn a_corrupt_store_is_refused_and_left_as_it_is() {
    let scratch = Scratch::new("corrupt");

    // Garbage where the database should be.
    let data = scratch.join("garbage");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join(DATABASE);
    std::fs::write(&db, garbage(16 * 1024)).unwrap();
    let before = contents(&data);
    refused_naming(&data, &db, "corrupt or not a database");
    assert_unchanged(&data, &before, "serve on garbage");
    let check = store_command("check", &data, &[]);
    assert_eq!(check.status.code(), Some(1), "{}", check.stdout);
    assert!(
        check.stderr.contains(&db.display().to_string()),
        "{}",
        check.stderr
    );
    assert_unchanged(&data, &before, "store check on garbage");

    // A store whose header is intact and whose tables are overwritten.
    let data = scratch.join("pages");
    store_with_one_invitation(&data);
    let db = data.join(DATABASE);
    let mut bytes = std::fs::read(&db).unwrap();
    let page_size = match u16::from_be_bytes([bytes[16], bytes[17]]) {
        1 => 65_536,
        size => usize::from(size),
    };
    assert!(bytes.len() > page_size, "a store of one page");
    let rest = bytes.len() - page_size;
    bytes[page_size..].copy_from_slice(&garbage(rest));
    std::fs::write(&db, &bytes).unwrap();
    let before = contents(&data);
    refused_naming(&data, &db, "corrupt");
    assert_unchanged(&data, &before, "serve on overwritten tables");
    let check = store_command("check", &data, &[]);
    assert_eq!(
        check.status.code(),
        Some(1),
        "store check calls overwritten tables healthy: {}",
        check.stdout
    );
    assert_unchanged(&data, &before, "store check on overwritten tables");

    // A sound file whose one invitation's record is cut short.
    let data = scratch.join("record");
    let id = store_with_one_invitation(&data);
    let db = data.join(DATABASE);
    {
        let conn = Connection::open(&db).unwrap();
        let changed = conn
            .execute(
                "UPDATE invitations SET record = substr(record, 1, 20) WHERE id = ?1",
                [id.as_str()],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    let before = contents(&data);
    let message = serve_refused(&data);
    assert!(
        message.contains(&db.display().to_string()),
        "the file is not named: {message}"
    );
    assert!(
        message.contains(&format!("invitation \"{id}\" cannot be read")),
        "the invitation is not named: {message}"
    );
    assert_unchanged(&data, &before, "serve on a broken record");
    let check = store_command("check", &data, &[]);
    assert_eq!(check.status.code(), Some(1), "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains(&format!("unreadable invitation \"{id}\"")),
        "store check does not list the row: {}",
        check.stdout
    );
    assert!(check.stdout.contains("NOT healthy"), "{}", check.stdout);
    assert_unchanged(&data, &before, "store check on a broken record");
}

#[test]
fn another_programs_database_is_refused_and_left_as_it_is() {
    let scratch = Scratch::new("foreign");
    // One that marks itself with an application id, and one that does not.
    for (name, application_id) in [("marked", 0x1234_5678), ("unmarked", 0)] {
        let data = scratch.join(name);
        std::fs::create_dir_all(&data).unwrap();
        let db = data.join(DATABASE);
        {
            let conn = Connection::open(&db).unwrap();
            conn.execute_batch(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT);
                 INSERT INTO notes (text) VALUES ('keep me');",
            )
            .unwrap();
            conn.pragma_update(None, "application_id", application_id)
                .unwrap();
        }
        let before = contents(&data);
        let message = serve_refused(&data);
        assert!(
            message.contains(&db.display().to_string()),
            "{name}: the file is not named: {message}"
        );
        assert!(
            message.contains("not a Beckon store"),
            "{name}: the cause is not named: {message}"
        );
        if application_id != 0 {
            assert!(message.contains("0x12345678"), "{message}");
        }
        assert_unchanged(&data, &before, name);
    }
}

/// A store file at schema version `version`, as a server of that version
/// made it: `MIGRATIONS[..version]` and the application id. From version 1
/// on it holds `record`, encoded as that version did (a migration that
/// changes the `invitations` table must give its version's insert here).
fn store_at_version(db: &Path, version: usize, record: &InvitationRecord) {
    let conn = Connection::open(db).unwrap();
    for migration in &MIGRATIONS[..version] {
        conn.execute_batch(migration).unwrap();
    }
    conn.pragma_update(None, "application_id", APPLICATION_ID)
        .unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
    if version >= 1 {
        conn.execute(
            "INSERT INTO invitations (id, version, inviter, deadline_ms, ended_ms, record)
             VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
            rusqlite::params![
                record.id.as_str(),
                i64::try_from(record.version).unwrap(),
                record.inviter.as_str(),
                i64::try_from(record.deadline_ms).unwrap(),
                // Each version's own encoding of the record.
                if version == 1 {
                    beckon_server::store::codec::v1::encode(record).unwrap()
                } else if version == 2 {
                    beckon_server::store::codec::v2::encode(record).unwrap()
                } else {
                    let mut encoded = Vec::new();
                    beckon_server::store::codec::encode(record, &mut encoded).unwrap();
                    encoded
                },
            ],
        )
        .unwrap();
    }
}

/// An invitation from `inviter` to `invitee` (offline when it was sent),
/// ringing for another minute.
fn ringing_record(inviter: &UserId, invitee: &UserId, note: &str) -> InvitationRecord {
    InvitationRecord {
        id: InvitationId::from_bits(rand::random()),
        version: 1,
        inviter: inviter.clone(),
        invitees: vec![InviteeRecord {
            user: invitee.clone(),
            state: InviteeState::Offline,
            closed_offline: false,
            pushed: Vec::new(),
        }],
        extended_data: note.into(),
        notification: None,
        online_only: false,
        idempotency_key: None,
        deadline_ms: now_ms() + 60_000,
        ended_ms: None,
        error_invitees: vec![InviteeStatus {
            user_id: invitee.clone(),
            state: InviteeState::Offline,
        }],
        sent_by_server: false,
        created_ms: now_ms(),
    }
}

#[test]
fn every_older_schema_version_is_migrated_at_start() {
    let scratch = Scratch::new("migrations");
    // Version 0 in each of its forms: no directory yet, an empty directory,
    // an empty file.
    for form in ["no directory", "empty directory", "empty file"] {
        let data = scratch.join(&form.replace(' ', "-"));
        if form != "no directory" {
            std::fs::create_dir_all(&data).unwrap();
        }
        if form == "empty file" {
            std::fs::write(data.join(DATABASE), b"").unwrap();
        }
        let mut server = ServerProcess::start(&["--data-dir", data.to_str().unwrap()]);
        let (alice, bob) = (unique("alice"), unique("bob"));
        let a = Peer::online(&server.url(), &alice);
        let b = Peer::online(&server.url(), &bob);
        let id = a.invite(&[&bob], 30).invitation_id;
        assert_eq!(b.ringing(), id, "{form}");
        assert!(server.terminate().success(), "{form}");
        let db = data.join(DATABASE);
        assert_eq!(pragma(&db, "user_version"), CURRENT, "{form}");
        assert_eq!(pragma(&db, "application_id"), APPLICATION_ID, "{form}");
    }

    // Every numbered version, up to this server's own (which needs no
    // migration, and shows that the files made here are what a server makes).
    for version in 1..=MIGRATIONS.len() {
        let data = scratch.join(&format!("v{version}"));
        std::fs::create_dir_all(&data).unwrap();
        let db = data.join(DATABASE);
        let (alice, bob) = (unique("alice"), unique("bob"));
        let kept = ringing_record(&alice, &bob, &format!("made at version {version}"));
        store_at_version(&db, version, &kept);
        // `store check` reads a file of an older version as it is.
        let report = beckon_server::store::check(&data).unwrap();
        assert!(report.is_healthy(), "version {version}: {report}");
        assert_eq!(report.schema_version, version as i32);
        assert_eq!(report.open_invitations, 1, "version {version}: {report}");

        let mut server = ServerProcess::start(&["--data-dir", data.to_str().unwrap()]);
        let b = Peer::online(&server.url(), &bob);
        assert_eq!(
            b.ringing(),
            kept.id,
            "version {version}: the invitation kept before the migration rings"
        );
        // A new one goes into the migrated schema too.
        let a = Peer::online(&server.url(), &alice);
        let fresh = a.invite(&[&bob], 30).invitation_id;
        assert_eq!(b.ringing(), fresh, "version {version}");
        assert!(server.terminate().success(), "version {version}");

        assert_eq!(pragma(&db, "user_version"), CURRENT, "version {version}");
        assert_eq!(
            pragma(&db, "application_id"),
            APPLICATION_ID,
            "version {version}"
        );
        let conn = Connection::open(&db).unwrap();
        let bytes: Vec<u8> = conn
            .query_row(
                "SELECT record FROM invitations WHERE id = ?1",
                [kept.id.as_str()],
                |row| row.get(0),
            )
            .unwrap();
        let now: InvitationRecord = beckon_server::store::codec::decode(&bytes).unwrap();
        assert_eq!(
            (&now.id, &now.inviter, &now.extended_data, now.deadline_ms),
            (
                &kept.id,
                &kept.inviter,
                &kept.extended_data,
                kept.deadline_ms
            ),
            "version {version}: the kept invitation survived"
        );
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM invitations", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 2, "version {version}");
    }
}

/// Sets RLIMIT_FSIZE to `bytes` in the child before it runs.
fn limit_file_size(command: &mut Command, bytes: u64) {
    // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork
    // and exec.
    unsafe {
        command.pre_exec(move || {
            let limit = libc::rlimit {
                rlim_cur: bytes as libc::rlim_t,
                // The hard limit stays open, so a test can lift the soft one
                // again without privileges ("space comes back").
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A server whose store stopped being able to write, and what was sent to
/// it until then.
struct FullDisk {
    server: Running,
    data: PathBuf,
    /// Alice's client: its last send was in the batch that failed.
    alice: Peer,
    /// The sends answered Ok: the store had them.
    answered: Vec<InvitationId>,
    /// The one send in the failing batch timed out (or, in principle, was
    /// refused).
    timed_out: usize,
    /// Flags every start takes.
    limits: [&'static str; 4],
}

/// Starts a server that can write 512 KiB per file (RLIMIT_FSIZE: a write
/// past it fails with EFBIG; the server ignores SIGXFSZ), and has alice send
/// 8 KB invitations to an offline bob, one at a time, until one fails.
fn fill_the_disk(scratch: &Scratch, bob: &UserId) -> FullDisk {
    const FILE_LIMIT: u64 = 512 * 1024;
    const MAX_SENDS: usize = 500;
    let data = scratch.join("data");
    let limits = ["--max-open-invitations", "100000", "--grace-secs", "60"];
    let server = launch(&serve_args(&data, 0, &limits), |command| {
        limit_file_size(command, FILE_LIMIT)
    });
    let alice = unique("alice");
    let a = Peer::with_config(short_timeout(&server.url()), &alice);
    block(a.client.login(alice.clone(), "dev-token")).unwrap();
    let payload: String = (0..8000)
        .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
        .collect();
    let mut answered = Vec::new();
    let started = Instant::now();
    for i in 0..MAX_SENDS {
        // Bob is offline: nothing but these sends changes the store.
        let mut request = SendInvitation::new(vec![bob.clone()], 300);
        request.extended_data = format!("{i:04} {payload}").into();
        let timed_out = match block(a.client.send_invitation(request)) {
            Ok(outcome) => {
                answered.push(outcome.invitation_id);
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "the store never filled up: {} sends answered",
                    answered.len()
                );
                continue;
            }
            // The first send that fails was in the batch that could not be
            // written: it waits as long as the store cannot write, and the
            // client gives up on it.
            Err(e) if e.code == ErrorCode::RequestTimeout => 1,
            Err(e) if e.code == ErrorCode::Server => 0,
            Err(e) => panic!("send {i}: {e}"),
        };
        return FullDisk {
            server,
            data,
            alice: a,
            answered,
            timed_out,
            limits,
        };
    }
    panic!(
        "the store never filled up: {} sends answered",
        answered.len()
    );
}

fn short_timeout(url: &str) -> ClientConfig {
    let mut config = ClientConfig::new(url);
    config.request_timeout = Duration::from_secs(3);
    config
}

fn assert_refused_for_the_store(result: beckon::Result<beckon::protocol::SendOutcome>, who: &str) {
    match result {
        Err(e) if e.code == ErrorCode::Server => {
            assert!(e.message.contains("cannot store changes"), "{who}: {e}")
        }
        other => panic!("{who}: a send while the store cannot write: {other:?}"),
    }
}

#[test]
fn a_full_disk_fails_changes_with_server_and_loses_no_answered_send() {
    let scratch = Scratch::new("disk-full");
    let bob = unique("bob");
    let full = fill_the_disk(&scratch, &bob);
    let FullDisk {
        mut server,
        data,
        alice: a,
        answered,
        timed_out,
        limits,
    } = full;
    eprintln!(
        "{} sends answered before the store could not write, {timed_out} timed out",
        answered.len()
    );
    assert!(!answered.is_empty(), "the limit left room for no send");

    // Another connection is refused at once, with SERVER, send after send.
    let dave = unique("dave");
    let d = Peer::with_config(short_timeout(&server.url()), &dave);
    block(d.client.login(dave.clone(), "dev-token")).unwrap();
    for i in 0..3 {
        let request = SendInvitation::new(vec![bob.clone()], 300);
        assert_refused_for_the_store(
            block(d.client.send_invitation(request)),
            &format!("dave {i}"),
        );
    }

    // So is another device of alice's, whose last send waits.
    let again = Peer::with_config(short_timeout(&server.url()), &a.user);
    block(again.client.login(a.user.clone(), "dev-token")).unwrap();
    let request = SendInvitation::new(vec![bob.clone()], 300);
    assert_refused_for_the_store(
        block(again.client.send_invitation(request)),
        "alice's other device",
    );

    // Up, and serving what needs no write.
    let (status, body) = server.admin_get("/healthz");
    assert!(status.contains("200"), "{status} {body}");
    let carol = unique("carol");
    let c = Peer::online(&server.url(), &carol);
    drop(c);
    let (_, metrics) = server.admin_get("/metrics");
    let failures = metrics
        .lines()
        .find(|l| l.starts_with("beckon_store_write_failures_total "))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok());
    assert!(
        failures.is_some_and(|n| n >= 1.0),
        "no write failure counted:\n{metrics}"
    );
    server.wait_for_log("the store cannot write");

    // Killed, and started again on the same directory with room to write.
    let port = server.port;
    server.kill();
    drop((a, again, d));
    let started = Instant::now();
    let _server = loop {
        match try_launch(&serve_args(&data, port, &limits), |_| {}) {
            Ok(server) => break server,
            // The port may linger for a moment after the kill.
            Err(e) if started.elapsed() < WAIT && e.contains("listen") => {
                thread::sleep(Duration::from_millis(100))
            }
            Err(e) => panic!("{e}"),
        }
    };
    // Every answered send rings bob, once.
    let b = Peer::online(&format!("ws://127.0.0.1:{port}"), &bob);
    let wanted: HashSet<InvitationId> = answered.iter().cloned().collect();
    let mut rung = HashSet::new();
    while !wanted.is_subset(&rung) {
        let id = b.ringing();
        assert!(rung.insert(id.clone()), "{id} rang twice");
    }
    // And nothing else, but perhaps the send whose answer never came.
    thread::sleep(Duration::from_millis(300));
    let rings = b.count(|e| {
        matches!(
            e,
            beckon::Event::Invitation(beckon::protocol::Push::InvitationReceived { .. })
        )
    });
    assert!(
        rings <= answered.len() + timed_out,
        "{rings} invitations ring, {} sends were answered",
        answered.len()
    );
}

/// The connection whose request was in the batch that could not be written
/// holds its frames (they leave in order, each once the store has what the
/// frames before it tell of): its later requests time out rather than being
/// refused, as docs/OPERATIONS.md says. When space comes back, the store
/// writes the failed batch, the held frames go, and the same connection works
/// again; the send that timed out exists (its change was written late), once.
#[test]
fn when_space_comes_back_the_store_catches_up_and_the_held_connection_works_again() {
    let scratch = Scratch::new("disk-full-back");
    let bob = unique("bob");
    let full = fill_the_disk(&scratch, &bob);
    assert_eq!(full.timed_out, 1);
    let request = SendInvitation::new(vec![bob.clone()], 300);
    match block(full.alice.client.send_invitation(request)) {
        Err(e) if e.code == ErrorCode::RequestTimeout => {}
        other => panic!("a send behind the held frames: {other:?}"),
    }
    // Space comes back: the server's file-size limit is lifted.
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit on a child of this process, with a valid struct.
    let lifted = unsafe {
        libc::prlimit(
            full.server.pid() as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &unlimited,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(lifted, 0, "prlimit: {}", std::io::Error::last_os_error());
    full.server.wait_for_log("the store writes again");
    let request = SendInvitation::new(vec![bob.clone()], 300);
    let after = block(full.alice.client.send_invitation(request))
        .expect("the same connection works again")
        .invitation_id;
    // Bob rings for every answered send, the one after, and the first that
    // timed out (its change was written once space came back), once each;
    // the second was refused (SERVER, held behind it) and does not exist.
    let b = Peer::online(&full.server.url(), &bob);
    let mut wanted: HashSet<InvitationId> = full.answered.iter().cloned().collect();
    wanted.insert(after);
    let mut rung = HashSet::new();
    while rung.len() < wanted.len() + 1 {
        let id = b.ringing();
        assert!(rung.insert(id.clone()), "{id} rang twice");
    }
    assert!(wanted.is_subset(&rung));
    thread::sleep(Duration::from_millis(300));
    let rings = b.count(|e| {
        matches!(
            e,
            beckon::Event::Invitation(beckon::protocol::Push::InvitationReceived { .. })
        )
    });
    assert_eq!(rings, wanted.len() + 1, "nothing else rings");
    drop(scratch);
}

#[test]
fn operators_check_back_up_and_compact_a_store() {
    let scratch = Scratch::new("operators");
    let data = scratch.join("data");
    let mut server = ServerProcess::start(&["--data-dir", data.to_str().unwrap()]);
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = Peer::online(&server.url(), &alice);
    let b = Peer::online(&server.url(), &bob);
    let open = a.invite(&[&bob], 300).invitation_id;
    assert_eq!(b.ringing(), open);
    let ended = a.invite(&[&bob], 300).invitation_id;
    assert_eq!(b.ringing(), ended);
    block(b.client.accept_invitation(Answer {
        invitation_id: ended.clone(),
        extended_data: "".into(),
    }))
    .unwrap();

    // check, while the server runs.
    let check = store_command("check", &data, &[]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}{}",
        check.stdout,
        check.stderr
    );
    let counts = "invitations: 1 open, 1 ended";
    assert!(check.stdout.contains(counts), "{}", check.stdout);
    assert!(
        check.stdout.contains(&format!("schema version: {CURRENT}")),
        "{}",
        check.stdout
    );
    assert!(
        check.stdout.trim_end().ends_with("healthy") && !check.stdout.contains("NOT healthy"),
        "{}",
        check.stdout
    );

    // dump, while the server runs: one JSON line per invitation.
    let dump = store_command("dump", &data, &[]);
    assert_eq!(dump.status.code(), Some(0), "{}", dump.stderr);
    let records: Vec<InvitationRecord> = dump
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let ids: HashSet<&InvitationId> = records.iter().map(|r| &r.id).collect();
    assert_eq!(ids, HashSet::from([&open, &ended]), "{}", dump.stdout);

    // backup, while the server runs: the copy is a healthy store with the
    // same invitations.
    let copy = scratch.join("copy.db");
    let backup = store_command("backup", &data, &["--to", copy.to_str().unwrap()]);
    assert_eq!(backup.status.code(), Some(0), "{}", backup.stderr);
    let again = store_command("backup", &data, &["--to", copy.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "a backup overwrote a file");
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
    let restored = scratch.join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::rename(&copy, restored.join(DATABASE)).unwrap();
    let check = store_command("check", &restored, &[]);
    assert_eq!(
        check.status.code(),
        Some(0),
        "{}{}",
        check.stdout,
        check.stderr
    );
    assert!(check.stdout.contains(counts), "{}", check.stdout);
    // And a server starts on it, with the open invitation ringing.
    let copy_server = ServerProcess::start(&["--data-dir", restored.to_str().unwrap()]);
    let b2 = Peer::online(&copy_server.url(), &bob);
    assert_eq!(b2.ringing(), open, "the backup holds the open invitation");
    drop(b2);
    drop(copy_server);

    // compact, while the server runs: refused.
    let compact = store_command("compact", &data, &[]);
    assert_eq!(compact.status.code(), Some(1), "{}", compact.stdout);
    assert!(
        compact.stderr.contains("in use by another process"),
        "{}",
        compact.stderr
    );

    // compact, once it stopped: done, and nothing lost.
    assert!(server.terminate().success());
    drop((a, b));
    let stopped = store_command("check", &data, &[]);
    assert_eq!(stopped.status.code(), Some(0), "{}", stopped.stdout);
    let compact = store_command("compact", &data, &[]);
    assert_eq!(compact.status.code(), Some(0), "{}", compact.stderr);
    let sizes: Vec<u64> = compact
        .stdout
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    assert!(
        compact.stdout.starts_with("compacted: ") && sizes.len() == 2 && sizes[1] > 0,
        "{}",
        compact.stdout
    );
    let after = store_command("check", &data, &[]);
    assert_eq!(after.status.code(), Some(0), "{}", after.stdout);
    let invitations = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("invitations:"))
            .map(str::to_owned)
    };
    assert_eq!(
        invitations(&after.stdout),
        invitations(&stopped.stdout),
        "compacting changed what the store holds"
    );
}

#[test]
fn where_the_data_directory_is() {
    let scratch = Scratch::new("where");
    let state = scratch.join("state");
    let home = scratch.join("home");
    let cwd = scratch.join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    let environment = |command: &mut Command| {
        command
            .env("XDG_STATE_HOME", &state)
            .env("HOME", &home)
            .current_dir(&cwd);
    };
    let base = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--dev",
        "--exit-on-stdin-close",
    ];
    let args = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };

    // A memory store makes no directory: not the one named, not a default.
    let named = scratch.join("data");
    for extra in [
        vec!["--store", "memory"],
        vec!["--store", "memory", "--data-dir", named.to_str().unwrap()],
    ] {
        let mut server = launch(&args(&extra), environment);
        let (alice, bob) = (unique("alice"), unique("bob"));
        let a = Peer::online(&server.url(), &alice);
        let b = Peer::online(&server.url(), &bob);
        let id = a.invite(&[&bob], 30).invitation_id;
        assert_eq!(b.ringing(), id);
        assert!(server.terminate().success());
        for dir in [&named, &state, &home] {
            assert!(!dir.exists(), "{extra:?} made {}", dir.display());
        }
        assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0, "{extra:?}");
    }

    // No --data-dir: $XDG_STATE_HOME/beckon-server, named in the log.
    let mut server = launch(&args(&[]), environment);
    let expected = state.join("beckon-server");
    let log = server.wait_for_log("store: sqlite");
    assert!(
        log.contains(&expected.display().to_string()),
        "the log does not name {}:\n{log}",
        expected.display()
    );
    let (alice, bob) = (unique("alice"), unique("bob"));
    let a = Peer::online(&server.url(), &alice);
    let b = Peer::online(&server.url(), &bob);
    let id = a.invite(&[&bob], 30).invitation_id;
    assert_eq!(b.ringing(), id);
    assert!(server.terminate().success());
    assert!(expected.join(DATABASE).is_file());
    let check = store_command("check", &expected, &[]);
    assert!(check.stdout.contains("1 open"), "{}", check.stdout);
    assert!(!home.exists());
    assert_eq!(std::fs::read_dir(&cwd).unwrap().count(), 0);
}

/// Waits (bounded) until `store` made `ticket` durable.
fn durable_by(store: &beckon_server::store::SqliteStore, ticket: beckon::hub::Ticket) {
    use beckon::hub::Store;
    let until = Instant::now() + WAIT;
    while store.durable() < ticket {
        assert!(
            Instant::now() < until,
            "ticket {ticket} never became durable"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn push_targets_and_pushed_devices_outlive_a_restart() {
    use beckon::hub::{Change, PushTargetRecord, PushedDevice, Store};
    use beckon::protocol::{DeviceId, PushProvider, PushTarget};
    use beckon_server::store::{SqliteStore, StoreMetrics};
    use beckon_server::Durability;

    let scratch = Scratch::new("push-targets");
    let data = scratch.join("data");
    let (bob, carol) = (unique("bob"), unique("carol"));
    let (phone, tablet) = (
        DeviceId::parse("phone", "d").unwrap(),
        DeviceId::parse("tablet", "d").unwrap(),
    );
    let voip = PushTarget {
        alert_token: Some("cd".repeat(32).into()),
        ..PushTarget::new(PushProvider::ApnsVoip, "ab".repeat(32))
    };
    let webhook = PushTarget::new(PushProvider::Webhook, "carol-phone");

    let store = SqliteStore::open(&data, Durability::Normal, StoreMetrics::default()).unwrap();
    assert!(store.recover().unwrap().push_targets.is_empty());
    let target =
        |user: &UserId, device: &DeviceId, target: Option<&PushTarget>| Change::PushTarget {
            user: user.clone(),
            device: device.clone(),
            target: target.cloned(),
        };
    store.submit(target(&bob, &phone, Some(&voip)));
    let set_then_cleared = store.submit(target(&bob, &tablet, Some(&webhook)));
    durable_by(&store, set_then_cleared);
    store.submit(target(&bob, &tablet, None));
    store.submit(target(&carol, &phone, Some(&webhook)));
    let mut record = ringing_record(&unique("alice"), &bob, "pushed");
    record.invitees[0].pushed = vec![PushedDevice {
        device: phone.clone(),
        target: voip.clone(),
    }];
    let last = store.submit(Change::Put(record.clone()));
    durable_by(&store, last);
    store.close();
    drop(store);

    let again = SqliteStore::open(&data, Durability::Normal, StoreMetrics::default()).unwrap();
    let recovered = again.recover().unwrap();
    let mut targets = recovered.push_targets;
    targets.sort_by(|a, b| a.user.as_str().cmp(b.user.as_str()));
    let mut expected = vec![
        PushTargetRecord {
            user: bob.clone(),
            device: phone.clone(),
            target: voip.clone(),
        },
        PushTargetRecord {
            user: carol.clone(),
            device: phone.clone(),
            target: webhook.clone(),
        },
    ];
    expected.sort_by(|a, b| a.user.as_str().cmp(b.user.as_str()));
    assert_eq!(targets, expected);
    assert_eq!(recovered.invitations, vec![record]);
    again.close();
    drop(again);

    // The operator's commands see them.
    let report = beckon_server::store::check(&data).unwrap();
    assert!(report.is_healthy(), "{report}");
    assert_eq!(report.push_targets, 2, "{report}");
    let mut dumped = Vec::new();
    assert_eq!(beckon_server::store::dump(&data, &mut dumped).unwrap(), 3);
    let dumped = String::from_utf8(dumped).unwrap();
    assert_eq!(dumped.matches("\"push_target\"").count(), 2, "{dumped}");

    // A target that cannot be read stops the start, naming it, and is left
    // as it is.
    let conn = Connection::open(data.join(DATABASE)).unwrap();
    conn.execute(
        "UPDATE push_targets SET target = x'07ff' WHERE user = ?1",
        [carol.as_str()],
    )
    .unwrap();
    drop(conn);
    let before = contents(&data);
    let refused = SqliteStore::open(&data, Durability::Normal, StoreMetrics::default())
        .err()
        .expect("a start with an unreadable push target is refused")
        .to_string();
    assert!(
        refused.contains("push target of") && refused.contains(carol.as_str()),
        "{refused}"
    );
    assert_unchanged(&data, &before, "unreadable push target");
    let report = beckon_server::store::check(&data).unwrap();
    assert!(!report.is_healthy());
    assert!(
        report.unreadable_targets[0].0.starts_with(carol.as_str()),
        "{report}"
    );
}
