//! Watching the server from outside while a tool loads it: `/healthz` and
//! `/metrics` on its admin address (latency, failures, a few gauges), and its
//! resident memory from /proc.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{timeout, Instant, MissedTickBehavior};

use crate::pair::new_histogram;
use crate::raw::rss_bytes;
use crate::report::Summary;

/// One admin request may take this long before it counts as failed.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// The most of a response kept (a /metrics body is a few KiB).
const MAX_BODY: u64 = 4 * 1024 * 1024;

/// A `GET` over a fresh connection. Returns the status code and the body.
pub async fn http_get(addr: &str, path: &str) -> Result<(u16, String), String> {
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {}", e.kind()))?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {}", e.kind()))?;
        let mut bytes = Vec::new();
        (&mut stream)
            .take(MAX_BODY)
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| format!("read: {}", e.kind()))?;
        Ok::<_, String>(bytes)
    };
    let bytes = timeout(ADMIN_TIMEOUT, exchange)
        .await
        .map_err(|_| "timeout".to_owned())??;
    let text = String::from_utf8_lossy(&bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| "no status line".to_owned())?;
    Ok((status, body.to_owned()))
}

/// The samples of `beckon_*` metrics in a Prometheus text body whose name
/// starts with one of `prefixes`, by their full name with labels.
pub fn metric_lines(body: &str, prefixes: &[&str]) -> BTreeMap<String, f64> {
    let mut found = BTreeMap::new();
    for line in body.lines() {
        if line.starts_with('#') || !prefixes.iter().any(|p| line.starts_with(p)) {
            continue;
        }
        if let Some((name, value)) = line.rsplit_once(' ') {
            if let Ok(value) = value.parse::<f64>() {
                found.insert(name.to_owned(), value);
            }
        }
    }
    found
}

/// The metrics every report shows at its end.
pub const REPORTED_METRICS: &[&str] = &[
    "beckon_connections_open",
    "beckon_connections_opened",
    "beckon_connections_dropped",
    "beckon_connections_refused",
    "beckon_logins",
    "beckon_sessions_live",
    "beckon_rate_limited",
    "beckon_quota_refused",
    "beckon_outbox_overflows",
    "beckon_protocol_errors",
];

/// What polling the admin address saw.
#[derive(Serialize)]
pub struct AdminReport {
    pub addr: String,
    pub polls: u64,
    /// Round trip of `GET /healthz` and `GET /metrics`, in microseconds.
    pub healthz_us: Summary,
    pub metrics_us: Summary,
    /// Failed polls by path and why (`healthz:timeout`, `metrics:status_503`).
    pub failures: BTreeMap<String, u64>,
    /// The highest `beckon_connections_open` seen.
    pub peak_connections_open: Option<f64>,
    /// The reported metrics of the last good `/metrics`.
    pub last_metrics: BTreeMap<String, f64>,
}

impl AdminReport {
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    pub fn lines(&self) -> String {
        let mut out = format!(
            "admin {}: {} polls, {} failed{}\n",
            self.addr,
            self.polls,
            self.failed(),
            if self.failures.is_empty() {
                String::new()
            } else {
                format!(" {:?}", self.failures)
            }
        );
        out.push_str(&self.healthz_us.line("  GET /healthz"));
        out.push('\n');
        out.push_str(&self.metrics_us.line("  GET /metrics"));
        out.push('\n');
        if let Some(peak) = self.peak_connections_open {
            out.push_str(&format!("  peak connections_open {peak:.0}\n"));
        }
        if !self.last_metrics.is_empty() {
            out.push_str("  server metrics at the end:\n");
            for (name, value) in &self.last_metrics {
                out.push_str(&format!("    {name:<58} {value:.0}\n"));
            }
        }
        out
    }
}

/// Polls `/healthz` then `/metrics` every `interval` until `stop` turns true,
/// then once more for the final metrics.
pub async fn poll_admin(
    addr: String,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<AdminReport, String> {
    let mut healthz = new_histogram()?;
    let mut metrics = new_histogram()?;
    let mut failures = BTreeMap::new();
    let mut polls = 0;
    let mut peak: Option<f64> = None;
    let mut last_metrics = BTreeMap::new();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_round = false;
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = crate::probe::until_true(&mut stop) => last_round = true,
        }
        polls += 1;
        for (path, histogram) in [("/healthz", &mut healthz), ("/metrics", &mut metrics)] {
            let start = Instant::now();
            let got = http_get(&addr, path).await;
            let took = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            histogram.saturating_record(took);
            let name = path.trim_start_matches('/');
            match got {
                Ok((200, body)) => {
                    if path == "/metrics" {
                        last_metrics = metric_lines(&body, REPORTED_METRICS);
                        if let Some(open) = last_metrics.get("beckon_connections_open") {
                            peak = Some(peak.map_or(*open, |p| p.max(*open)));
                        }
                    }
                }
                Ok((status, _)) => {
                    *failures
                        .entry(format!("{name}:status_{status}"))
                        .or_insert(0) += 1
                }
                Err(why) => *failures.entry(format!("{name}:{why}")).or_insert(0) += 1,
            }
        }
        if last_round {
            break;
        }
    }
    Ok(AdminReport {
        addr,
        polls,
        healthz_us: Summary::of(&healthz),
        metrics_us: Summary::of(&metrics),
        failures,
        peak_connections_open: peak,
        last_metrics,
    })
}

/// The server's resident memory over a run.
#[derive(Serialize, Clone, Copy, Default)]
pub struct RssReport {
    pub pid: u32,
    pub start_bytes: u64,
    pub peak_bytes: u64,
    pub end_bytes: u64,
    pub samples: u64,
}

impl RssReport {
    pub fn line(&self) -> String {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        format!(
            "server RSS (pid {}): start {:.1} MiB, peak {:.1} MiB, end {:.1} MiB ({} samples)",
            self.pid,
            mib(self.start_bytes),
            mib(self.peak_bytes),
            mib(self.end_bytes),
            self.samples
        )
    }
}

/// Samples the VmRSS of `pid` every `interval` until `stop` turns true.
pub async fn sample_rss(
    pid: u32,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<RssReport, String> {
    let first = rss_bytes(pid).ok_or_else(|| format!("--server-pid {pid}: no VmRSS in /proc"))?;
    let mut report = RssReport {
        pid,
        start_bytes: first,
        peak_bytes: first,
        end_bytes: first,
        samples: 1,
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let last_round = tokio::select! {
            _ = ticks.tick() => false,
            () = crate::probe::until_true(&mut stop) => true,
        };
        // A server that exited keeps its last figures.
        if let Some(rss) = rss_bytes(pid) {
            report.samples += 1;
            report.peak_bytes = report.peak_bytes.max(rss);
            report.end_bytes = rss;
        }
        if last_round {
            return Ok(report);
        }
    }
}

/// Resolves once `flag` is true (or its sender is gone). The guard
/// `wait_for` returns is dropped inside, so a `select!` that awaits in another
/// branch stays `Send`.
pub async fn until_true(flag: &mut watch::Receiver<bool>) {
    drop(flag.wait_for(|flag| *flag).await);
}

/// Records a duration in nanoseconds.
pub fn record(histogram: &mut Histogram<u64>, took: Duration) {
    histogram.saturating_record(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
}

#[cfg(test)]
mod tests {
    use super::metric_lines;

    #[test]
    fn picks_metric_lines() {
        let body = "# HELP beckon_connections_open x\n# TYPE beckon_connections_open gauge\nbeckon_connections_open 12\nbeckon_connections_dropped_total{result=\"login_timeout\"} 3\nbeckon_pushes_total 9\nbeckon_logins_total{result=\"ok\"} 1.5e3\n";
        let found = metric_lines(body, &["beckon_connections", "beckon_logins"]);
        assert_eq!(found.get("beckon_connections_open"), Some(&12.0));
        assert_eq!(
            found.get("beckon_connections_dropped_total{result=\"login_timeout\"}"),
            Some(&3.0)
        );
        assert_eq!(
            found.get("beckon_logins_total{result=\"ok\"}"),
            Some(&1500.0)
        );
        assert!(!found.contains_key("beckon_pushes_total"));
    }
}
