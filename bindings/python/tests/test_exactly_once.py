"""The exactly-once promise, and that nothing of a completed operation is kept."""

from __future__ import annotations

import concurrent.futures
import gc
import logging
import threading
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import beckon
from beckon import _callbacks
from conftest import WAIT, Recorder

MakeClient = Callable[..., tuple[beckon.Client, Recorder]]
#: The modes whose callbacks run on library threads (poll mode: test_poll.py).
THREADED = pytest.mark.parametrize(
    "dispatch", [beckon.DispatchMode.THREAD, beckon.DispatchMode.POOL], ids=["thread", "pool"]
)


class Completions:
    """Counts how often each future completes (a done-callback per future)."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.lock = threading.Lock()

    def watch(self, future: concurrent.futures.Future[Any]) -> None:
        def done(_f: concurrent.futures.Future[Any]) -> None:
            with self.lock:
                self.counts[id(future)] += 1

        future.add_done_callback(done)


def _no_binding_errors(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.name == "beckon" and r.levelno >= logging.ERROR]
    assert bad == [], [r.getMessage() for r in bad]


@THREADED
def test_many_operations_each_complete_once(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, dispatch: beckon.DispatchMode
) -> None:
    caplog.set_level(logging.DEBUG, logger="beckon")
    alice, _ = make_client("alice", dispatch=dispatch)
    bob, bob_events = make_client("bob", dispatch=dispatch)
    baseline = _callbacks.pending_count()
    completions = Completions()

    # "nobody" never logs in: each invitation stays open after bob's answer.
    sends = [
        alice.send_invitation(["bob", "nobody"], timeout=60, extended_data=str(i))
        for i in range(200)
    ]
    for f in sends:
        completions.watch(f)
    ids = [f.result(WAIT).invitation_id for f in sends]
    assert len(set(ids)) == 200
    bob_events.wait_for(beckon.InvitationReceived, lambda e: e.invitation_id == ids[-1])
    rings = [e.invitation_id for e in bob_events.of(beckon.InvitationReceived)]
    assert sorted(rings) == sorted(ids)  # each rang once

    answers = [
        (bob.accept_invitation if n % 2 else bob.refuse_invitation)(i) for n, i in enumerate(ids)
    ]
    again = [bob.accept_invitation(i) for i in ids]  # all refused: already answered
    cancels = [alice.cancel_invitation(i) for i in ids]
    everything: list[concurrent.futures.Future[Any]] = [*answers, *again, *cancels]
    for future in everything:
        completions.watch(future)
    concurrent.futures.wait(everything, timeout=WAIT)

    assert all(f.result() is None for f in answers)
    assert all(isinstance(f.exception(), beckon.AlreadyAnsweredError) for f in again)
    # Each cancel reaches "nobody" and reports bob's answer as a terminal state.
    for n, cancel in enumerate(cancels):
        state = beckon.InviteeState.ACCEPTED if n % 2 else beckon.InviteeState.REJECTED
        assert cancel.result().error_invitees == (beckon.InviteeStatus("bob", state),)
    assert len(completions.counts) == 800
    assert set(completions.counts.values()) == {1}
    assert _callbacks.pending_count() == baseline
    _no_binding_errors(caplog)


@THREADED
def test_close_from_a_callback_with_work_queued_fails_it_all_with_shutdown(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, dispatch: beckon.DispatchMode
) -> None:
    caplog.set_level(logging.DEBUG, logger="beckon")
    alice, _ = make_client("alice", dispatch=dispatch)
    bob, _ = make_client("bob", dispatch=dispatch)
    baseline = _callbacks.pending_count()
    gate = threading.Event()
    closed_inside = threading.Event()

    def hold_then_close(event: beckon.Event) -> None:
        # Blocks bob's dispatcher: the operations below queue their callbacks.
        if isinstance(event, beckon.InvitationReceived) and not closed_inside.is_set():
            gate.wait(WAIT)
            bob.close()  # nested: every queued callback runs now, with SHUTDOWN
            closed_inside.set()

    bob.add_event_handler(hold_then_close)
    sent = alice.send_invitation(["bob"], timeout=60).result(WAIT)
    completions = Completions()
    in_flight: list[concurrent.futures.Future[Any]] = [
        bob.accept_invitation(sent.invitation_id) for _ in range(50)
    ]
    in_flight += [bob.send_invitation(["alice"], timeout=60) for _ in range(50)]
    for f in in_flight:
        completions.watch(f)
    gc.collect()  # nothing the callbacks need may depend on a Python reference here
    gate.set()
    assert closed_inside.wait(WAIT)

    done, not_done = concurrent.futures.wait(in_flight, timeout=WAIT)
    assert not not_done
    assert all(isinstance(f.exception(), beckon.ShutdownError) for f in in_flight)
    assert set(completions.counts.values()) == {1} and len(completions.counts) == 100
    assert bob.closed
    assert _callbacks.pending_count() == baseline
    _no_binding_errors(caplog)


@THREADED
def test_close_with_work_in_flight_from_another_thread(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture, dispatch: beckon.DispatchMode
) -> None:
    caplog.set_level(logging.DEBUG, logger="beckon")
    alice, _ = make_client("alice", dispatch=dispatch)
    bob, bob_events = make_client("bob", dispatch=dispatch)
    baseline = _callbacks.pending_count()
    sent = alice.send_invitation(["bob"], timeout=60).result(WAIT)
    bob_events.wait_for(beckon.InvitationReceived)

    completions = Completions()
    futures: list[concurrent.futures.Future[Any]] = []
    stop = threading.Event()

    def keep_sending() -> None:
        # Races the close below: every call either starts (and completes once)
        # or raises ShutdownError because the client is already closed.
        while not stop.is_set():
            try:
                future = bob.send_invitation(["alice"], timeout=60)
            except beckon.ShutdownError:
                return
            completions.watch(future)
            futures.append(future)

    sender = threading.Thread(target=keep_sending)
    sender.start()
    while len(futures) < 100:
        alice.send_invitation(["bob"], timeout=60).result(WAIT)
    bob.close()
    stop.set()
    sender.join(WAIT)
    assert not sender.is_alive()

    _, not_done = concurrent.futures.wait(futures, timeout=WAIT)
    assert not not_done
    outcomes = Counter(
        "ok" if f.exception() is None else type(f.exception()).__name__ for f in futures
    )
    assert set(outcomes) <= {"ok", "ShutdownError"}, outcomes
    assert set(completions.counts.values()) == {1}
    assert len(completions.counts) == len(futures)
    assert _callbacks.pending_count() == baseline
    assert sent.invitation_id
    _no_binding_errors(caplog)


def test_completed_operations_keep_nothing(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    baseline = _callbacks.pending_count()

    def round_of(n: int) -> None:
        futures = [alice.send_invitation([f"user{i % 7}"], timeout=60) for i in range(n)]
        for f in futures:
            f.result(WAIT)

    round_of(200)  # warm-up: caches, interned strings, thread-locals
    probe = alice.send_invitation(["zoe"], timeout=60)
    probe.result(WAIT)
    probe_ref = weakref.ref(probe)
    del probe
    gc.collect()
    assert probe_ref() is None  # the binding does not hold completed futures

    before = len(gc.get_objects())
    round_of(1000)
    gc.collect()
    after = len(gc.get_objects())
    assert _callbacks.pending_count() == baseline
    assert not [o for o in gc.get_objects() if isinstance(o, _callbacks.PendingOperation)]
    # 1000 operations later the heap has not grown with them.
    assert after - before < 200, (before, after)


def test_failed_calls_leave_nothing_registered(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    baseline = _callbacks.pending_count()
    for _ in range(100):
        with pytest.raises(beckon.InvalidArgumentError):
            alice.accept_invitation("malformed")  # refused by the library at once
        with pytest.raises(beckon.TooManyInviteesError):
            alice.send_invitation([f"u{i}" for i in range(40)], timeout=5)
    assert _callbacks.pending_count() == baseline
