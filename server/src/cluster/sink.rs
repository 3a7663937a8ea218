//! A remote session's sink: the hub's pushes for a device of another node
//! go to that node's inbox, in order, once durable (`outbound.rs`).

use std::sync::{Arc, Weak};

use beckon::protocol::{DeviceId, Push, SessionSink, UserId};

use super::messages::Message;
use super::Cluster;

pub(super) struct RemoteSink {
    cluster: Weak<Cluster>,
    node: String,
    user: UserId,
    device: DeviceId,
    gen: u64,
}

impl RemoteSink {
    pub fn new(
        cluster: &Arc<Cluster>,
        node: &str,
        user: &UserId,
        device: &DeviceId,
        gen: u64,
    ) -> RemoteSink {
        RemoteSink {
            cluster: Arc::downgrade(cluster),
            node: node.to_owned(),
            user: user.clone(),
            device: device.clone(),
            gen,
        }
    }
}

impl SessionSink for RemoteSink {
    fn deliver(&self, push: Push) {
        // A session's own notices (kicked out, its token) are the business
        // of the node it is on, which sees the same logins.
        if matches!(
            push,
            Push::KickedOut | Push::TokenExpired | Push::TokenWillExpire { .. }
        ) {
            return;
        }
        let Some(cluster) = self.cluster.upgrade() else {
            return;
        };
        let ticket = beckon::hub::frame_ticket();
        let message = Message::Deliver {
            from: cluster.me.clone(),
            user: self.user.clone(),
            device: self.device.clone(),
            gen: self.gen,
            push,
        };
        cluster.outbound.send(&cluster, &self.node, message, ticket);
    }
}
