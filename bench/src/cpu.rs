//! Where the time goes, without a profiler: the CPU time of this process's
//! threads (from /proc), grouped by thread name, over the measured window.
//! Client dispatchers are `beckon-dispatch` (or the shared `beckon-pool`), the
//! library's runtime `beckon-rt`, a spawned server's runtime `bench-server`,
//! the pacer `beckon-bench`.

use std::collections::BTreeMap;

use serde::Serialize;

/// /proc reports times in USER_HZ ticks, which Linux fixes at 100 per second
/// for user space whatever the kernel's own tick rate.
const TICKS_PER_SEC: f64 = 100.0;

/// CPU ticks used so far, by thread name (absent off Linux).
#[derive(Clone, Default)]
pub struct Sample(BTreeMap<String, u64>);

impl Sample {
    pub fn take() -> Sample {
        let mut by_name = BTreeMap::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return Sample(by_name);
        };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            if let Some((name, ticks)) = parse_stat(&stat) {
                *by_name.entry(name).or_insert(0) += ticks;
            }
        }
        Sample(by_name)
    }
}

/// The name and user + system ticks of one `/proc/.../stat` line. The name
/// sits in parentheses and may itself hold spaces or parentheses.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    // After the name: state is field 3, utime 14 and stime 15 (1-based).
    let rest: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = rest.get(11)?.parse().ok()?;
    let stime: u64 = rest.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

#[derive(Serialize)]
pub struct Usage {
    /// CPU seconds per thread group over the window.
    pub seconds: BTreeMap<String, f64>,
    /// The same in cores (1.0 = one core busy the whole window).
    pub cores: BTreeMap<String, f64>,
    /// Microseconds of CPU (all threads) per complete invitation.
    pub us_per_invitation: f64,
    /// The machine's 1-minute load average at the end (other processes count:
    /// read the figures with it).
    pub load_average: f64,
}

impl Usage {
    pub fn between(before: &Sample, after: &Sample, window_secs: f64, completed: u64) -> Usage {
        let mut seconds = BTreeMap::new();
        for (name, ticks) in &after.0 {
            let used = ticks.saturating_sub(before.0.get(name).copied().unwrap_or(0));
            if used > 0 {
                seconds.insert(name.clone(), used as f64 / TICKS_PER_SEC);
            }
        }
        let total: f64 = seconds.values().sum();
        let cores = seconds
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    if window_secs > 0.0 {
                        s / window_secs
                    } else {
                        0.0
                    },
                )
            })
            .collect();
        Usage {
            seconds,
            cores,
            us_per_invitation: if completed > 0 {
                total * 1e6 / completed as f64
            } else {
                0.0
            },
            load_average: load_average().unwrap_or(0.0),
        }
    }
}

fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::parse_stat;

    #[test]
    fn reads_name_and_ticks() {
        let line = "4242 (beckon dis)patch) S 1 2 3 4 5 6 7 8 9 10 120 30 0 0 20 0 1 0";
        assert_eq!(parse_stat(line), Some(("beckon dis)patch".to_owned(), 150)));
        assert_eq!(parse_stat("garbage"), None);
    }
}
