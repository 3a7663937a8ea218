//! `beckon token`: mints a login token exactly as `beckon-server token` does,
//! for scripts and tests that hold the server's secret.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use beckon::protocol::UserId;
use clap::Args;

use crate::failure::Failure;

/// The server refuses shorter secrets; a token made with one would be
/// useless.
const MIN_SECRET_BYTES: usize = 16;
/// As `beckon-server token`: up to ten years.
const MAX_TTL_SECS: u64 = 10 * 365 * 24 * 3600;

#[derive(Args, Debug)]
pub struct TokenArgs {
    /// The user the token logs in.
    #[arg(long, env = "BECKON_USER", value_name = "USER")]
    pub user: String,
    /// Seconds the token is valid from now (1 to 10 years).
    #[arg(long, value_name = "SECS")]
    pub ttl: u64,
    /// A file holding the server's secret (its trailing newline is ignored,
    /// as the server does). Wins over --secret.
    #[arg(long, value_name = "FILE")]
    pub secret_file: Option<PathBuf>,
    /// The server's secret itself (prefer --secret-file or the environment:
    /// a command line is visible to other users of the machine).
    #[arg(
        long,
        env = "BECKON_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    pub secret: Option<String>,
}

pub fn run(args: TokenArgs) -> Result<String, Failure> {
    let secret = secret(&args)?;
    let user = UserId::parse(&args.user, &format!("--user '{}'", args.user))
        .map_err(|e| Failure::usage(e.message))?;
    if args.ttl == 0 || args.ttl > MAX_TTL_SECS {
        return Err(Failure::usage(format!(
            "--ttl {}: must be 1 to {MAX_TTL_SECS} seconds (10 years)",
            args.ttl
        )));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| Failure::local(format!("the system clock is before 1970: {e}")))?
        .as_secs();
    Ok(beckon::token::mint(&secret, &user, now + args.ttl))
}

/// The secret as `beckon-server` reads it (ServerConfig::resolve_secret):
/// a file's text without its trailing line ends, else the environment.
fn secret(args: &TokenArgs) -> Result<Vec<u8>, Failure> {
    let (secret, source) = match (&args.secret_file, &args.secret) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::local(format!(
                    "--secret-file {}: cannot read it: {e}",
                    path.display()
                ))
            })?;
            (
                text.trim_end_matches(['\n', '\r']).to_owned(),
                format!("--secret-file {}", path.display()),
            )
        }
        (None, Some(secret)) if !secret.is_empty() => {
            (secret.clone(), "--secret (or BECKON_SECRET)".to_owned())
        }
        _ => {
            return Err(Failure::usage(
                "no secret: give --secret-file FILE, --secret or BECKON_SECRET",
            ))
        }
    };
    if secret.len() < MIN_SECRET_BYTES {
        return Err(Failure::usage(format!(
            "{source}: the secret is {} bytes; a server needs at least {MIN_SECRET_BYTES}",
            secret.len()
        )));
    }
    Ok(secret.into_bytes())
}
