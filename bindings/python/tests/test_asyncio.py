"""asyncio: awaitable operations and event streams fed from the library's threads.

Every loop runs in debug mode, where asyncio raises if a loop method that is
not thread-safe is called from another thread: the hops must all go through
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

import beckon
from beckon import _callbacks
from conftest import WAIT


def run(coroutine: Coroutine[Any, Any, None]) -> None:
    asyncio.run(asyncio.wait_for(coroutine, WAIT * 3), debug=True)


def test_demo_flow_with_await_and_async_for(hub: str) -> None:
    async def main() -> None:
        async with beckon.Client(hub) as alice, beckon.Client(hub) as bob:
            alice_events = alice.events()
            bob_events = bob.events(beckon.InvitationReceived)
            await alice.login_async("alice")
            await bob.login_async("bob")

            sent = await alice.send_invitation_async(["bob"], timeout=30, extended_data="hi")
            assert len(sent.invitation_id) == 32

            # bob's device rings (the filter kept only that kind).
            ring = await bob_events.get(WAIT)
            assert isinstance(ring, beckon.InvitationReceived)
            assert (ring.invitation_id, ring.inviter, ring.extended_data) == (
                sent.invitation_id,
                "alice",
                "hi",
            )
            await bob.accept_invitation_async(ring.invitation_id, extended_data="yes")

            # alice hears it, after her own connection events and bob's receipt.
            kinds = []
            async for event in alice_events:
                kinds.append(event.kind)
                if isinstance(event, beckon.InvitationAccepted):
                    assert (event.invitee, event.extended_data) == ("bob", "yes")
                    break
            assert kinds[:2] == [beckon.EventKind.CONNECTION_STATE_CHANGED] * 2
            assert beckon.EventKind.INVITATION_USER_STATE_CHANGED in kinds
            alice_events.close()
            assert [e async for e in alice_events] == []

    run(main())


@pytest.mark.parametrize(
    "dispatch", [beckon.DispatchMode.THREAD, beckon.DispatchMode.POOL], ids=["thread", "pool"]
)
def test_results_and_events_are_delivered_on_the_loop_thread(
    hub: str, dispatch: beckon.DispatchMode
) -> None:
    async def main() -> None:
        loop_thread = threading.get_ident()
        dispatcher_threads: set[int] = set()
        stream_threads: set[int] = set()
        async with beckon.Client(
            hub,
            dispatch=dispatch,
            on_event=lambda _e: dispatcher_threads.add(threading.get_ident()),
        ) as carol:
            stream = carol.events()
            task = asyncio.ensure_future(carol.login_async("carol"))
            done_on: list[int] = []
            task.add_done_callback(lambda _t: done_on.append(threading.get_ident()))
            await task
            await asyncio.sleep(0)  # let the done-callback run
            for _ in range(2):  # CONNECTING, CONNECTED
                await stream.get(WAIT)
                stream_threads.add(threading.get_ident())
            assert done_on == [loop_thread]
            assert stream_threads == {loop_thread}
            # The library called from its own dispatcher thread, never the loop's.
            assert dispatcher_threads and loop_thread not in dispatcher_threads

    run(main())


def test_many_concurrent_awaits(hub: str) -> None:
    async def main() -> None:
        async with beckon.Client(hub) as dan:
            baseline = _callbacks.pending_count()
            await dan.login_async("dan")
            results = await asyncio.gather(
                *(dan.send_invitation_async([f"u{i % 5}"], timeout=60) for i in range(300))
            )
            assert len({r.invitation_id for r in results}) == 300
            errors = await asyncio.gather(
                *(dan.accept_invitation_async(r.invitation_id) for r in results[:50]),
                return_exceptions=True,
            )
            assert all(isinstance(e, beckon.NotPermittedError) for e in errors)
            assert _callbacks.pending_count() == baseline

    run(main())


def test_input_errors_raise_at_the_await(hub: str) -> None:
    async def main() -> None:
        async with beckon.Client(hub) as eve:
            with pytest.raises(beckon.NotLoggedInError):
                await eve.send_invitation_async(["bob"], timeout=5)
            with pytest.raises(beckon.ArgumentTypeError):
                await eve.login_async(3)  # type: ignore[arg-type]
            await eve.login_async("eve")
            with pytest.raises(beckon.InvalidArgumentError, match="invitation_id"):
                await eve.cancel_invitation_async("nope")
            with pytest.raises(beckon.InvitationNotFoundError):
                await eve.refuse_invitation_async("0123456789abcdef0123456789abcdef")
            await eve.renew_token_async("t")
            await eve.logout_async()

    run(main())


def test_cancelled_await_and_closed_loop_drop_the_outcome(
    make_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="beckon")
    alice, _ = make_client("alice")
    bob, bob_events = make_client("bob")
    baseline = _callbacks.pending_count()
    gate = threading.Event()

    def hold(event: beckon.Event) -> None:
        if isinstance(event, beckon.InvitationReceived):
            gate.wait(WAIT)  # bob's callbacks queue behind this

    bob.add_event_handler(hold)
    sent = alice.send_invitation(["bob"], timeout=60).result(WAIT)

    async def give_up() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(bob.accept_invitation_async(sent.invitation_id), 0.05)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(give_up())
    loop.close()
    assert _callbacks.pending_count() == baseline + 1  # the accept still waits for its callback
    gate.set()
    # The hub took the answer; its outcome arrives for a closed loop and is dropped.
    bob_events.wait_for(
        beckon.InvitationUserStateChanged, lambda e: e.state == beckon.InviteeState.ACCEPTED
    )
    done = threading.Event()
    bob.renew_token("t").add_done_callback(lambda _f: done.set())  # runs after the accept's
    assert done.wait(WAIT)
    assert _callbacks.pending_count() == baseline
    assert any("event loop closed" in r.getMessage() for r in caplog.records)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_streams_end_when_the_client_closes(hub: str) -> None:
    async def main() -> None:
        frank = beckon.Client(hub)
        stream = frank.events(beckon.EventKind.CONNECTION_STATE_CHANGED)
        await frank.login_async("frank")
        frank.close()
        seen = [event async for event in stream]
        # CONNECTING, CONNECTED, then whatever the close delivered, then the end.
        assert [e.state for e in seen][:2] == [  # type: ignore[attr-defined]
            beckon.ConnectionState.CONNECTING,
            beckon.ConnectionState.CONNECTED,
        ]
        with pytest.raises(StopAsyncIteration):
            await stream.get(WAIT)
        with pytest.raises(beckon.ShutdownError):
            frank.events()
        with pytest.raises(beckon.ShutdownError):
            await frank.login_async("frank")

    run(main())


def test_events_needs_a_running_loop(make_client: Any) -> None:
    client, _ = make_client("gus", login=False)
    with pytest.raises(RuntimeError):
        client.events()


def test_unread_streams_are_released(hub: str) -> None:
    async def main() -> None:
        async with beckon.Client(hub) as hal:
            for _ in range(20):
                hal.events()  # dropped at once: must not keep queueing
            await hal.login_async("hal")
            router = hal._router
            gc.collect()
            assert len(router._streams) == 0

    run(main())
