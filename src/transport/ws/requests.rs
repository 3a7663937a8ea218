//! The requests of one link, from the moment the application makes them until
//! each is answered: their ids (growing, as the server requires), their
//! encoded frames (kept for re-sending after a reconnect), their deadlines, and
//! the one completion each gets. Owned by the link task alone.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::error::{Error, ErrorCode, Result};
use crate::protocol::{
    Answer, CancelInvitation, CancelOutcome, InvitationId, InvitationPage, InvitationQuery,
    InviteeStatus, PushTarget, SendInvitation, SendOutcome, UserId,
};
use crate::transport::Reply;

/// A request as the application's handle passes it to the link: already
/// encoded (on the application's thread, as the link's time is shared by every
/// login of the process) but for its id, which the link gives in the order it
/// writes frames.
pub(crate) struct Request {
    body: Body,
    replying: Replying,
    /// When the application made it: its deadline counts from here.
    made: Instant,
    /// Its own timeout, if the application gave one for this call.
    within: Option<Duration>,
}

/// A request frame without its id: `{"type":TAG,"id":ID,"KEY":JSON}` once
/// the id is known (`{"type":TAG,"id":ID}` for a request without a body),
/// byte for byte what encoding the whole `ClientFrame` gives.
struct Body {
    tag: &'static str,
    key: &'static str,
    json: String,
}

impl Body {
    fn encode<T: serde::Serialize + ?Sized>(
        tag: &'static str,
        key: &'static str,
        value: &T,
    ) -> Result<Body> {
        let json = serde_json::to_string(value)
            .map_err(|e| Error::internal(format!("cannot encode a request: {e}")))?;
        Ok(Body { tag, key, json })
    }

    /// A request that is only its tag and id.
    fn bare(tag: &'static str) -> Body {
        Body {
            tag,
            key: "",
            json: String::new(),
        }
    }

    /// The frame to write with request id `id`.
    fn frame(&self, id: u64) -> String {
        use std::fmt::Write;
        let mut frame =
            String::with_capacity(self.json.len() + self.tag.len() + self.key.len() + 40);
        frame.push_str("{\"type\":\"");
        frame.push_str(self.tag);
        frame.push_str("\",\"id\":");
        let _ = write!(frame, "{id}");
        if !self.key.is_empty() {
            frame.push_str(",\"");
            frame.push_str(self.key);
            frame.push_str("\":");
            frame.push_str(&self.json);
        }
        frame.push('}');
        frame
    }
}

impl Request {
    /// Encodes a request; `None` if it could not be (then `reply` has been
    /// called with INTERNAL).
    pub(crate) fn send(
        request: SendInvitation,
        within: Option<Duration>,
        reply: Reply<SendOutcome>,
    ) -> Option<Request> {
        match Body::encode("send", "request", &request) {
            Ok(body) => Some(Request::new(
                body,
                within,
                Replying::Send {
                    invitees: request.invitees,
                    timeout_secs: request.timeout_secs,
                    reply,
                },
            )),
            Err(error) => {
                reply(Err(error));
                None
            }
        }
    }

    pub(crate) fn cancel(
        request: CancelInvitation,
        within: Option<Duration>,
        reply: Reply<CancelOutcome>,
    ) -> Option<Request> {
        match Body::encode("cancel", "request", &request) {
            Ok(body) => Some(Request::new(body, within, Replying::Cancel(reply))),
            Err(error) => {
                reply(Err(error));
                None
            }
        }
    }

    pub(crate) fn accept(
        answer: Answer,
        within: Option<Duration>,
        reply: Reply<()>,
    ) -> Option<Request> {
        Request::unit("accept", "answer", &answer, within, reply)
    }

    pub(crate) fn refuse(
        answer: Answer,
        within: Option<Duration>,
        reply: Reply<()>,
    ) -> Option<Request> {
        Request::unit("refuse", "answer", &answer, within, reply)
    }

    pub(crate) fn renew_token(
        token: &str,
        within: Option<Duration>,
        reply: Reply<()>,
    ) -> Option<Request> {
        match Body::encode("renew_token", "token", token) {
            Ok(body) => Some(Request::new(
                body,
                within,
                Replying::RenewToken {
                    token: token.to_owned(),
                    reply,
                },
            )),
            Err(error) => {
                reply(Err(error));
                None
            }
        }
    }

    /// `set_push_target`: idempotent, so re-sent after a reconnect as is.
    pub(crate) fn set_push_target(
        target: &PushTarget,
        within: Option<Duration>,
        reply: Reply<()>,
    ) -> Option<Request> {
        Request::unit("set_push_target", "target", target, within, reply)
    }

    /// `query_invitations`: reads only, so re-sent after a reconnect as is.
    pub(crate) fn query_invitations(
        query: &InvitationQuery,
        within: Option<Duration>,
        reply: Reply<InvitationPage>,
    ) -> Option<Request> {
        match Body::encode("query_invitations", "query", query) {
            Ok(body) => Some(Request::new(body, within, Replying::Page(reply))),
            Err(error) => {
                reply(Err(error));
                None
            }
        }
    }

    pub(crate) fn clear_push_target(within: Option<Duration>, reply: Reply<()>) -> Option<Request> {
        Some(Request::new(
            Body::bare("clear_push_target"),
            within,
            Replying::Unit(reply),
        ))
    }

    fn unit<T: serde::Serialize>(
        tag: &'static str,
        key: &'static str,
        value: &T,
        within: Option<Duration>,
        reply: Reply<()>,
    ) -> Option<Request> {
        match Body::encode(tag, key, value) {
            Ok(body) => Some(Request::new(body, within, Replying::Unit(reply))),
            Err(error) => {
                reply(Err(error));
                None
            }
        }
    }

    fn new(body: Body, within: Option<Duration>, replying: Replying) -> Request {
        Request {
            body,
            replying,
            made: Instant::now(),
            within,
        }
    }

    /// Completes a request that never reached the link's table.
    pub(crate) fn fail(self, error: Error) {
        self.replying.fail(error);
    }
}

/// How a request's result is read and handed back.
enum Replying {
    /// A send also tells the tracker what the application now knows.
    Send {
        invitees: Vec<UserId>,
        timeout_secs: u32,
        reply: Reply<SendOutcome>,
    },
    Cancel(Reply<CancelOutcome>),
    Page(Reply<InvitationPage>),
    Unit(Reply<()>),
    /// The new token is used for reconnects once the server accepted it.
    RenewToken {
        token: String,
        reply: Reply<()>,
    },
}

impl Replying {
    fn fail(self, error: Error) {
        match self {
            Replying::Send { reply, .. } => reply(Err(error)),
            Replying::Cancel(reply) => reply(Err(error)),
            Replying::Page(reply) => reply(Err(error)),
            Replying::Unit(reply) | Replying::RenewToken { reply, .. } => reply(Err(error)),
        }
    }
}

/// What an answered request means to the link, beyond its callback.
pub(super) enum Answered {
    Nothing,
    /// A send succeeded: the application knows this invitation now.
    Sent {
        invitation_id: InvitationId,
        offline: Vec<InviteeStatus>,
        invitees: Vec<UserId>,
        timeout_secs: u32,
    },
    /// The server took this token: use it from now on.
    Token(String),
}

struct Pending {
    id: u64,
    body: Body,
    deadline: Instant,
    /// The timeout the deadline was given by (for the error message).
    within: Duration,
    replying: Replying,
}

impl Pending {
    fn expire(self) {
        self.replying.fail(Error::new(
            ErrorCode::RequestTimeout,
            format!(
                "no answer from the server within {} ms",
                self.within.as_millis()
            ),
        ));
    }
}

pub(super) struct Requests {
    next_id: u64,
    /// The requests with the link's timeout, in id order, so also in deadline
    /// order (deadlines are kept from going back, see `add`). A queue, not a
    /// B-tree: ids only grow, answers mostly come in order, and its buffer is
    /// kept (a B-tree node of these is over 1 KiB, which glibc serves slowly,
    /// and one was made and freed every few requests).
    pending: VecDeque<Pending>,
    /// The requests the application gave a timeout of their own: the rare
    /// case, kept apart so the common one stays a queue.
    own_timeout: BTreeMap<u64, Pending>,
    /// Their deadlines, soonest first.
    own_deadlines: BTreeSet<(Instant, u64)>,
    timeout: Duration,
    /// The latest deadline given in `pending`.
    last_deadline: Option<Instant>,
}

impl Requests {
    pub fn new(timeout: Duration) -> Requests {
        Requests {
            next_id: 1,
            pending: VecDeque::new(),
            own_timeout: BTreeMap::new(),
            own_deadlines: BTreeSet::new(),
            timeout,
            last_deadline: None,
        }
    }

    /// Takes the next id for a frame (a request, or the logout).
    pub fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A server never ignores a new request as a repeat: ids stay above the
    /// highest one it says it handled.
    pub fn ids_above(&mut self, last_request: u64) {
        self.next_id = self.next_id.max(last_request.saturating_add(1));
    }

    /// Gives `request` the next id and keeps it until it is answered; returns
    /// the id.
    pub fn add(&mut self, request: Request) -> u64 {
        let id = self.take_id();
        match request.within {
            Some(within) if within != self.timeout => {
                let deadline = request.made + within;
                self.own_deadlines.insert((deadline, id));
                self.own_timeout.insert(
                    id,
                    Pending {
                        id,
                        body: request.body,
                        deadline,
                        within,
                        replying: request.replying,
                    },
                );
            }
            _ => {
                // Requests made on several threads may reach the link a little
                // out of the order they were made in: a deadline never goes
                // back, so the queue stays in deadline order (off by
                // microseconds at most).
                let mut deadline = request.made + self.timeout;
                if let Some(last) = self.last_deadline {
                    deadline = deadline.max(last);
                }
                self.last_deadline = Some(deadline);
                self.pending.push_back(Pending {
                    id,
                    body: request.body,
                    deadline,
                    within: self.timeout,
                    replying: request.replying,
                });
            }
        }
        id
    }

    /// The frame of request `id`, if it is waiting.
    pub fn frame(&self, id: u64) -> Option<String> {
        let pending = match self.find(id) {
            Some(at) => self.pending.get(at),
            None => self.own_timeout.get(&id),
        };
        pending.map(|p| p.body.frame(id))
    }

    /// The ids of the requests not answered yet with an id above `above`, in
    /// id order.
    pub fn unanswered(&self, above: u64) -> Vec<u64> {
        let from = self.pending.partition_point(|p| p.id <= above);
        let mut ids: Vec<u64> = self.pending.range(from..).map(|p| p.id).collect();
        if !self.own_timeout.is_empty() {
            let start = above.saturating_add(1);
            ids.extend(self.own_timeout.range(start..).map(|(id, _)| *id));
            ids.sort_unstable();
        }
        ids
    }

    /// Where request `id` is in the queue.
    fn find(&self, id: u64) -> Option<usize> {
        // Answers mostly come in order: the first is the usual one.
        match self.pending.front() {
            Some(first) if first.id == id => Some(0),
            _ => self.pending.binary_search_by_key(&id, |p| p.id).ok(),
        }
    }

    fn remove(&mut self, id: u64) -> Option<Pending> {
        if let Some(at) = self.find(id) {
            return self.pending.remove(at);
        }
        let pending = self.own_timeout.remove(&id)?;
        self.own_deadlines.remove(&(pending.deadline, id));
        Some(pending)
    }

    /// Completes request `id` with the server's answer (a repeat or an unknown
    /// id is ignored).
    pub fn answer(&mut self, id: u64, result: Result<Option<Box<RawValue>>>) -> Answered {
        let Some(pending) = self.remove(id) else {
            return Answered::Nothing;
        };
        match pending.replying {
            Replying::Send {
                invitees,
                timeout_secs,
                reply,
            } => {
                let outcome = decode::<SendOutcome>(result);
                let answered = match &outcome {
                    Ok(outcome) => Answered::Sent {
                        invitation_id: outcome.invitation_id.clone(),
                        offline: outcome.error_invitees.clone(),
                        invitees,
                        timeout_secs,
                    },
                    Err(_) => Answered::Nothing,
                };
                reply(outcome);
                answered
            }
            Replying::Cancel(reply) => {
                reply(decode(result));
                Answered::Nothing
            }
            Replying::Page(reply) => {
                reply(decode(result));
                Answered::Nothing
            }
            Replying::Unit(reply) => {
                reply(decode(result));
                Answered::Nothing
            }
            Replying::RenewToken { token, reply } => {
                let result = decode::<()>(result);
                let answered = match result {
                    Ok(()) => Answered::Token(token),
                    Err(_) => Answered::Nothing,
                };
                reply(result);
                answered
            }
        }
    }

    /// Completes request `id` with `error` without an answer from the server.
    pub fn fail(&mut self, id: u64, error: Error) {
        if let Some(pending) = self.remove(id) {
            pending.replying.fail(error);
        }
    }

    /// Fails every request whose deadline has passed with REQUEST_TIMEOUT.
    pub fn expire(&mut self, now: Instant) {
        while self
            .pending
            .front()
            .is_some_and(|first| first.deadline <= now)
        {
            if let Some(expired) = self.pending.pop_front() {
                expired.expire();
            }
        }
        while let Some(&(deadline, id)) = self.own_deadlines.first() {
            if deadline > now {
                break;
            }
            self.own_deadlines.pop_first();
            if let Some(expired) = self.own_timeout.remove(&id) {
                expired.expire();
            }
        }
    }

    /// Fails every request still waiting with `error`.
    pub fn fail_all(&mut self, error: &Error) {
        for pending in std::mem::take(&mut self.pending) {
            pending.replying.fail(error.clone());
        }
        self.own_deadlines.clear();
        for (_, pending) in std::mem::take(&mut self.own_timeout) {
            pending.replying.fail(error.clone());
        }
    }
}

impl Drop for Requests {
    /// Only reached with requests left when the link task panicked (its every
    /// ordinary end fails them first): each still completes, once.
    fn drop(&mut self) {
        self.fail_all(&Error::internal(
            "the connection's link task failed (a bug: it panicked); see the log",
        ));
    }
}

fn decode<T: DeserializeOwned>(result: Result<Option<Box<RawValue>>>) -> Result<T> {
    result.and_then(|ok| {
        let text = ok.as_ref().map_or("null", |raw| raw.get());
        serde_json::from_str::<T>(text).map_err(|e| {
            Error::new(
                ErrorCode::Server,
                format!("the server's result is malformed: {e}"),
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::wire::ClientFrame;
    use parking_lot::Mutex;
    use std::sync::Arc;

    fn user(name: &str) -> UserId {
        UserId::parse(name, "u").unwrap()
    }

    fn ignore<T>() -> Reply<T> {
        Box::new(|_| {})
    }

    /// The link writes what encoding the whole frame would, byte for byte.
    #[test]
    fn a_request_is_encoded_as_its_whole_frame_would_be() {
        let mut send = SendInvitation::new(vec![user("bob"), user("carol")], 30);
        send.extended_data = "a \"quoted\" \\ text, ünïcode".into();
        send.idempotency_key = Some("k".into());
        let answer = Answer {
            invitation_id: InvitationId::from_bits(7),
            extended_data: "yes".into(),
        };
        let cancel = CancelInvitation {
            invitation_id: InvitationId::from_bits(8),
            invitees: Some(vec![user("bob")]),
            extended_data: "".into(),
        };
        let token = "t\"ok\\en";
        let target = PushTarget {
            topic: Some("com.example.app".into()),
            alert_token: Some("cd".repeat(32).into()),
            ..PushTarget::new(crate::protocol::PushProvider::ApnsVoip, "ab".repeat(32))
        };
        for id in [1, 42, u64::MAX] {
            let cases = [
                (
                    Request::send(send.clone(), None, ignore()),
                    ClientFrame::Send {
                        id,
                        request: send.clone(),
                    },
                ),
                (
                    Request::cancel(cancel.clone(), None, ignore()),
                    ClientFrame::Cancel {
                        id,
                        request: cancel.clone(),
                    },
                ),
                (
                    Request::accept(answer.clone(), None, ignore()),
                    ClientFrame::Accept {
                        id,
                        answer: answer.clone(),
                    },
                ),
                (
                    Request::refuse(answer.clone(), None, ignore()),
                    ClientFrame::Refuse {
                        id,
                        answer: answer.clone(),
                    },
                ),
                (
                    Request::renew_token(token, None, ignore()),
                    ClientFrame::RenewToken {
                        id,
                        token: token.to_owned(),
                    },
                ),
                (
                    Request::set_push_target(&target, None, ignore()),
                    ClientFrame::SetPushTarget {
                        id,
                        target: target.clone(),
                    },
                ),
                (
                    Request::clear_push_target(None, ignore()),
                    ClientFrame::ClearPushTarget { id },
                ),
            ];
            for (request, whole) in cases {
                let request = request.expect("encodes");
                let frame = request.body.frame(id);
                assert_eq!(frame, serde_json::to_string(&whole).unwrap());
                let decoded: ClientFrame = serde_json::from_str(&frame).unwrap();
                assert_eq!(decoded, whole);
            }
        }
    }

    #[test]
    fn deadlines_never_go_back() {
        let timeout = Duration::from_secs(10);
        let mut requests = Requests::new(timeout);
        let later = Request::accept(
            Answer {
                invitation_id: InvitationId::from_bits(1),
                extended_data: "".into(),
            },
            None,
            ignore(),
        )
        .unwrap();
        let mut earlier = Request::refuse(
            Answer {
                invitation_id: InvitationId::from_bits(1),
                extended_data: "".into(),
            },
            None,
            ignore(),
        )
        .unwrap();
        earlier.made = later.made - Duration::from_millis(5);
        let first = requests.add(later);
        let second = requests.add(earlier);
        assert!(first < second);
        let deadline = |id| requests.find(id).map(|at| requests.pending[at].deadline);
        assert_eq!(deadline(first), deadline(second));
        requests.fail_all(&Error::shutdown());
    }

    /// Each request's tag and error code (`None`: answered).
    type Outcomes = Arc<Mutex<Vec<(u64, Option<ErrorCode>)>>>;

    fn answer_within(within: Option<Duration>, log: &Outcomes, tag: u64) -> Request {
        let log = log.clone();
        Request::accept(
            Answer {
                invitation_id: InvitationId::from_bits(tag.into()),
                extended_data: "".into(),
            },
            within,
            Box::new(move |result: Result<()>| {
                let code = result.err().map(|e| e.code);
                log.lock().push((tag, code));
            }),
        )
        .unwrap()
    }

    /// A request with its own timeout expires by its own deadline, before or
    /// after those of the link's timeout, and is resent and answered as any.
    #[test]
    fn a_request_with_its_own_timeout_expires_by_it() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut requests = Requests::new(Duration::from_secs(10));
        let start = Instant::now();
        let long = requests.add(answer_within(None, &log, 1));
        let short = requests.add(answer_within(Some(Duration::from_secs(1)), &log, 2));
        let longer = requests.add(answer_within(Some(Duration::from_secs(30)), &log, 3));
        let same = requests.add(answer_within(Some(Duration::from_secs(10)), &log, 4));
        assert_eq!(requests.unanswered(0), vec![long, short, longer, same]);
        assert_eq!(requests.unanswered(short), vec![longer, same]);
        assert!(requests.frame(longer).is_some());

        requests.expire(start + Duration::from_millis(1500));
        assert_eq!(*log.lock(), vec![(2, Some(ErrorCode::RequestTimeout))]);
        assert!(requests.frame(short).is_none());

        requests.expire(start + Duration::from_secs(11));
        assert_eq!(log.lock().len(), 3, "{:?}", log.lock());
        assert!(requests.frame(longer).is_some());
        requests.answer(longer, Ok(None));
        assert_eq!(log.lock().last(), Some(&(3, None)));
        assert!(requests.unanswered(0).is_empty());
        requests.expire(start + Duration::from_secs(60));
        assert_eq!(log.lock().len(), 4);
    }
}
