"""A client's identity and state: ``info()``, ``device_id``, ``user_id``, ``connection_state``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import beckon
from conftest import WAIT, Recorder

MakeClient = Callable[..., tuple[beckon.Client, Recorder]]
State = beckon.ConnectionState


def told(client: beckon.Client) -> State:
    """``client.connection_state`` (through a call, which mypy does not narrow)."""
    return client.connection_state


def test_before_login_after_login_and_after_logout(make_client: MakeClient) -> None:
    client, events = make_client("amy", login=False, device_id="amy-phone")
    assert client.info() == beckon.ClientInfo(
        connection_state=State.DISCONNECTED, user_id=None, device_id="amy-phone"
    )
    assert client.device_id == "amy-phone"
    assert client.user_id is None
    assert told(client) is State.DISCONNECTED

    client.login("amy").result(WAIT)
    # The CONNECTED event is dispatched before the login's outcome.
    assert client.info() == beckon.ClientInfo(State.CONNECTED, "amy", "amy-phone")
    assert client.user_id == "amy"
    assert told(client) is State.CONNECTED
    assert isinstance(told(client), beckon.ConnectionState)

    client.logout().result(WAIT)
    events.wait_for(beckon.ConnectionStateChanged, lambda e: e.state == State.DISCONNECTED)
    assert client.info() == beckon.ClientInfo(State.DISCONNECTED, None, "amy-phone")
    assert client.user_id is None
    assert told(client) is State.DISCONNECTED
    assert client.device_id == "amy-phone"


def test_a_random_device_id_is_told_and_differs_per_client(make_client: MakeClient) -> None:
    first, _ = make_client("ben", login=False)
    second, _ = make_client("ben", login=False)
    assert isinstance(first.device_id, str) and first.device_id
    assert first.device_id == first.info().device_id
    assert second.device_id != first.device_id
    first.login("ben").result(WAIT)
    assert first.info().device_id == first.device_id


def test_the_state_is_the_one_handlers_have_been_told(hub: str) -> None:
    seen: list[tuple[State, beckon.ClientInfo]] = []
    events = Recorder("cat")
    with beckon.Client(hub, device_id="cat-tab", on_event=events) as client:

        @client.add_event_handler
        def record(event: beckon.Event) -> None:  # on the dispatcher thread
            if isinstance(event, beckon.ConnectionStateChanged):
                seen.append((event.state, client.info()))

        client.login("cat").result(WAIT)
        client.logout().result(WAIT)
        events.wait_for(beckon.ConnectionStateChanged, lambda e: e.state == State.DISCONNECTED)
    states = [state for state, _ in seen]
    assert states[:2] == [State.CONNECTING, State.CONNECTED]
    assert states[-1] == State.DISCONNECTED
    for state, info in seen:
        assert info.connection_state == state
        assert info.device_id == "cat-tab"
    assert seen[1][1].user_id == "cat"


def test_poll_mode_tells_the_state_once_polled(hub: str) -> None:
    with beckon.Client(hub, dispatch=beckon.DispatchMode.POLL) as client:
        login = client.login("dan")
        # Nothing is dispatched until polled: the app has been told nothing yet.
        assert told(client) is State.DISCONNECTED
        assert client.poll_until(login, WAIT)
        login.result(0)
        assert client.info().connection_state is State.CONNECTED
        assert client.user_id == "dan"


def test_a_closed_client_raises_shutdown_but_keeps_its_device_id(hub: str) -> None:
    client = beckon.Client(hub, device_id="eve-pc")
    client.login("eve").result(WAIT)
    client.close()
    for read in (client.info, lambda: client.user_id, lambda: client.connection_state):
        with pytest.raises(beckon.ShutdownError, match="closed"):
            read()
    assert client.device_id == "eve-pc"
