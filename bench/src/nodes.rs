//! Several nodes of one deployment (`--url` repeated): before measuring, wait
//! until presence has spread, i.e. each inviter's node counts its invitee
//! (logged in on the next node) online, as its admin address tells
//! (`/users/{user}/devices`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::pair::Pair;
use crate::probe::http_get;

/// Between two polls of one user.
const POLL: Duration = Duration::from_millis(20);

/// How many devices of `user` the node at `admin` counts online.
async fn devices(admin: &str, user: &str) -> Result<u64, String> {
    let (status, body) = http_get(admin, &format!("/users/{user}/devices")).await?;
    if status != 200 {
        return Err(format!(
            "{admin}/users/{user}/devices: HTTP {status}: {body}"
        ));
    }
    let value: serde_json::Value = serde_json::from_str(body.trim())
        .map_err(|e| format!("{admin}/users/{user}/devices: {e}: {body}"))?;
    value["devices"]
        .as_u64()
        .ok_or_else(|| format!("{admin}/users/{user}/devices: no count in {body}"))
}

/// Waits until the node of each pair's inviter (`admins[i % N]`) counts the
/// pair's invitee online, for at most `limit`. Returns how long that took.
pub async fn wait_for_presence(
    pairs: &[Arc<Pair>],
    admins: &[String],
    limit: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let n = admins.len().max(1);
    let all = async {
        for (index, pair) in pairs.iter().enumerate() {
            let admin = &admins[index % n];
            let user = pair.invitee_user().as_str();
            loop {
                if devices(admin, user).await? >= 1 {
                    break;
                }
                tokio::time::sleep(POLL).await;
            }
        }
        Ok::<_, String>(())
    };
    match tokio::time::timeout(limit, all).await {
        Ok(done) => done.map(|()| started.elapsed()),
        Err(_) => Err(format!(
            "presence did not spread within {limit:?}: an inviter's node does not count its invitee online"
        )),
    }
}
