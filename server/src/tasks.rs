//! Stopping the background tasks of a service at shutdown.

use std::time::Duration;

use tokio::task::JoinHandle;

/// Waits for `workers` to end, up to `deadline`; then aborts those still
/// running and waits for them to go. Says whether all ended in time.
pub async fn join_or_abort(mut workers: Vec<JoinHandle<()>>, deadline: Duration) -> bool {
    let all = async {
        for worker in &mut workers {
            let _ = worker.await;
        }
    };
    if tokio::time::timeout(deadline, all).await.is_ok() {
        return true;
    }
    for worker in &workers {
        worker.abort();
    }
    for worker in workers {
        let _ = worker.await;
    }
    false
}
