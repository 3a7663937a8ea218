"""The invitation flow end to end on a memory:// hub, with futures and event handlers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

import beckon
from conftest import WAIT, Recorder

MakeClient = Callable[..., tuple[beckon.Client, Recorder]]


def test_demo_flow_alice_invites_bob_who_accepts(make_client: MakeClient) -> None:
    alice, alice_events = make_client("alice")
    bob, bob_events = make_client("bob")

    note = beckon.Notification(title="Incoming call", message="alice is calling")
    sent = alice.send_invitation(
        ["bob"], timeout=30, extended_data='{"call":"video"}', notification=note
    ).result(timeout=WAIT)
    assert len(sent.invitation_id) == 32
    assert sent.error_invitees == ()

    ring = bob_events.wait_for(beckon.InvitationReceived)
    assert ring.invitation_id == sent.invitation_id
    assert ring.inviter == "alice"
    assert ring.extended_data == '{"call":"video"}'
    assert ring.notification == note
    assert 0 < ring.seconds_left <= 30
    assert [s.user_id for s in ring.invitees] == ["bob"]
    # bob's device acknowledged it: alice sees RECEIVED.
    alice_events.wait_for(
        beckon.InvitationUserStateChanged,
        lambda e: e.user_id == "bob" and e.state == beckon.InviteeState.RECEIVED,
    )

    assert bob.accept_invitation(ring.invitation_id, extended_data="see you").result(WAIT) is None
    accepted = alice_events.wait_for(beckon.InvitationAccepted)
    assert (accepted.invitation_id, accepted.invitee, accepted.extended_data) == (
        sent.invitation_id,
        "bob",
        "see you",
    )
    # The answering device is told of its own answer too.
    bob_events.wait_for(
        beckon.InvitationUserStateChanged, lambda e: e.state == beckon.InviteeState.ACCEPTED
    )
    # Events ran on the client's own dispatcher thread, never on this one.
    assert threading.get_ident() not in alice_events.threads | bob_events.threads
    assert alice_events.threads.isdisjoint(bob_events.threads)


def test_connection_events_precede_the_login_result(make_client: MakeClient) -> None:
    client, events = make_client("erin", login=False)
    seen_at_completion: list[int] = []
    future = client.login("erin")
    future.add_done_callback(lambda _f: seen_at_completion.append(len(events.events)))
    assert future.result(WAIT) is None
    states = [e.state for e in events.of(beckon.ConnectionStateChanged)]
    assert states[:2] == [beckon.ConnectionState.CONNECTING, beckon.ConnectionState.CONNECTED]
    assert seen_at_completion == [2]
    client.logout().result(WAIT)
    last = events.wait_for(
        beckon.ConnectionStateChanged, lambda e: e.state == beckon.ConnectionState.DISCONNECTED
    )
    assert last.reason == beckon.ConnectionReason.LOGOUT


def test_refuse_timeout_and_offline_invitee(make_client: MakeClient) -> None:
    alice, alice_events = make_client("alice")
    carol, carol_events = make_client("carol")

    sent = alice.send_invitation(["carol", "dave"], timeout=1).result(WAIT)
    assert sent.error_invitees == (beckon.InviteeStatus("dave", beckon.InviteeState.OFFLINE),)

    ring = carol_events.wait_for(beckon.InvitationReceived)
    carol.refuse_invitation(ring.invitation_id, extended_data="busy").result(WAIT)
    refused = alice_events.wait_for(beckon.InvitationRefused)
    assert (refused.invitee, refused.extended_data) == ("carol", "busy")

    # dave never logs in: after the 1 s deadline alice hears that he timed out.
    timed_out = alice_events.wait_for(beckon.InvitationResponseTimeout)
    assert timed_out.invitation_id == sent.invitation_id
    assert timed_out.invitees == ("dave",)
    # Answering after one's own answer is refused by the hub, through the future.
    with pytest.raises(beckon.AlreadyAnsweredError) as caught:
        carol.accept_invitation(ring.invitation_id).result(WAIT)
    assert caught.value.code == beckon.ErrorCode.ALREADY_ANSWERED
    assert caught.value.message


def test_offline_invitee_rings_when_logging_in_before_the_deadline(
    make_client: MakeClient,
) -> None:
    alice, alice_events = make_client("alice")
    sent = alice.send_invitation(["frank"], timeout=30).result(WAIT)
    assert [s.user_id for s in sent.error_invitees] == ["frank"]
    frank, frank_events = make_client("frank")
    ring = frank_events.wait_for(beckon.InvitationReceived)
    assert ring.invitation_id == sent.invitation_id
    alice_events.wait_for(
        beckon.InvitationUserStateChanged,
        lambda e: e.user_id == "frank" and e.state == beckon.InviteeState.RECEIVED,
    )


def test_cancel_for_everyone_and_terminal_invitees(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    bob, bob_events = make_client("bob")
    carol, carol_events = make_client("carol")

    sent = alice.send_invitation(["bob", "carol"], timeout=30).result(WAIT)
    ring = bob_events.wait_for(beckon.InvitationReceived)
    carol_events.wait_for(beckon.InvitationReceived)
    bob.accept_invitation(ring.invitation_id).result(WAIT)

    cancelled = alice.cancel_invitation(sent.invitation_id, extended_data="never mind").result(WAIT)
    # bob had already accepted: he comes back with his terminal state.
    assert cancelled.error_invitees == (beckon.InviteeStatus("bob", beckon.InviteeState.ACCEPTED),)
    told = carol_events.wait_for(beckon.InvitationCancelled)
    assert (told.inviter, told.extended_data) == ("alice", "never mind")
    assert not bob_events.of(beckon.InvitationCancelled)

    with pytest.raises(beckon.InvitationClosedError):
        carol.accept_invitation(ring.invitation_id).result(WAIT)


def test_hub_errors_arrive_through_the_future(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    bob, bob_events = make_client("bob")
    sent = alice.send_invitation(["bob"], timeout=30).result(WAIT)
    bob_events.wait_for(beckon.InvitationReceived)

    with pytest.raises(beckon.NotPermittedError, match="NOT_PERMITTED"):
        bob.cancel_invitation(sent.invitation_id).result(WAIT)
    with pytest.raises(beckon.NotPermittedError):
        alice.accept_invitation(sent.invitation_id).result(WAIT)
    unknown = "0123456789abcdef0123456789abcdef"
    with pytest.raises(beckon.InvitationNotFoundError) as caught:
        bob.accept_invitation(unknown).result(WAIT)
    assert unknown in caught.value.message
    # The same errors as values, without raising.
    future = bob.refuse_invitation(unknown)
    error = future.exception(WAIT)
    assert isinstance(error, beckon.InvitationNotFoundError)
    assert error.code == beckon.ErrorCode.INVITATION_NOT_FOUND


def test_secret_hub_tokens_auth_and_renewal(hub: str, clients: list[beckon.Client]) -> None:
    name = hub.removeprefix("memory://")
    url = beckon.memory_hub_create(name, secret="s3cret", max_invitees=2, retention=60)
    assert url == hub
    later = int(time.time()) + 3600
    token = beckon.token_create("s3cret", "gina", later)
    assert token.startswith("v1.") and str(later) in token

    gina = beckon.Client(url)
    clients.append(gina)
    with pytest.raises(beckon.AuthFailedError):
        gina.login("gina", "v1.1.00").result(WAIT)
    with pytest.raises(beckon.AuthFailedError):
        gina.login("gina", beckon.token_create("s3cret", "other", later)).result(WAIT)
    with pytest.raises(beckon.TokenExpiredError):
        gina.login("gina", beckon.token_create("s3cret", "gina", 1)).result(WAIT)
    gina.login("gina", token).result(WAIT)
    gina.renew_token(beckon.token_create("s3cret", "gina", later + 60)).result(WAIT)
    # This hub allows two distinct invitees: the third is refused at once.
    with pytest.raises(beckon.TooManyInviteesError):
        gina.send_invitation(["a", "b", "c"], timeout=5)
    assert gina.send_invitation(["a", "b", "a"], timeout=5).result(WAIT).invitation_id


def test_fixed_device_id_replaces_its_older_session(
    make_client: MakeClient,
) -> None:
    first, first_events = make_client("hank", device_id="phone")
    assert first.device_id == "phone"
    second, _ = make_client("hank", device_id="phone")
    kicked = first_events.wait_for(
        beckon.ConnectionStateChanged, lambda e: e.reason == beckon.ConnectionReason.KICKED_OUT
    )
    assert kicked.state == beckon.ConnectionState.DISCONNECTED
    assert second.logout().result(WAIT) is None
