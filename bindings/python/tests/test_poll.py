"""Poll mode: callbacks run only inside Client.poll, on the polling thread."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

import beckon
from conftest import WAIT, Recorder

MakeClient = Callable[..., tuple[beckon.Client, Recorder]]
POLL = beckon.DispatchMode.POLL


def test_callbacks_run_only_inside_poll_on_this_thread(make_client: MakeClient) -> None:
    client, events = make_client("ann", login=False, dispatch=POLL)
    assert client.dispatch is POLL
    future = client.login("ann")
    assert not future.done()  # nothing runs until the application polls
    assert events.events == []

    ran = 0
    while not future.done():
        count = client.poll(WAIT)
        assert count > 0  # it waited until something was due
        ran += count
    assert future.result() is None
    assert ran == 3  # CONNECTING, CONNECTED, the login's result
    assert events.threads == {threading.get_ident()}
    assert [e.state for e in events.of(beckon.ConnectionStateChanged)] == [
        beckon.ConnectionState.CONNECTING,
        beckon.ConnectionState.CONNECTED,
    ]
    assert client.poll(0) == 0  # nothing queued: returns at once


def test_demo_flow_in_poll_mode(make_client: MakeClient) -> None:
    alice, alice_events = make_client("alice", login=False, dispatch=POLL)
    bob, bob_events = make_client("bob", login=False, dispatch=POLL)
    assert alice.poll_until(alice.login("alice"), WAIT)
    assert bob.poll_until(bob.login("bob"), WAIT)

    sent = alice.send_invitation(["bob"], timeout=30)
    assert alice.poll_until(sent, WAIT)
    invitation = sent.result().invitation_id

    while not bob_events.of(beckon.InvitationReceived):
        assert bob.poll(WAIT) > 0
    accepted = bob.accept_invitation(invitation)
    assert bob.poll_until(accepted, WAIT) and accepted.result() is None
    while not alice_events.of(beckon.InvitationAccepted):
        assert alice.poll(WAIT) > 0
    assert alice_events.of(beckon.InvitationAccepted)[0].invitee == "bob"


def test_poll_from_inside_a_callback_is_refused(make_client: MakeClient) -> None:
    client, _ = make_client("ben", login=False, dispatch=POLL)
    caught: list[BaseException] = []

    def poll_again(_event: beckon.Event) -> None:
        try:
            client.poll(0)
        except BaseException as error:  # noqa: BLE001
            caught.append(error)

    client.add_event_handler(poll_again)
    assert client.poll_until(client.login("ben"), WAIT)
    assert caught and all(isinstance(e, beckon.InvalidArgumentError) for e in caught)
    assert "inside" in caught[0].message  # type: ignore[attr-defined]


def test_waiting_on_a_future_inside_a_callback_raises_instead_of_hanging(
    make_client: MakeClient,
) -> None:
    alice, _ = make_client("alice")
    for mode in (beckon.DispatchMode.THREAD, POLL):
        client, _ = make_client("cyd", login=False, dispatch=mode)
        login = client.login("cyd")
        if mode is POLL:
            assert client.poll_until(login, WAIT)
        assert login.result(WAIT) is None
        outcome: list[BaseException | None] = []
        done = threading.Event()

        def wait_inside(
            event: beckon.Event,
            client: beckon.Client = client,
            outcome: list[BaseException | None] = outcome,
            done: threading.Event = done,
        ) -> None:
            if isinstance(event, beckon.InvitationReceived):
                try:
                    # Its callback can only run after this one: it would never come.
                    client.renew_token("t").result(WAIT)
                    outcome.append(None)
                except BaseException as error:  # noqa: BLE001
                    outcome.append(error)
                done.set()

        client.add_event_handler(wait_inside)
        alice.send_invitation(["cyd"], timeout=30).result(WAIT)
        while mode is POLL and not done.is_set():
            assert client.poll(WAIT) > 0
        assert done.wait(WAIT)
        assert isinstance(outcome[0], RuntimeError), outcome
        assert "deadlock" in str(outcome[0])
        client.close()


def test_close_while_another_thread_polls(make_client: MakeClient) -> None:
    client, _ = make_client("dee", login=False, dispatch=POLL)
    returned: list[object] = []
    started = threading.Event()

    def poller() -> None:
        started.set()
        try:
            returned.append(client.poll(60))  # nothing will be due
        except BaseException as error:  # noqa: BLE001
            returned.append(error)

    thread = threading.Thread(target=poller)
    thread.start()
    assert started.wait(WAIT)
    client.close()
    thread.join(WAIT)
    assert not thread.is_alive()
    # Either the poll had begun (returns 0) or it met the closed client.
    assert returned == [0] or isinstance(returned[0], beckon.ShutdownError)
    with pytest.raises(beckon.ShutdownError):
        client.poll(0)


def test_close_from_inside_a_polled_callback(make_client: MakeClient) -> None:
    client, events = make_client("eli", login=False, dispatch=POLL)

    def close_on_connected(event: beckon.Event) -> None:
        if isinstance(event, beckon.ConnectionStateChanged) and (
            event.state == beckon.ConnectionState.CONNECTED
        ):
            client.close()

    client.add_event_handler(close_on_connected)
    future = client.login("eli")
    client.poll(WAIT)
    assert client.closed
    # The login's own callback was still pending: it completed with SHUTDOWN.
    assert isinstance(future.exception(0), beckon.ShutdownError)
    with pytest.raises(beckon.ShutdownError):
        client.poll(0)
    assert len(events.of(beckon.ConnectionStateChanged)) == 2


def test_poll_arguments(make_client: MakeClient) -> None:
    client, _ = make_client("fay", login=False, dispatch=POLL)
    with pytest.raises(beckon.InvalidArgumentError, match="timeout"):
        client.poll(-1)
    with pytest.raises(beckon.InvalidArgumentError, match="timeout"):
        client.poll(3601)
    with pytest.raises(beckon.ArgumentTypeError, match="future"):
        client.poll_until("not a future", 1)  # type: ignore[arg-type]
