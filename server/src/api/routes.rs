//! The API's endpoints. Each one authenticates first (401 before anything
//! else is looked at), reads its body (400, or 413 past
//! `api.max_body_bytes`), checks the key's user scope, runs on the hub, and
//! answers once the change it made is durable.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use beckon::hub::InvitationRecord;
use beckon::protocol::{
    CancelInvitation, CancelOutcome, DeviceId, HistoryRole, InvitationId, InvitationQuery,
    InviteeStatus, Notification, SendInvitation, SendOutcome, Text, UserId,
};
use beckon::{Error, ErrorCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{Action, Api, ApiError, Key};
use crate::cluster::api::Held;
use crate::cluster::messages::ApiRequest;
use crate::time::{now_ms, rfc3339};

/// A change not durable within this is answered SERVER (503): the store
/// cannot write.
const DURABLE_PATIENCE: Duration = Duration::from_secs(30);

/// The longest token the API mints.
const MAX_TOKEN_TTL_SECS: u64 = 365 * 24 * 3600;

type Body = Result<Bytes, BytesRejection>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    inviter: String,
    invitees: Vec<String>,
    timeout_secs: u32,
    #[serde(default)]
    extended_data: String,
    #[serde(default)]
    notification: Option<NotificationBody>,
    #[serde(default)]
    online_only: bool,
    #[serde(default)]
    idempotency_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotificationBody {
    #[serde(default)]
    title: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    resource_id: String,
    #[serde(default)]
    payload: String,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CancelBody {
    #[serde(default)]
    invitees: Option<Vec<String>>,
    #[serde(default)]
    extended_data: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    user_id: String,
    ttl_secs: u64,
}

/// `POST /v1/invitations`: a send on the inviter's behalf.
pub async fn send(State(api): State<Arc<Api>>, headers: HeaderMap, body: Body) -> Response {
    let answer = async {
        let key = api.authorize(&headers, Action::Send)?;
        let body: SendBody = parse(body)?;
        let inviter = UserId::parse(&body.inviter, "inviter")?;
        scope(key, &inviter)?;
        let invitees = body
            .invitees
            .iter()
            .enumerate()
            .map(|(i, user)| UserId::parse(user, &format!("invitees[{i}]")))
            .collect::<beckon::Result<Vec<_>>>()?;
        let mut request = SendInvitation::new(invitees, body.timeout_secs);
        request.extended_data = Text::from(body.extended_data);
        request.notification = body.notification.map(|n| Notification {
            title: Text::from(n.title),
            message: Text::from(n.message),
            resource_id: Text::from(n.resource_id),
            payload: Text::from(n.payload),
        });
        request.online_only = body.online_only;
        request.idempotency_key = body.idempotency_key.map(Text::from);
        if let Some(cluster) = api.ctx.cluster() {
            // Every node derives the same id from an idempotency key: the
            // node that claimed it first makes (or made) the invitation.
            if let Some(idempotency_key) = &request.idempotency_key {
                let id = api.ctx.hub.idempotent_id(&inviter, idempotency_key);
                // Again if that node stops before it answers.
                while let Held::At(node) = cluster.claim_for_api(&id).await? {
                    let send = ApiRequest::Send {
                        inviter: inviter.clone(),
                        request: request.clone(),
                    };
                    if let Some(outcome) = cluster.run_api_at::<SendOutcome>(&node, send).await? {
                        return Ok(sent_json(&outcome));
                    }
                }
            }
        }
        let mut result = None;
        api.ctx
            .hub
            .send_for_user(&inviter, request, |r| result = Some(r));
        let ticket = beckon::hub::frame_ticket();
        let outcome = result.unwrap_or_else(|| Err(Error::internal("send: no answer")))?;
        durable(&api, ticket).await?;
        tracing::info!(
            key = %key.name,
            invitation = %outcome.invitation_id,
            inviter = %inviter,
            "api: invitation sent"
        );
        Ok::<_, ApiError>(sent_json(&outcome))
    };
    respond(&api, "send", answer.await)
}

fn sent_json(outcome: &SendOutcome) -> Value {
    json!({
        "invitation_id": outcome.invitation_id,
        "error_invitees": statuses(&outcome.error_invitees),
    })
}

/// `GET /v1/users/{user_id}/invitations?role=&since_ms=&until_ms=&limit=&cursor=`:
/// the user's ended invitations, newest first (key action `read`).
pub async fn history(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(user): Path<String>,
    RawQuery(params): RawQuery,
) -> Response {
    let answer = async {
        let key = api.authorize(&headers, Action::Read)?;
        let user = UserId::parse(&user, "user_id")?;
        scope(key, &user)?;
        let query = history_query(params.as_deref().unwrap_or(""))?;
        let page = match api.ctx.cluster() {
            // Shared by the nodes, in Redis.
            Some(cluster) => cluster.history_page(&user, &query).await?,
            None => {
                let page = api.ctx.hub.query_invitations(&user, &query)?;
                durable(&api, beckon::hub::frame_ticket()).await?;
                page
            }
        };
        let invitations: Vec<Value> = page
            .invitations
            .iter()
            .map(|s| {
                json!({
                    "invitation_id": s.invitation_id,
                    "inviter": s.inviter,
                    "invitees": statuses(&s.invitees),
                    "sent_by_server": s.sent_by_server,
                    "created_at": rfc3339(s.created_ms),
                    "created_ms": s.created_ms,
                    "ended_at": rfc3339(s.ended_ms),
                })
            })
            .collect();
        Ok(json!({
            "user_id": user,
            "invitations": invitations,
            "next_cursor": page.next_cursor.as_deref(),
        }))
    };
    respond(&api, "history", answer.await)
}

/// The query string of a history request.
fn history_query(params: &str) -> Result<InvitationQuery, ApiError> {
    let mut query = InvitationQuery::default();
    // Names and values percent-decoded (`+` a space), as HTML forms and
    // URL libraries encode them.
    for (name, value) in form_urlencoded::parse(params.as_bytes()) {
        let (name, value) = (name.as_ref(), value.as_ref());
        let number = |field: &str| {
            value
                .parse::<u64>()
                .map_err(|_| ApiError::invalid(format!("{field}: '{value}' is not a number")))
        };
        match name {
            "role" => {
                query.role = match value {
                    "any" => HistoryRole::Any,
                    "sent" => HistoryRole::Sent,
                    "received" => HistoryRole::Received,
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "role: '{value}' is not any, sent or received"
                        )))
                    }
                }
            }
            "since_ms" => query.since_ms = number("since_ms")?,
            "until_ms" => query.until_ms = number("until_ms")?,
            "limit" => {
                query.limit = u32::try_from(number("limit")?)
                    .map_err(|_| ApiError::invalid(format!("limit: {value} is too large")))?
            }
            "cursor" => query.cursor = Some(Text::from(value.to_owned())),
            other => {
                return Err(ApiError::invalid(format!(
                    "'{other}' is not a parameter (role, since_ms, until_ms, limit, cursor)"
                )))
            }
        }
    }
    Ok(query)
}

/// `GET /v1/invitations/{invitation_id}`.
pub async fn get_invitation(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let answer = async {
        let key = api.authorize(&headers, Action::Read)?;
        let record = visible_record(&api, key, &id)?;
        // What is shown is what the store keeps: it waits for the version
        // read, as a device's snapshot does.
        durable(&api, beckon::hub::frame_ticket()).await?;
        Ok(invitation_json(&record))
    };
    respond(&api, "get_invitation", answer.await)
}

/// `POST /v1/invitations/{invitation_id}/cancel`.
pub async fn cancel(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Body,
) -> Response {
    let answer = async {
        let key = api.authorize(&headers, Action::Cancel)?;
        let body: CancelBody = match &body {
            Ok(bytes) if bytes.is_empty() => CancelBody::default(),
            _ => parse(body)?,
        };
        let record = visible_record(&api, key, &id)?;
        // Cancelling acts as the inviter: the key must cover the inviter,
        // not only an invitee it sees the invitation through.
        scope(key, &record.inviter)?;
        let invitees = body
            .invitees
            .map(|list| {
                list.iter()
                    .enumerate()
                    .map(|(i, user)| UserId::parse(user, &format!("invitees[{i}]")))
                    .collect::<beckon::Result<Vec<_>>>()
            })
            .transpose()?;
        let request = CancelInvitation {
            invitation_id: record.id.clone(),
            invitees,
            extended_data: Text::from(body.extended_data),
        };
        // Again if the node that holds it stops before it answers.
        let outcome: CancelOutcome = loop {
            let held = match api.ctx.cluster() {
                Some(cluster) => cluster.invitation_held(&record.id).await?,
                None => Held::Here,
            };
            match (held, api.ctx.cluster()) {
                (Held::At(node), Some(cluster)) => {
                    let cancel = ApiRequest::Cancel {
                        request: request.clone(),
                    };
                    if let Some(outcome) = cluster.run_api_at(&node, cancel).await? {
                        break outcome;
                    }
                }
                _ => {
                    let outcome = api.ctx.hub.cancel_for_server(request)?;
                    durable(&api, beckon::hub::frame_ticket()).await?;
                    break outcome;
                }
            }
        };
        tracing::info!(key = %key.name, invitation = %record.id, "api: invitation cancelled");
        Ok(json!({"error_invitees": statuses(&outcome.error_invitees)}))
    };
    respond(&api, "cancel", answer.await)
}

/// `GET /v1/users/{user_id}/devices`.
pub async fn devices(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Response {
    let answer = async {
        let key = api.authorize(&headers, Action::Devices)?;
        let user = UserId::parse(&user, "user_id")?;
        scope(key, &user)?;
        let devices: Vec<Value> = api
            .ctx
            .hub
            .devices(&user)
            .into_iter()
            .map(|(device, _elsewhere)| json!({"device_id": device}))
            .collect();
        Ok(json!({"user_id": user, "devices": devices}))
    };
    respond(&api, "devices", answer.await)
}

/// `DELETE /v1/users/{user_id}/devices/{device_id}`: the device's session
/// ends with KICKED_OUT.
pub async fn kick(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
    Path((user, device)): Path<(String, String)>,
) -> Response {
    let answer = async {
        let key = api.authorize(&headers, Action::Kick)?;
        let user = UserId::parse(&user, "user_id")?;
        let device = DeviceId::parse(&device, "device_id")?;
        scope(key, &user)?;
        // Again if its node stops before it answers.
        let (kicked, ticket) = loop {
            let elsewhere = api.ctx.cluster().and_then(|cluster| {
                match cluster.device_held(&user, &device)? {
                    Held::At(node) => Some((cluster, node)),
                    Held::Here => None,
                }
            });
            match elsewhere {
                // Its node ends it, and answers once that is stored.
                Some((cluster, node)) => {
                    let request = ApiRequest::Kick {
                        user: user.clone(),
                        device: device.clone(),
                    };
                    if let Some(kicked) = cluster.run_api_at::<bool>(&node, request).await? {
                        break (kicked, 0);
                    }
                }
                // Rule 7 may have cancelled invitations: answered once stored.
                None => {
                    break (
                        api.ctx.hub.kick(&user, &device)?,
                        beckon::hub::frame_ticket(),
                    )
                }
            }
        };
        if !kicked {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "DEVICE_NOT_FOUND",
                format!("device_id: '{device}' of '{user}' is not logged in"),
            ));
        }
        durable(&api, ticket).await?;
        tracing::info!(key = %key.name, %user, %device, "api: device kicked");
        Ok(Value::Null)
    };
    respond(&api, "kick", answer.await)
}

/// `POST /v1/tokens`: a login token, as `beckon-server token` mints it.
pub async fn mint_token(State(api): State<Arc<Api>>, headers: HeaderMap, body: Body) -> Response {
    let answer = async {
        let key = api.authorize(&headers, Action::Tokens)?;
        let body: TokenBody = parse(body)?;
        let user = UserId::parse(&body.user_id, "user_id")?;
        scope(key, &user)?;
        if !(1..=MAX_TOKEN_TTL_SECS).contains(&body.ttl_secs) {
            return Err(ApiError::invalid(format!(
                "ttl_secs: {} is outside 1..={MAX_TOKEN_TTL_SECS}",
                body.ttl_secs
            )));
        }
        let Some(secret) = api.ctx.hub.config().secret.as_deref() else {
            return Err(Error::new(
                ErrorCode::NotPermitted,
                "this server runs without a secret (--dev): it accepts any token and mints none",
            )
            .into());
        };
        let expires = now_ms() / 1000 + body.ttl_secs;
        let token = beckon::token::mint(secret, &user, expires);
        Ok(json!({
            "user_id": user,
            "token": token,
            "expires_at": rfc3339(expires * 1000),
            "expires_at_unix": expires,
        }))
    };
    respond(&api, "tokens", answer.await)
}

/// Anything else: 404 (after authentication, so an unauthenticated caller
/// learns nothing of the routes).
pub async fn no_route(State(api): State<Arc<Api>>, headers: HeaderMap) -> Response {
    let answer = api.authenticate(&headers).and_then(|_| {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "no such endpoint (see docs/openapi.json)",
        ))
    });
    respond(&api, "none", answer)
}

/// The invitation `id` names, if the key may see it: its inviter or one
/// of its invitees is a user of the key's. Otherwise INVITATION_NOT_FOUND,
/// as for one that does not exist (a key learns nothing of others').
fn visible_record(api: &Api, key: &Key, id: &str) -> Result<InvitationRecord, ApiError> {
    let id = InvitationId::parse(id, "invitation_id")?;
    let not_found = || {
        ApiError::from(Error::new(
            ErrorCode::InvitationNotFound,
            format!("invitation_id: {id} is not known (never sent, or ended and forgotten)"),
        ))
    };
    let record = match (api.ctx.hub.invitation_record(&id), api.ctx.cluster()) {
        (Some(record), _) => record,
        // Another node holds it: as Redis has it.
        (None, Some(cluster)) => cluster.stored_record(&id)?.ok_or_else(not_found)?,
        (None, None) => return Err(not_found()),
    };
    let visible = key.covers(record.inviter.as_str())
        || record.invitees.iter().any(|i| key.covers(i.user.as_str()));
    if !visible {
        return Err(not_found());
    }
    Ok(record)
}

fn scope(key: &Key, user: &UserId) -> Result<(), ApiError> {
    if key.covers(user.as_str()) {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "key '{}' may not act for user '{user}'",
            key.name
        )))
    }
}

fn parse<T: DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::from(Error::new(
                ErrorCode::PayloadTooLarge,
                "body: larger than this server's api.max_body_bytes",
            ))
        } else {
            ApiError::invalid(format!("body: {}", rejection.body_text()))
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::invalid(format!("body: {e}")))
}

/// Waits until the change the hub call on this thread made is durable.
async fn durable(api: &Api, ticket: beckon::hub::Ticket) -> Result<(), ApiError> {
    tokio::time::timeout(DURABLE_PATIENCE, api.ctx.durable.wait(ticket))
        .await
        .map_err(|_| {
            ApiError::from(Error::new(
                ErrorCode::Server,
                "the change could not be stored in time (the store cannot write)",
            ))
        })
}

fn statuses(statuses: &[InviteeStatus]) -> Vec<Value> {
    statuses
        .iter()
        .map(|s| json!({"user_id": s.user_id, "state": s.state.name()}))
        .collect()
}

fn invitation_json(record: &InvitationRecord) -> Value {
    let invitees: Vec<Value> = record
        .invitees
        .iter()
        .map(|i| json!({"user_id": i.user, "state": i.state.name()}))
        .collect();
    let mut body = json!({
        "invitation_id": record.id,
        "inviter": record.inviter,
        "invitees": invitees,
        "sent_by_server": record.sent_by_server,
        "online_only": record.online_only,
        "deadline": rfc3339(record.deadline_ms),
        "ended": record.ended_ms.is_some(),
    });
    match record.ended_ms {
        Some(ended) => body["ended_at"] = json!(rfc3339(ended)),
        // Kept only while it rings (see docs/SERVER_API.md).
        None => body["extended_data"] = json!(&*record.extended_data),
    }
    body
}

/// The answer, counted by route and status.
fn respond(api: &Api, route: &'static str, answer: Result<Value, ApiError>) -> Response {
    let response = match answer {
        Ok(Value::Null) => StatusCode::NO_CONTENT.into_response(),
        Ok(body) => super::json_response(StatusCode::OK, &body),
        Err(error) => error.into_response(),
    };
    api.count(route, response.status());
    response
}
