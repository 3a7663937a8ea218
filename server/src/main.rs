//! `beckon-server serve` runs the server; `beckon-server token` mints a login token.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use beckon::protocol::UserId;
use beckon_server::{Durability, LogFormat, ServerConfig, StoreKind};
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "beckon-server",
    version,
    about = "Beckon call-invitation signaling server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve WebSocket clients.
    Serve(Box<ServeArgs>),
    /// Mint a login token from the server's secret.
    Token(TokenArgs),
    /// Look after a data directory (the SQLite store).
    #[command(subcommand)]
    Store(StoreCommand),
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Reads the whole store and says what it holds and whether it is
    /// healthy (exit status 1 if not). Safe while a server runs on it.
    Check(DataDirArgs),
    /// Prints every stored invitation as one line of JSON. Safe while a
    /// server runs on it.
    Dump(DataDirArgs),
    /// Rewrites the database without its free pages. The server must be
    /// stopped.
    Compact(DataDirArgs),
    /// Writes a consistent copy of the database to a new file (SQLite's
    /// `VACUUM INTO`). Safe while a server runs on it.
    Backup {
        #[command(flatten)]
        dir: DataDirArgs,
        /// The file to write; it must not exist.
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Args)]
struct DataDirArgs {
    /// The data directory (default: as `serve`'s).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A config file whose `data_dir` to use.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    /// A TOML file with any of the settings below (flags win over it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where clients connect, e.g. 0.0.0.0:7600 (port 0: any free port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Where /metrics and /healthz are served.
    #[arg(long)]
    admin: Option<SocketAddr>,
    /// Where the server API listens (its keys are in the config's
    /// [[api.key]]); off when absent.
    #[arg(long)]
    api: Option<SocketAddr>,
    /// Where the web phone page is served (for trying and demos); off when
    /// absent.
    #[arg(long)]
    web: Option<SocketAddr>,
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// A file holding the token secret (else BECKON_SECRET or the config file).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    /// Development mode: no secret, every token accepted. Insecure.
    #[arg(long)]
    dev: bool,
    #[arg(long)]
    grace_secs: Option<u64>,
    #[arg(long)]
    retention_secs: Option<u64>,
    #[arg(long)]
    max_invitees: Option<usize>,
    #[arg(long)]
    max_devices: Option<usize>,
    #[arg(long)]
    max_frame_bytes: Option<usize>,
    /// Connections the kernel queues before they are accepted.
    #[arg(long)]
    listen_backlog: Option<u32>,
    /// Connections open at once (more are refused with HTTP 503).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Connections open at once from one IP address (0: no cap).
    #[arg(long)]
    max_connections_per_ip: Option<usize>,
    /// Connections not logged in yet.
    #[arg(long)]
    max_pending_logins: Option<usize>,
    /// Invitations one user may have open at once (a send over it is RATE_LIMITED).
    #[arg(long)]
    max_open_invitations: Option<usize>,
    #[arg(long)]
    messages_per_sec: Option<u32>,
    #[arg(long)]
    messages_burst: Option<u32>,
    #[arg(long)]
    heartbeat_secs: Option<u32>,
    #[arg(long)]
    handshake_timeout_ms: Option<u64>,
    #[arg(long)]
    login_timeout_ms: Option<u64>,
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
    /// Where invitations are kept: sqlite (durable, the default), memory, or
    /// redis (shared by the nodes of a deployment).
    #[arg(long, value_enum)]
    store: Option<StoreKind>,
    /// The Redis store's URL (redis:// or rediss://).
    #[arg(long)]
    redis_url: Option<String>,
    /// This node's name in a Redis deployment (the host's name by default).
    #[arg(long)]
    node_name: Option<String>,
    /// The SQLite store's directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// normal: an answered request survives a crash of the process; full:
    /// also a crash of the machine.
    #[arg(long, value_enum)]
    durability: Option<Durability>,
    /// Write the bound addresses here as JSON once listening (for scripts and
    /// tests that use port 0).
    #[arg(long)]
    port_file: Option<PathBuf>,
    /// Shut down when standard input closes (a test harness that dies takes
    /// its server with it).
    #[arg(long, hide = true)]
    exit_on_stdin_close: bool,
}

#[derive(Args)]
struct TokenArgs {
    #[arg(long)]
    user: String,
    /// Seconds the token is valid from now.
    #[arg(long)]
    ttl: u64,
    /// Read the secret from here (else BECKON_SECRET or the config file).
    #[arg(long)]
    secret_file: Option<PathBuf>,
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Token(args) => token(args),
        Command::Store(command) => store(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("beckon-server: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: Option<&PathBuf>) -> Result<ServerConfig, String> {
    match path {
        Some(path) => ServerConfig::from_toml_file(path).map_err(|e| e.to_string()),
        None => Ok(ServerConfig::default()),
    }
}

fn token(args: TokenArgs) -> Result<(), String> {
    let mut config = load_config(args.config.as_ref())?;
    if args.secret_file.is_some() {
        config.secret_file = args.secret_file;
    }
    let secret = config
        .resolve_secret()
        .map_err(|e| e.to_string())?
        .ok_or("no secret: give --secret-file, BECKON_SECRET or a config file with one")?;
    let user = UserId::parse(&args.user, "user").map_err(|e| e.message)?;
    if args.ttl == 0 || args.ttl > 10 * 365 * 24 * 3600 {
        return Err("ttl: must be 1 second to 10 years".into());
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    println!("{}", beckon::token::mint(&secret, &user, now + args.ttl));
    Ok(())
}

fn store(command: StoreCommand) -> Result<(), String> {
    let dir_of = |args: &DataDirArgs| -> Result<PathBuf, String> {
        let config = load_config(args.config.as_ref())?;
        Ok(args
            .data_dir
            .clone()
            .or(config.data_dir)
            .unwrap_or_else(beckon_server::store::default_data_dir))
    };
    match command {
        StoreCommand::Check(args) => {
            let report = beckon_server::store::check(&dir_of(&args)?).map_err(|e| e.to_string())?;
            println!("{report}");
            if report.is_healthy() {
                Ok(())
            } else {
                Err(format!("{}: not healthy", report.path.display()))
            }
        }
        StoreCommand::Dump(args) => {
            let mut out = std::io::stdout().lock();
            beckon_server::store::dump(&dir_of(&args)?, &mut out).map_err(|e| e.to_string())?;
            Ok(())
        }
        StoreCommand::Compact(args) => {
            let (before, after) =
                beckon_server::store::compact(&dir_of(&args)?).map_err(|e| e.to_string())?;
            println!("compacted: {before} bytes before, {after} bytes after");
            Ok(())
        }
        StoreCommand::Backup { dir, to } => {
            beckon_server::store::backup(&dir_of(&dir)?, &to).map_err(|e| e.to_string())?;
            println!("backup written to {}", to.display());
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    // A file-size limit (RLIMIT_FSIZE) must fail a write, not kill the
    // server: the store then reports the error and the server stays up.
    // SAFETY: setting a signal's disposition to "ignore" at start, before
    // any thread exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let mut config = load_config(args.config.as_ref())?;
    apply_flags(&mut config, &args);
    init_logging(config.log_format);
    let secret = config.resolve_secret().map_err(|e| e.to_string())?;
    let secret = match (secret, config.dev) {
        (Some(_), true) => return Err("--dev and a secret exclude each other".into()),
        (Some(secret), false) => Some(secret),
        (None, true) => {
            let warning = "DEVELOPMENT MODE: no secret, every token is accepted, anyone can log in as anyone. Never expose this server.";
            tracing::warn!("{warning}");
            eprintln!("beckon-server: WARNING: {warning}");
            None
        }
        (None, false) => {
            return Err(
                "no secret: give --secret-file, BECKON_SECRET or `secret` in the config (or --dev for an insecure development server)".into(),
            )
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("beckon-server")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let served = runtime.block_on(async move {
        let server = beckon_server::start(config, secret)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(path) = &args.port_file {
            let text = serde_json::json!({
                "listen": server.listen_addr.to_string(),
                "admin": server.admin_addr.map(|a| a.to_string()),
                "api": server.api_addr.map(|a| a.to_string()),
                "web": server.web_addr.map(|a| a.to_string()),
            });
            // Written whole then renamed, so a reader never sees half of it.
            let partial = path.with_extension("partial");
            std::fs::write(&partial, text.to_string())
                .and_then(|()| std::fs::rename(&partial, path))
                .map_err(|e| format!("port file {}: {e}", path.display()))?;
        }
        let stdin_closes = async {
            if args.exit_on_stdin_close {
                stdin_closed().await;
            } else {
                std::future::pending::<()>().await;
            }
        };
        let fatal = tokio::select! {
            _ = wait_for_signal() => None,
            _ = stdin_closes => None,
            why = server.fatal() => Some(why),
        };
        server.shutdown(Duration::from_secs(10)).await;
        match fatal {
            Some(why) => Err(format!("stopped: {why}")),
            None => Ok(()),
        }
    });
    // Not a plain drop: that would wait for the thread reading stdin, which
    // may never return.
    runtime.shutdown_timeout(Duration::from_secs(1));
    served
}

fn apply_flags(config: &mut ServerConfig, args: &ServeArgs) {
    if let Some(v) = args.listen {
        config.listen = v;
    }
    if args.admin.is_some() {
        config.admin = args.admin;
    }
    if args.api.is_some() {
        config.api.listen = args.api;
    }
    if args.web.is_some() {
        config.web.listen = args.web;
    }
    if args.tls_cert.is_some() {
        config.tls_cert = args.tls_cert.clone();
        config.tls_key = args.tls_key.clone();
    }
    if args.secret_file.is_some() {
        config.secret_file = args.secret_file.clone();
    }
    config.dev |= args.dev;
    let set = |target: &mut u64, value: Option<u64>| {
        if let Some(v) = value {
            *target = v;
        }
    };
    set(&mut config.grace_secs, args.grace_secs);
    set(&mut config.retention_secs, args.retention_secs);
    set(&mut config.handshake_timeout_ms, args.handshake_timeout_ms);
    set(&mut config.login_timeout_ms, args.login_timeout_ms);
    if let Some(v) = args.max_invitees {
        config.limits.max_invitees = v;
    }
    if let Some(v) = args.max_devices {
        config.limits.max_devices = v;
    }
    if let Some(v) = args.max_frame_bytes {
        config.max_frame_bytes = v;
    }
    if let Some(v) = args.max_open_invitations {
        config.max_open_invitations = v;
    }
    if let Some(v) = args.listen_backlog {
        config.listen_backlog = v;
    }
    if let Some(v) = args.max_connections {
        config.max_connections = v;
    }
    if let Some(v) = args.max_connections_per_ip {
        config.max_connections_per_ip = v;
    }
    if let Some(v) = args.max_pending_logins {
        config.max_pending_logins = v;
    }
    if let Some(v) = args.messages_per_sec {
        config.messages_per_sec = v;
    }
    if let Some(v) = args.messages_burst {
        config.messages_burst = v;
    }
    if let Some(v) = args.heartbeat_secs {
        config.heartbeat_secs = v;
    }
    if let Some(v) = args.log_format {
        config.log_format = v;
    }
    if let Some(v) = args.store {
        config.store = v;
    }
    if args.data_dir.is_some() {
        config.data_dir = args.data_dir.clone();
    }
    if let Some(v) = args.durability {
        config.durability = v;
    }
    if let Some(v) = &args.redis_url {
        config.redis.url = v.clone();
    }
    if args.node_name.is_some() {
        config.redis.node = args.node_name.clone();
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("BECKON_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    // The library's own `signaling` log, into the same stream.
    beckon::log::set_sink(
        Some(Arc::new(|level, tag, sub_tag, message| {
            use beckon::log::Level;
            match level {
                Level::Error => tracing::error!(tag, sub_tag, "{message}"),
                Level::Warn => tracing::warn!(tag, sub_tag, "{message}"),
                Level::Info => tracing::debug!(tag, sub_tag, "{message}"),
                Level::Debug | Level::Trace => tracing::trace!(tag, sub_tag, "{message}"),
            }
        })),
        // Per-operation lines cost time on the hot path: only warnings and
        // errors unless BECKON_LIBRARY_LOG asks for more.
        library_log_level(),
    );
}

fn library_log_level() -> beckon::log::Level {
    std::env::var("BECKON_LIBRARY_LOG")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .and_then(beckon::log::Level::from_i32)
        .unwrap_or(beckon::log::Level::Warn)
}

async fn stdin_closed() {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buffer = [0u8; 64];
    while matches!(stdin.read(&mut buffer).await, Ok(n) if n > 0) {}
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
