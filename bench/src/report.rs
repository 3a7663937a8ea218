//! The figures of a run, as text for people or as one JSON object for scripts.

use std::collections::BTreeMap;
use std::sync::Arc;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cpu::Usage;
use crate::options::Dispatch;
use crate::pair::{new_histogram, Pair};

#[derive(Serialize)]
pub struct Report {
    /// The hub's URL; with several nodes, theirs joined by commas.
    pub url: String,
    /// Nodes of the deployment (one `--url` each); absent when 1.
    #[serde(skip_serializing_if = "is_one")]
    pub nodes: usize,
    /// With `--admin`: seconds waited after the logins until every inviter's
    /// node counted its invitee online.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub presence_wait_secs: Option<f64>,
    pub spawned_server: bool,
    /// The spawned server's store ("memory", "sqlite normal", "sqlite full").
    pub server_store: Option<String>,
    pub pairs: usize,
    pub dispatch: Dispatch,
    pub in_flight: usize,
    /// The `--rate` asked for; absent for a closed-loop run.
    pub rate: Option<f64>,
    pub warmup_secs: f64,
    /// The measured window as it really was.
    pub duration_secs: f64,
    /// Invitations handed to `send_invitation`, warm-up included.
    pub sent: u64,
    /// Complete invitations (answer heard by the inviter) in the measured window.
    pub completed: u64,
    pub invitations_per_sec: f64,
    /// Still in flight when the drain gave up.
    pub unfinished: usize,
    /// Times the pacer found every window full while measuring (paced runs).
    pub window_full_waits: u64,
    /// Latencies of invitations sent in the measured window, in microseconds.
    pub latency_us: Latencies,
    /// Failures by operation and code (`send:RATE_LIMITED`, ...).
    pub errors: BTreeMap<String, u64>,
    /// `--spawn-server`: pushes the server sent per complete invitation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_pushes_per_invitation: Option<f64>,
    /// `--spawn-server` on SQLite: its group commits (all phases).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_commits: Option<StoreCommits>,
    /// `--server-webhook`: what the sink got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_webhooks: Option<Webhooks>,
    /// CPU time of this process's threads over the measured window.
    pub cpu: Usage,
}

#[derive(Serialize)]
pub struct StoreCommits {
    /// Group commits per complete invitation.
    pub commits_per_invitation: f64,
    /// Changes written per group commit, on average.
    pub changes_per_commit: f64,
    /// Time one group commit took, on average (microseconds).
    pub commit_us: f64,
}

#[derive(Serialize)]
pub struct Webhooks {
    /// Webhooks the sink received per complete invitation (all phases).
    pub received_per_invitation: f64,
    /// Events the server dropped because its queue was full.
    pub dropped: u64,
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

#[derive(Serialize)]
pub struct Latencies {
    /// From the send (its scheduled time, when paced) to INVITATION_RECEIVED
    /// in the invitee's handler.
    pub send_to_received: Summary,
    /// From the send to INVITATION_ACCEPTED in the inviter's handler.
    pub send_to_answer: Summary,
    /// Paced runs: from a send's due time to the pacer's call, the part of
    /// the latencies above that is the pacer's own (a busy machine, sleeps
    /// that overshoot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pacer_lag: Option<Summary>,
}

#[derive(Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Summary {
    pub fn of(histogram: &Histogram<u64>) -> Summary {
        let us = |ns: u64| ns as f64 / 1000.0;
        Summary {
            count: histogram.len(),
            p50: us(histogram.value_at_quantile(0.50)),
            p90: us(histogram.value_at_quantile(0.90)),
            p99: us(histogram.value_at_quantile(0.99)),
            max: us(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }

    pub fn line(&self, what: &str) -> String {
        let ms = |us: f64| us / 1000.0;
        format!(
            "{what:<18} p50 {:>8.3} ms   p90 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms   ({} samples)",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.max),
            self.count
        )
    }
}

/// The latencies of every pair, merged.
pub fn latencies(
    pairs: &[Arc<Pair>],
    pacer_lag: Option<&Histogram<u64>>,
) -> Result<Latencies, String> {
    let mut received = new_histogram()?;
    let mut answered = new_histogram()?;
    for pair in pairs {
        received
            .add(&*pair.received.lock())
            .map_err(|e| format!("histogram: {e}"))?;
        answered
            .add(&*pair.answered.lock())
            .map_err(|e| format!("histogram: {e}"))?;
    }
    Ok(Latencies {
        send_to_received: Summary::of(&received),
        send_to_answer: Summary::of(&answered),
        pacer_lag: pacer_lag.map(Summary::of),
    })
}

impl Report {
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mode = match self.rate {
            Some(rate) => format!("paced at {rate:.0}/s"),
            None => "closed loop".to_owned(),
        };
        out.push_str(&format!(
            "beckon-bench: {}{}, {} pairs ({:?} dispatch), {} in flight per pair, {mode}\n",
            self.url,
            match &self.server_store {
                Some(store) => format!(" (spawned server, store {store})"),
                None => String::new(),
            },
            self.pairs,
            self.dispatch,
            self.in_flight
        ));
        if self.nodes > 1 {
            out.push_str(&format!(
                "{} nodes: pair i's inviter on node i % {}, its invitee on node (i + 1) % {}",
                self.nodes, self.nodes, self.nodes
            ));
            match self.presence_wait_secs {
                Some(secs) => out.push_str(&format!("; presence spread in {secs:.2} s\n")),
                None => out.push_str("; presence not waited for (no --admin)\n"),
            }
        }
        out.push_str(&format!(
            "measured {:.2} s after {:.1} s warm-up: {} complete invitations, {:.0}/s ({} sent in all, {} unfinished)\n",
            self.duration_secs, self.warmup_secs, self.completed, self.invitations_per_sec, self.sent, self.unfinished
        ));
        out.push_str(&self.latency_us.send_to_received.line("send -> received"));
        out.push('\n');
        out.push_str(&self.latency_us.send_to_answer.line("send -> answer"));
        out.push('\n');
        if let Some(lag) = &self.latency_us.pacer_lag {
            out.push_str(&lag.line("pacer lag"));
            out.push('\n');
        }
        if self.rate.is_some() {
            out.push_str(&format!(
                "pacer waited for a free window {} times\n",
                self.window_full_waits
            ));
        }
        let cpu = &self.cpu;
        let groups: Vec<String> = cpu
            .cores
            .iter()
            .map(|(name, cores)| format!("{name} {cores:.2}"))
            .collect();
        out.push_str(&format!(
            "cpu (cores busy): {}; {:.1} us of CPU per invitation; load average {:.2}\n",
            groups.join(", "),
            cpu.us_per_invitation,
            cpu.load_average
        ));
        if let Some(pushes) = self.server_pushes_per_invitation {
            out.push_str(&format!("server: {pushes:.2} pushes per invitation\n"));
        }
        if let Some(store) = &self.server_commits {
            out.push_str(&format!(
                "store: {:.2} group commits per invitation, {:.1} changes and {:.0} us each\n",
                store.commits_per_invitation, store.changes_per_commit, store.commit_us
            ));
        }
        if let Some(webhooks) = &self.server_webhooks {
            out.push_str(&format!(
                "webhooks: {:.2} received per invitation, {} dropped (queue full)\n",
                webhooks.received_per_invitation, webhooks.dropped
            ));
        }
        if self.errors.is_empty() {
            out.push_str("errors: none\n");
        } else {
            out.push_str("errors:\n");
            for (what, count) in &self.errors {
                out.push_str(&format!("  {what:<40} {count}\n"));
            }
        }
        out
    }
}
