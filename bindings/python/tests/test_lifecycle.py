"""Closing (context managers, from callbacks, by the garbage collector), handlers, logging."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
import time
import weakref
from collections.abc import Callable

import pytest

import beckon
from beckon import _callbacks
from conftest import WAIT, Recorder

MakeClient = Callable[..., tuple[beckon.Client, Recorder]]


def test_with_block_closes_and_closed_clients_refuse_work(hub: str) -> None:
    with beckon.Client(hub) as client:
        assert not client.closed
        client.login("amy").result(WAIT)
        assert "thread" in repr(client)
    assert client.closed and "closed" in repr(client)
    for call in (
        lambda: client.login("amy"),
        lambda: client.logout(),
        lambda: client.send_invitation(["bob"], timeout=5),
        lambda: client.accept_invitation("0123456789abcdef0123456789abcdef"),
    ):
        with pytest.raises(beckon.ShutdownError, match="closed"):
            call()
    client.close()  # idempotent
    assert client.closed


def test_with_block_closes_on_error_and_fails_pending_work(hub: str) -> None:
    with pytest.raises(KeyError):
        # Poll mode keeps the operations' callbacks queued until polled.
        with beckon.Client(hub, dispatch=beckon.DispatchMode.POLL) as client:
            assert client.poll_until(client.login("cal"), WAIT)
            pending = [client.send_invitation(["bea"], timeout=30) for _ in range(3)]
            pending.append(client.logout())  # type: ignore[arg-type]
            raise KeyError("boom")
    assert client.closed
    # Leaving the block ran every queued callback, with SHUTDOWN, before returning.
    assert all(f.done() for f in pending)
    assert all(isinstance(f.exception(0), beckon.ShutdownError) for f in pending)


def test_async_with_closes(hub: str) -> None:
    async def main() -> beckon.Client:
        async with beckon.Client(hub) as client:
            await client.login_async("dot")
        return client

    assert asyncio.run(main()).closed


def test_close_from_own_event_handler_in_thread_mode(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    bob, _ = make_client("bob")
    closed = threading.Event()

    def close_on_ring(event: beckon.Event) -> None:
        if isinstance(event, beckon.InvitationReceived):
            bob.close()
            closed.set()

    bob.add_event_handler(close_on_ring)
    alice.send_invitation(["bob"], timeout=30).result(WAIT)
    assert closed.wait(WAIT)
    assert bob.closed
    with pytest.raises(beckon.ShutdownError):
        bob.renew_token("t")


def test_an_unreferenced_client_is_freed_by_the_garbage_collector(hub: str) -> None:
    routers = _callbacks.router_count()
    client = beckon.Client(hub, on_event=lambda _e: None)
    client.login("eve").result(WAIT)
    handle = client._handle
    ref = weakref.ref(client)
    assert _callbacks.router_count() == routers + 1
    del client
    gc.collect()
    assert ref() is None
    assert handle.closed
    assert _callbacks.router_count() == routers


def test_handlers_order_errors_and_removal(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    client, first = make_client("fox", login=False)
    calls: list[str] = []

    def broken(_event: beckon.Event) -> None:
        calls.append("broken")
        raise ValueError("handler bug")

    second = Recorder("second")
    assert client.add_event_handler(broken) is broken
    client.add_event_handler(second)
    client.login("fox").result(WAIT)
    # A raising handler does not stop the next one; the error is logged.
    assert len(second.of(beckon.ConnectionStateChanged)) == 2
    assert calls == ["broken", "broken"]
    assert any("handler bug" in (r.exc_text or "") for r in caplog.records if r.name == "beckon")
    assert client.remove_event_handler(broken)
    assert not client.remove_event_handler(broken)
    client.logout().result(WAIT)
    assert calls == ["broken", "broken"]
    assert len(first.of(beckon.ConnectionStateChanged)) == 3


def test_closing_a_stream_wakes_its_reader(hub: str) -> None:
    async def main() -> None:
        async with beckon.Client(hub) as client:
            stream = client.events()
            reader = asyncio.ensure_future(stream.get(WAIT))
            await asyncio.sleep(0)
            stream.close()
            with pytest.raises(StopAsyncIteration):
                await reader

    asyncio.run(main())


@pytest.mark.parametrize("delivery", ["queued", "direct"])
def test_log_handler_and_logging_bridge(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, delivery: beckon.LogDeliveryName
) -> None:
    lines: list[tuple[beckon.LogLevel, str, str, str]] = []
    changed = threading.Condition()

    def collect(level: beckon.LogLevel, tag: str, sub_tag: str, message: str) -> None:
        with changed:
            lines.append((level, tag, sub_tag, message))
            changed.notify_all()

    def rejected_id_logged() -> bool:
        return any(sub == "api" and "invitation_id" in message for _, _, sub, message in lines)

    beckon.set_log_handler(collect, beckon.LogLevel.DEBUG, delivery)
    try:
        client, _ = make_client("gil")
        with pytest.raises(beckon.InvalidArgumentError):
            client.accept_invitation("bad id")
        client.logout().result(WAIT)
        # Queued records arrive a little later; those still queued at the
        # replacement would be dropped.
        with changed:
            assert changed.wait_for(rejected_id_logged, WAIT), lines
    finally:
        beckon.set_log_handler(None)
    with changed:
        snapshot = list(lines)
    assert {tag for _, tag, _, _ in snapshot} == {"signaling"}
    assert all(isinstance(level, beckon.LogLevel) for level, *_ in snapshot)
    count = len(snapshot)
    client.close()
    assert len(lines) == count  # removed: nothing more arrives

    caplog.set_level(logging.DEBUG, logger="beckon.signaling")
    beckon.log_to_logging(max_level=beckon.LogLevel.WARN, delivery=delivery)
    try:
        with pytest.raises(beckon.InvalidArgumentError):
            make_client("hop")[0].cancel_invitation("still bad")
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline and not any(
            r.name == "beckon.signaling.api" for r in caplog.records
        ):
            time.sleep(0.005)
    finally:
        beckon.set_log_handler(None)
    records = [r for r in caplog.records if r.name == "beckon.signaling.api"]
    assert records and records[0].levelno == logging.WARNING
    assert "invitation_id" in records[0].getMessage()


def test_concurrent_closes_both_wait_for_the_free(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    bob, _ = make_client("bob")
    gate = threading.Event()
    in_handler = threading.Event()
    finished: list[str] = []

    def slow(event: beckon.Event) -> None:
        if isinstance(event, beckon.InvitationReceived):
            in_handler.set()
            gate.wait(WAIT)
            finished.append("handler")

    bob.add_event_handler(slow)
    alice.send_invitation(["bob"], timeout=30).result(WAIT)
    assert in_handler.wait(WAIT)

    def close() -> None:
        bob.close()
        finished.append("close")

    first = threading.Thread(target=close)
    first.start()
    deadline = time.monotonic() + WAIT
    while not bob.closed and time.monotonic() < deadline:
        time.sleep(0.005)
    assert bob.closed  # the first close is inside the free, held by the handler
    second = threading.Thread(target=close)
    second.start()
    second.join(0.2)  # a second close must not return while the free is under way
    assert finished == []
    gate.set()
    for closer in (first, second):
        closer.join(WAIT)
        assert not closer.is_alive()
    assert finished == ["handler", "close", "close"]


@pytest.mark.parametrize("dispatch", [beckon.DispatchMode.THREAD, beckon.DispatchMode.POOL])
def test_two_clients_closing_each_other_from_their_callbacks(
    hub: str, clients: list[beckon.Client], dispatch: beckon.DispatchMode
) -> None:
    """Each one's handler closes the other at the same moment: one close is refused, no hang."""
    rounds = 5
    refused = 0
    for round_ in range(rounds):
        both_inside = threading.Barrier(2, timeout=WAIT)
        outcomes: dict[str, BaseException | None] = {}
        returned = threading.Semaphore(0)
        pair: dict[str, beckon.Client] = {}

        def close_the_other(name: str, other: str) -> Callable[[beckon.Event], None]:
            def on_event(event: beckon.Event) -> None:
                if not (
                    isinstance(event, beckon.ConnectionStateChanged)
                    and event.state == beckon.ConnectionState.CONNECTED
                ):
                    return
                try:
                    both_inside.wait()  # both handlers are running now
                    pair[other].close()
                    outcomes[name] = None
                except BaseException as error:  # noqa: BLE001 - the test reads it
                    outcomes[name] = error
                finally:
                    returned.release()

            return on_event

        for name, other in (("a", "b"), ("b", "a")):
            pair[name] = beckon.Client(hub, dispatch=dispatch)
            clients.append(pair[name])
            pair[name].add_event_handler(close_the_other(name, other))
        logins = {name: client.login(f"mutual-{name}-{round_}") for name, client in pair.items()}
        for _ in range(2):
            assert returned.acquire(timeout=WAIT), f"round {round_}: a close hung: {outcomes}"

        errors = [e for e in outcomes.values() if e is not None]
        assert len(outcomes) == 2 and len(errors) == 1, f"round {round_}: {outcomes}"
        error = errors[0]
        assert isinstance(error, beckon.WouldDeadlockError), repr(error)
        assert error.code == beckon.ErrorCode.WOULD_DEADLOCK and error.message
        refused += 1
        # The client whose close was refused is still open and usable; the
        # other one is closed, its login completed (with SHUTDOWN, or before).
        survivor = next(n for n, e in outcomes.items() if e is None)
        closed = "b" if survivor == "a" else "a"
        assert pair[closed].closed
        assert not pair[survivor].closed
        assert logins[survivor].result(WAIT) is None
        assert pair[survivor].info().user_id == f"mutual-{survivor}-{round_}"
        done = logins[closed].exception(WAIT)
        assert done is None or isinstance(done, beckon.ShutdownError)
        pair[survivor].close()  # now, outside the callbacks
        assert pair[survivor].closed
    assert refused == rounds
