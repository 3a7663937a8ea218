//! The server API on several nodes. A key may call any node's API: what it
//! asks of an invitation another node holds (cancel; a send whose
//! idempotency key another node claimed first), or of a device logged in at
//! another node (kick), runs on that node, sent to its inbox as
//! [`Message::Api`] and answered the way a device's forwarded request is
//! (once the change is durable there). Reads need no other node: records
//! and history are read from Redis, devices from this node's mirror.
//!
//! While this node takes a stopped node's invitations over, a request about
//! an invitation its hub does not hold yet waits for the takeover
//! (`takeover.rs`), here or sent from another node.
//!
//! Like a device's request, one the API forwarded goes again to whoever
//! holds its invitation (or device) if its node stops before answering
//! ([`Cluster::run_api_at`] returns None, and the API looks the node up
//! again); the node may have made the change before it stopped, so a
//! cancel sent again can find the invitation ended. A node that does not
//! answer within [`REQUEST_PATIENCE`] makes the API answer SERVER (the
//! change may or may not have been made) and the backend tries again, with
//! the same idempotency key for a send.

use std::sync::Arc;

use beckon::hub::InvitationRecord;
use beckon::protocol::wire::WireError;
use beckon::protocol::{DeviceId, InvitationId, UserId};
use beckon::{Error, ErrorCode};
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::messages::{ApiRequest, Message};
use super::{Cluster, Device, REQUEST_PATIENCE};
use crate::handler::Answer;

/// Where something the API acts on is.
#[derive(Debug, PartialEq, Eq)]
pub enum Held {
    /// On this node (or nowhere: this node's hub then says so).
    Here,
    /// On another node, by name.
    At(String),
}

fn unreachable_store(why: String) -> Error {
    Error::new(ErrorCode::Server, format!("{why}; nothing was changed"))
}

impl Cluster {
    /// Where the invitation `id` is held.
    pub async fn invitation_held(&self, id: &InvitationId) -> beckon::Result<Held> {
        if self.hub.has_invitation(id) {
            return Ok(Held::Here);
        }
        let owner = match self.known_owner(id) {
            Some(owner) => Some(owner),
            None => self.stored_owner(id).await.map_err(unreachable_store)?,
        };
        Ok(match owner {
            Some(owner) if owner != self.me => Held::At(owner),
            _ => {
                self.settled(id).await;
                Held::Here
            }
        })
    }

    /// Claims the id of an idempotent send for this node, unless a node
    /// claimed it first: that node then runs the send.
    pub async fn claim_for_api(&self, id: &InvitationId) -> beckon::Result<Held> {
        if self.hub.has_invitation(id) {
            return Ok(Held::Here);
        }
        let owner = self.claim(id).await.map_err(unreachable_store)?;
        Ok(if owner == self.me {
            self.settled(id).await;
            Held::Here
        } else {
            Held::At(owner)
        })
    }

    /// Where `device` of `user` is logged in, as this node knows it (none:
    /// not logged in).
    pub fn device_held(&self, user: &UserId, device: &DeviceId) -> Option<Held> {
        let devices = self.devices.lock();
        match devices.get(&(user.clone(), device.clone()))? {
            Device::Local { .. } => Some(Held::Here),
            Device::Remote { node, .. } => Some(Held::At(node.clone())),
        }
    }

    /// The stored record of an invitation another node holds, as Redis has
    /// it (what that node made durable).
    pub fn stored_record(&self, id: &InvitationId) -> beckon::Result<Option<InvitationRecord>> {
        let store = self.store.clone();
        let ids = [id.clone()];
        let read = tokio::task::block_in_place(|| store.records(&ids));
        let records = read.map_err(|e| {
            Error::new(
                ErrorCode::Server,
                format!("the server cannot read its store now ({e})"),
            )
        })?;
        Ok(records.into_iter().next())
    }

    /// Runs `request` at `node` and waits for its answer; None when `node`
    /// stopped first (ask where the invitation or device is now, and send
    /// it again).
    pub async fn run_api_at<T: DeserializeOwned>(
        self: &Arc<Self>,
        node: &str,
        request: ApiRequest,
    ) -> beckon::Result<Option<T>> {
        if let Some(why) = self.store.lease_lost() {
            return Err(unreachable_store(format!(
                "this server node is stopping ({why})"
            )));
        }
        let key = self
            .next_key
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (answered, answer) = oneshot::channel();
        let waiting = super::ApiWaiting {
            node: node.to_owned(),
            answered,
        };
        self.api_pending.lock().insert(key, waiting);
        let message = Message::Api {
            from: self.me.clone(),
            epoch: self.store.epoch(),
            key,
            request,
        };
        self.outbound.send(self, node, message, 0);
        let waited = tokio::time::timeout(REQUEST_PATIENCE, answer).await;
        self.api_pending.lock().remove(&key);
        match waited {
            Ok(Ok(answer)) => decode(&answer).map(Some),
            // Dropped unanswered: the node stopped.
            Ok(Err(_)) => Ok(None),
            Err(_) => Err(Error::new(
                ErrorCode::Server,
                format!(
                    "node {node}, which holds it, did not answer within {} s; the change may \
                     or may not have been made",
                    REQUEST_PATIENCE.as_secs()
                ),
            )),
        }
    }

    /// Runs a request of node `from`'s server API on this node's hub; the
    /// answer goes back once what it changed is durable.
    pub(super) fn run_api_request(self: &Arc<Self>, from: String, key: u64, request: ApiRequest) {
        let answer = |this: &Arc<Cluster>, answer: Answer| {
            let ticket = beckon::hub::frame_ticket();
            let message = Message::Answer {
                key,
                body: answer.body,
                failed: answer.failed,
            };
            this.outbound.send(this, &from, message, ticket);
        };
        match request {
            ApiRequest::Send { inviter, request } => {
                self.hub.send_for_user(&inviter, request, |result| {
                    answer(self, Answer::of(result));
                });
            }
            ApiRequest::Cancel { request } => {
                answer(self, Answer::of(self.hub.cancel_for_server(request)));
            }
            ApiRequest::Kick { user, device } => {
                // Only a device logged in here: a mirrored one is its own
                // node's to end.
                let result = match self.device_held(&user, &device) {
                    Some(Held::Here) => self.hub.kick(&user, &device),
                    _ => Ok(false),
                };
                answer(self, Answer::of(result));
            }
        }
    }
}

/// The result an [`Answer`] holds (`"ok":...` or `"error":...`).
fn decode<T: DeserializeOwned>(answer: &Answer) -> beckon::Result<T> {
    let text = format!("{{{}}}", answer.body);
    let bad = |e: serde_json::Error| Error::internal(format!("an answer of another node: {e}"));
    if answer.failed {
        #[derive(serde::Deserialize)]
        struct Failed {
            error: WireError,
        }
        let failed: Failed = serde_json::from_str(&text).map_err(bad)?;
        Err(Error::from(failed.error))
    } else {
        #[derive(serde::Deserialize)]
        struct Done<T> {
            ok: T,
        }
        let done: Done<T> = serde_json::from_str(&text).map_err(bad)?;
        Ok(done.ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_decode_to_what_they_hold() {
        let ok = Answer::of(Ok(true));
        assert!(decode::<bool>(&ok).unwrap());
        let failed = Answer::of::<bool>(Err(Error::new(
            ErrorCode::InvitationNotFound,
            "invitation_id: x is not known",
        )));
        let error = decode::<bool>(&failed).unwrap_err();
        assert_eq!(error.code, ErrorCode::InvitationNotFound);
        assert_eq!(error.message, "invitation_id: x is not known");
        let garbled = Answer {
            body: "nonsense".into(),
            failed: false,
        };
        assert_eq!(
            decode::<bool>(&garbled).unwrap_err().code,
            ErrorCode::Internal
        );
    }
}
