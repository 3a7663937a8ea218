//! The command line, and the bounds every setting must stay within.

use std::path::PathBuf;
use std::time::Duration;

use beckon::DispatchMode;
use clap::{Parser, ValueEnum};

/// The longest measurement a run may ask for: the tool must always stop by itself.
pub const MAX_DURATION_SECS: f64 = 120.0;
pub const MAX_WARMUP_SECS: f64 = 30.0;
/// How long the end of a run waits for invitations still in flight.
pub const DRAIN: Duration = Duration::from_secs(10);
/// How long one login may take before the run gives up.
pub const LOGIN_WAIT: Duration = Duration::from_secs(15);

#[derive(Parser, Debug)]
#[command(
    name = "beckon-bench",
    version,
    about = "Drives inviter/invitee client pairs against a Beckon hub and reports complete invitations per second and their latency"
)]
pub struct Options {
    /// The hub: memory://NAME (in this process) or ws://HOST:PORT of a running
    /// beckon-server. Several nodes of one deployment: repeat it (or give
    /// URL,URL,...); pair i's inviter then uses URL i % N and its invitee URL
    /// (i + 1) % N, so every invitation crosses nodes.
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "memory://beckon-bench",
        value_delimiter = ',',
        conflicts_with = "spawn_server"
    )]
    pub urls: Vec<String>,

    /// With several --url: the admin address (HOST:PORT) of each node, in the
    /// same order. After the logins the run waits until each inviter's node
    /// counts its invitee online (`/users/{user}/devices`), so the first
    /// sends do not race the presence spreading between nodes.
    #[arg(long = "admin", value_name = "HOST:PORT", value_delimiter = ',')]
    pub admins: Vec<String>,

    /// Start a beckon-server inside this process on 127.0.0.1 (any free port,
    /// no secret, rate limits raised out of the way) and drive it over ws://.
    #[arg(long)]
    pub spawn_server: bool,

    /// The spawned server's store: memory (as before the durable store), or
    /// sqlite in a fresh temporary data directory (removed after the run).
    /// Not redis: run the nodes yourself (bench/cluster.sh).
    #[arg(long, value_enum, default_value_t = beckon_server::StoreKind::Memory)]
    pub server_store: beckon_server::StoreKind,

    /// The spawned server's durability with `--server-store sqlite`.
    #[arg(long, value_enum, default_value_t = beckon_server::Durability::Normal)]
    pub server_durability: beckon_server::Durability,

    /// The spawned server sends every invitation and device event as a
    /// signed webhook to a receiver in this process that answers 204 at once
    /// (docs/WEBHOOKS.md): what webhooks cost the server.
    #[arg(long, requires = "spawn_server")]
    pub server_webhook: bool,

    /// Worker threads of the spawned server's runtime.
    #[arg(long, default_value_t = 2)]
    pub server_threads: usize,

    /// Inviter/invitee pairs. With `--dispatch thread` each client owns a
    /// thread: keep this moderate (8 to 64) or use the pool.
    #[arg(long, default_value_t = 8)]
    pub pairs: usize,

    /// Where each client's callbacks run: a thread per client, or the
    /// library's pool shared by all clients (scales to many pairs).
    #[arg(long, value_enum, default_value_t = Dispatch::Thread)]
    pub dispatch: Dispatch,

    /// Invitations each pair may have in flight at once (sent, not yet
    /// answered back to the inviter).
    #[arg(long, default_value_t = 16)]
    pub in_flight: usize,

    /// Seconds measured, after the warm-up (at most 120).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Seconds run before measuring starts; nothing of them is counted.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,

    /// Target send rate (invitations per second, all pairs together), paced
    /// open-loop: sends are due on a fixed schedule whatever the answers do,
    /// and latency counts from the scheduled time. Without it each pair keeps
    /// its window full (closed loop, the highest throughput).
    #[arg(long)]
    pub rate: Option<f64>,

    /// Each invitation's timeout in seconds.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u32,

    /// The login token for every user (a development server accepts any).
    #[arg(long, default_value = "bench")]
    pub token: String,

    /// Mint each user's token from this secret file instead (a server with a
    /// secret).
    #[arg(long, conflicts_with = "token")]
    pub secret_file: Option<PathBuf>,

    /// Print one JSON object on stdout instead of the text report (and no
    /// progress lines on stderr).
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dispatch {
    Thread,
    Pool,
}

impl Dispatch {
    pub fn mode(self) -> DispatchMode {
        match self {
            Dispatch::Thread => DispatchMode::Thread,
            Dispatch::Pool => DispatchMode::Pool,
        }
    }
}

impl Options {
    /// Refuses settings outside their bounds, with the flag's name.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.duration > 0.0 && self.duration <= MAX_DURATION_SECS) {
            return Err(format!(
                "--duration: {} s is outside (0, {MAX_DURATION_SECS}]",
                self.duration
            ));
        }
        if !(self.warmup >= 0.0 && self.warmup <= MAX_WARMUP_SECS) {
            return Err(format!(
                "--warmup: {} s is outside [0, {MAX_WARMUP_SECS}]",
                self.warmup
            ));
        }
        if !(1..=1024).contains(&self.pairs) {
            return Err(format!("--pairs: {} is outside 1..=1024", self.pairs));
        }
        if !(1..=100_000).contains(&self.in_flight) {
            return Err(format!(
                "--in-flight: {} is outside 1..=100000",
                self.in_flight
            ));
        }
        if !(1..=64).contains(&self.server_threads) {
            return Err(format!(
                "--server-threads: {} is outside 1..=64",
                self.server_threads
            ));
        }
        if let Some(rate) = self.rate {
            if !(1.0..=10_000_000.0).contains(&rate) {
                return Err(format!("--rate: {rate} is outside 1..=10000000"));
            }
        }
        if !(1..=600).contains(&self.timeout_secs) {
            return Err(format!(
                "--timeout-secs: {} is outside 1..=600",
                self.timeout_secs
            ));
        }
        if self.server_store == beckon_server::StoreKind::Redis {
            return Err(
                "--server-store redis: a spawned server has no Redis; start nodes on one and give their --url (bench/cluster.sh)"
                    .to_owned(),
            );
        }
        for url in &self.urls {
            let networked = url.starts_with("ws://") || url.starts_with("wss://");
            if !(networked || url.starts_with("memory://")) {
                return Err(format!(
                    "--url: '{url}' is not memory://NAME, ws://HOST:PORT or wss://HOST:PORT"
                ));
            }
            if self.urls.len() > 1 && !networked {
                return Err(format!(
                    "--url: '{url}': several URLs are the nodes of one deployment (ws:// or wss://)"
                ));
            }
        }
        if !(1..=64).contains(&self.urls.len()) {
            return Err(format!("--url: {} URLs, not 1..=64", self.urls.len()));
        }
        if !self.admins.is_empty() && self.admins.len() != self.urls.len() {
            return Err(format!(
                "--admin: {} addresses for {} URLs (one per node, in the same order)",
                self.admins.len(),
                self.urls.len()
            ));
        }
        Ok(())
    }

    /// The URL of pair `index`'s inviter and of its invitee: with N nodes,
    /// nodes `index % N` and `(index + 1) % N` (the same one when N = 1).
    pub fn pair_urls(&self, index: usize) -> (&str, &str) {
        let n = self.urls.len().max(1);
        (&self.urls[index % n], &self.urls[(index + 1) % n])
    }

    /// What the report calls the hub: the URL, or the nodes' URLs joined by
    /// commas.
    pub fn url_label(&self) -> String {
        self.urls.join(",")
    }

    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }
}

#[cfg(test)]
mod tests {
    use super::Options;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<(), String> {
        let mut all = vec!["beckon-bench"];
        all.extend_from_slice(args);
        Options::try_parse_from(all)
            .map_err(|e| e.to_string())?
            .validate()
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(parse(&[]), Ok(()));
        assert_eq!(parse(&["--spawn-server", "--rate", "10000"]), Ok(()));
    }

    #[test]
    fn out_of_bounds_is_refused() {
        for args in [
            &["--duration", "0"][..],
            &["--duration", "121"],
            &["--warmup", "-1"],
            &["--pairs", "0"],
            &["--in-flight", "0"],
            &["--rate", "0.5"],
            &["--timeout-secs", "0"],
            &["--url", "http://x"],
            &["--spawn-server", "--server-store", "redis"],
            &["--url", "ws://127.0.0.1:1", "--spawn-server"],
            &["--url", "ws://127.0.0.1:1,memory://x"],
            &[
                "--url",
                "ws://127.0.0.1:1",
                "--url",
                "ws://127.0.0.1:2",
                "--admin",
                "127.0.0.1:3",
            ],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn several_urls_put_each_invitee_on_the_next_node() {
        let three = ["ws://127.0.0.1:1", "ws://127.0.0.1:2", "ws://127.0.0.1:3"];
        for args in [
            vec!["--url", three[0], "--url", three[1], "--url", three[2]],
            vec![
                "--url",
                "ws://127.0.0.1:1,ws://127.0.0.1:2,ws://127.0.0.1:3",
            ],
        ] {
            let mut all = vec!["beckon-bench"];
            all.extend_from_slice(&args);
            let options = Options::try_parse_from(all).map_err(|e| e.to_string());
            let options = options.as_ref().expect("parses");
            assert_eq!(options.validate(), Ok(()));
            assert_eq!(options.urls, three);
            assert_eq!(options.pair_urls(0), (three[0], three[1]));
            assert_eq!(options.pair_urls(1), (three[1], three[2]));
            assert_eq!(options.pair_urls(2), (three[2], three[0]));
            assert_eq!(options.pair_urls(3), (three[0], three[1]));
        }
        let one = Options::try_parse_from(["beckon-bench"]).map_err(|e| e.to_string());
        let one = one.as_ref().expect("parses");
        assert_eq!(
            one.pair_urls(5),
            ("memory://beckon-bench", "memory://beckon-bench")
        );
        assert_eq!(one.url_label(), "memory://beckon-bench");
        assert_eq!(
            parse(&[
                "--url",
                "ws://127.0.0.1:1,ws://127.0.0.1:2",
                "--admin",
                "127.0.0.1:3,127.0.0.1:4"
            ]),
            Ok(())
        );
    }
}
