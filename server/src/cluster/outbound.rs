//! One queue and one task per destination node: messages leave in the order
//! they were queued, each once the change it tells of is durable, appended to
//! the node's inbox stream in batches (one entry each: field `b`, a JSON
//! array of messages). A batch that cannot be written (Redis away) is tried
//! again, in order, until it can.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use beckon::hub::Ticket;
use futures_channel::mpsc::{unbounded, UnboundedReceiver, UnboundedSender};
use futures_util::StreamExt;
use parking_lot::Mutex;

use super::messages::Message;
use super::Cluster;
use crate::store::redis::Keys;

/// Messages taken into one inbox entry at most.
const BATCH: usize = 512;
/// An inbox keeps about this many entries, each a batch (XADD MAXLEN ~): a
/// node that reads nothing for that long has stopped.
pub(super) const INBOX_LENGTH: usize = 100_000;

pub(super) struct Outbound {
    keys: Keys,
    /// The queue of each destination node. A leaf lock.
    queues: Mutex<HashMap<String, UnboundedSender<(Message, Ticket)>>>,
}

impl Outbound {
    pub fn new(keys: Keys) -> Outbound {
        Outbound {
            keys,
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Queues `message` for `node`, to leave once `ticket` is durable. Never
    /// blocks (the hub may hold its locks).
    pub fn send(&self, cluster: &Arc<Cluster>, node: &str, message: Message, ticket: Ticket) {
        let mut queues = self.queues.lock();
        let queue = queues.entry(node.to_owned()).or_insert_with(|| {
            let (queue, messages) = unbounded();
            let stream = self.keys.inbox(node);
            cluster
                .runtime
                .spawn(forward(Arc::downgrade(cluster), stream, messages));
            queue
        });
        if queue.unbounded_send((message, ticket)).is_err() {
            tracing::warn!(
                node,
                "cluster: a message for a node whose queue is gone was dropped"
            );
        }
    }

    /// Drops the queue of a node that stopped (what is queued for it is
    /// dropped: its devices come back elsewhere and sync).
    pub fn forget(&self, node: &str) {
        self.queues.lock().remove(node);
    }
}

/// A message ready to go: its JSON, the ticket it waits for, and whether
/// it is a request (which a node that lost its lease must not send).
struct Encoded {
    text: String,
    ticket: Ticket,
    request: bool,
}

async fn forward(
    cluster: std::sync::Weak<Cluster>,
    stream: String,
    mut messages: UnboundedReceiver<(Message, Ticket)>,
) {
    let mut batch: Vec<Encoded> = Vec::new();
    loop {
        if batch.is_empty() {
            match messages.next().await {
                Some(first) => push(&mut batch, first),
                None => return,
            }
        }
        while batch.len() < BATCH {
            match messages.try_recv() {
                Ok(next) => push(&mut batch, next),
                Err(_) => break,
            }
        }
        let Some(cluster) = cluster.upgrade() else {
            return;
        };
        let upto = batch.iter().map(|m| m.ticket).max().unwrap_or(0);
        cluster.durable(upto).await;
        // A node that lost its lease is stopping: a request it would send
        // now (its client may have been told it failed) must not run. What
        // tells of changes it made durable (deliveries, answers) still goes.
        if cluster.stopping() {
            batch.retain(|m| !m.request);
            if batch.is_empty() {
                continue;
            }
        }
        // The batch is one entry: a JSON array of the messages, in order.
        let mut entry =
            String::with_capacity(batch.iter().map(|m| m.text.len() + 1).sum::<usize>() + 1);
        entry.push('[');
        for (i, message) in batch.iter().enumerate() {
            if i > 0 {
                entry.push(',');
            }
            entry.push_str(&message.text);
        }
        entry.push(']');
        let mut add = redis::cmd("XADD");
        add.arg(&stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(INBOX_LENGTH)
            .arg("*")
            .arg("b")
            .arg(&entry);
        let mut conn = cluster.conn.clone();
        match add.query_async::<()>(&mut conn).await {
            Ok(()) => batch.clear(),
            Err(error) => {
                tracing::warn!(%error, stream, "cluster: cannot write to a node's inbox; trying again");
                drop(cluster);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn push(batch: &mut Vec<Encoded>, (message, ticket): (Message, Ticket)) {
    let request = matches!(message, Message::Request { .. });
    match serde_json::to_string(&message) {
        Ok(text) => batch.push(Encoded {
            text,
            ticket,
            request,
        }),
        Err(error) => tracing::error!(%error, "cluster: a message cannot be encoded"),
    }
}
