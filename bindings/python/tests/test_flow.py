"""The invitation flow end to end on a memory:// hub, with futures and event handlers."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import beckon
from beckon import _native
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


def test_per_operation_request_timeouts_and_answer_options(make_client: MakeClient) -> None:
    alice, alice_events = make_client("alice")
    bob, bob_events = make_client("bob")
    carol, carol_events = make_client("carol")

    sent = alice.send_invitation(
        ["bob", "carol"], timeout=60, extended_data="call me", request_timeout_ms=20_000
    ).result(WAIT)
    ring = bob_events.wait_for(beckon.InvitationReceived)
    carol_events.wait_for(beckon.InvitationReceived)
    assert ring.extended_data == "call me"

    # Accept with extended data and its own timeout: alice hears the data.
    assert (
        bob.accept_invitation(
            sent.invitation_id, extended_data="on my way", request_timeout_ms=15_000
        ).result(WAIT)
        is None
    )
    accepted = alice_events.wait_for(beckon.InvitationAccepted)
    assert (accepted.invitee, accepted.extended_data) == ("bob", "on my way")

    # Cancel for a listed invitee only, with data and the longest timeout.
    cancelled = alice.cancel_invitation(
        sent.invitation_id, ["carol"], extended_data="never mind", request_timeout_ms=2**32 - 1
    ).result(WAIT)
    assert cancelled.error_invitees == ()
    told = carol_events.wait_for(beckon.InvitationCancelled)
    assert (told.invitation_id, told.extended_data) == (sent.invitation_id, "never mind")
    assert not bob_events.of(beckon.InvitationCancelled)

    # Refusing after accepting fails as without options; the shortest timeout is accepted.
    with pytest.raises(beckon.AlreadyAnsweredError):
        bob.refuse_invitation(sent.invitation_id, request_timeout_ms=1).result(WAIT)
    # Everyone is in a terminal state: the invitation has ended.
    with pytest.raises(beckon.InvitationClosedError):
        alice.cancel_invitation(sent.invitation_id, ["bob"], request_timeout_ms=5_000).result(WAIT)

    async def refuse_the_next_one() -> None:
        second = await alice.send_invitation_async(["bob"], timeout=60, request_timeout_ms=9_000)
        bob_events.wait_for(
            beckon.InvitationReceived, lambda e: e.invitation_id == second.invitation_id
        )
        await bob.refuse_invitation_async(
            second.invitation_id, extended_data="busy", request_timeout_ms=9_000
        )
        # "ghost" never logs in: the invitation stays open after carol's answer.
        third = await alice.send_invitation_async(["carol", "ghost"], timeout=60)
        carol_events.wait_for(
            beckon.InvitationReceived, lambda e: e.invitation_id == third.invitation_id
        )
        await carol.accept_invitation_async(third.invitation_id, request_timeout_ms=9_000)
        result = await alice.cancel_invitation_async(third.invitation_id, request_timeout_ms=9_000)
        assert result.error_invitees == (
            beckon.InviteeStatus("carol", beckon.InviteeState.ACCEPTED),
        )

    asyncio.run(asyncio.wait_for(refuse_the_next_one(), WAIT))
    refused = alice_events.wait_for(beckon.InvitationRefused)
    assert (refused.invitee, refused.extended_data) == ("bob", "busy")


def test_request_timeouts_reach_the_c_configs(
    make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What each operation hands the library: its config struct, field by field."""
    alice, _ = make_client("alice")
    bob, bob_events = make_client("bob")
    lib = _native.library()
    seen: dict[str, dict[str, object]] = {}

    def spy(name: str, read: Callable[[Any], dict[str, object]]) -> None:
        real = getattr(lib, name)

        def call(*args: Any) -> int:
            config = args[2] if name != "beckon_send_invitation" else args[3]
            seen[name] = read(config._obj)  # the struct behind ctypes.byref
            return int(real(*args))

        monkeypatch.setattr(lib, name, call, raising=False)

    def answer(c: _native.AnswerConfig) -> dict[str, object]:
        return {
            "size": c.struct_size,
            "ms": c.request_timeout_ms,
            "data": c.extended_data,
        }

    def cancel(c: _native.CancelConfig) -> dict[str, object]:
        return {
            "size": c.struct_size,
            "ms": c.request_timeout_ms,
            "invitees": [c.invitees[i] for i in range(c.invitee_count)],
            "null": not c.invitees,
            "data": c.extended_data,
        }

    def send(c: _native.InvitationConfig) -> dict[str, object]:
        return {"size": c.struct_size, "ms": c.request_timeout_ms}

    spy("beckon_send_invitation", send)
    spy("beckon_accept_invitation_ex", answer)
    spy("beckon_refuse_invitation_ex", answer)
    spy("beckon_cancel_invitation_ex", cancel)

    # "ghost" never logs in: the invitation stays open after bob's answer.
    sent = alice.send_invitation(["bob", "ghost"], timeout=30, request_timeout_ms=1234).result(WAIT)
    assert seen["beckon_send_invitation"] == {"size": 32, "ms": 1234}
    alice.send_invitation(["ghost"], timeout=30).result(WAIT)
    assert seen["beckon_send_invitation"]["ms"] == 0  # the client's
    bob_events.wait_for(beckon.InvitationReceived)

    bob.accept_invitation(sent.invitation_id, extended_data="yes", request_timeout_ms=77).result(
        WAIT
    )
    assert seen["beckon_accept_invitation_ex"] == {"size": 16, "ms": 77, "data": b"yes"}
    with pytest.raises(beckon.AlreadyAnsweredError):
        bob.refuse_invitation(sent.invitation_id).result(WAIT)
    assert seen["beckon_refuse_invitation_ex"] == {"size": 16, "ms": 0, "data": b""}

    cancelled = alice.cancel_invitation(sent.invitation_id, ["bob"], request_timeout_ms=2**32 - 1)
    assert [s.user_id for s in cancelled.result(WAIT).error_invitees] == ["bob"]
    assert seen["beckon_cancel_invitation_ex"] == {
        "size": 32,
        "ms": 2**32 - 1,
        "invitees": [b"bob"],
        "null": False,
        "data": b"",
    }
    alice.cancel_invitation(sent.invitation_id, extended_data="bye").result(WAIT)
    assert seen["beckon_cancel_invitation_ex"] == {
        "size": 32,
        "ms": 0,
        "invitees": [],
        "null": True,
        "data": b"bye",
    }
