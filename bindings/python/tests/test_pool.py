"""Pool mode: the callbacks of many clients on a few library threads shared by all.

``DispatchMode.POOL`` keeps each client's callbacks one at a time and in order,
never on the caller's thread, without a thread per client: the thread count is
read from ``/proc/self/task`` (``threading`` does not see library threads).
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import beckon
from beckon import _callbacks
from conftest import WAIT, Recorder

MakeClient = Callable[..., tuple[beckon.Client, Recorder]]
POOL = beckon.DispatchMode.POOL

#: The most threads the library's pool runs while no callback frees a client.
POOL_MAX_THREADS = 8


def thread_count() -> int:
    """Threads of this process, the library's included."""
    return len(os.listdir("/proc/self/task"))


pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/task"), reason="counts threads in /proc/self/task"
)


def _no_binding_errors(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r for r in caplog.records if r.name == "beckon" and r.levelno >= logging.ERROR]
    assert bad == [], [r.getMessage() for r in bad]


class Member:
    """One pool client and what its callbacks saw: events, threads, overlaps."""

    def __init__(self, hub: str, user: str) -> None:
        self.user = user
        self.recorder = Recorder(user)
        self.threads: set[int] = set()
        self.overlaps = 0
        self.accepts: list[concurrent.futures.Future[None]] = []
        self.accepted = threading.Event()
        self._busy = threading.Lock()
        self.client = beckon.Client(hub, dispatch=POOL, on_event=self.on_event)

    def enter(self) -> None:
        # Two callbacks of one client at once would find the lock taken.
        if not self._busy.acquire(blocking=False):
            self.overlaps += 1
            return
        self.threads.add(threading.get_ident())
        time.sleep(0)  # give another pool thread the GIL, so an overlap would show
        self._busy.release()

    def on_event(self, event: beckon.Event) -> None:
        self.enter()
        self.recorder(event)
        if isinstance(event, beckon.InvitationReceived) and not self.accepts:
            # Accepted from the handler, on a pool thread.
            future = self.client.accept_invitation(event.invitation_id, extended_data="yes")
            future.add_done_callback(lambda _f: self.enter())
            self.accepts.append(future)
            self.accepted.set()


def test_many_pool_clients_share_a_few_threads(
    hub: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="beckon")
    pairs = 100
    main_thread = threading.get_ident()
    # Warm the library (its runtime and the pool) with one pool client first.
    warm = beckon.Client(hub, dispatch=POOL)
    members: list[Member] = []
    try:
        assert warm.dispatch is POOL and "pool" in repr(warm)
        warm.login("warm").result(WAIT)
        baseline = _callbacks.pending_count()
        before = thread_count()
        inviters = [Member(hub, f"caller{i}") for i in range(pairs)]
        invitees = [Member(hub, f"callee{i}") for i in range(pairs)]
        members = inviters + invitees
        logins = [m.client.login(m.user) for m in members]
        for future in logins:
            assert future.result(WAIT) is None
        after = thread_count()
        assert after - before <= POOL_MAX_THREADS, (
            f"{len(members)} pool clients added {after - before} threads ({before} -> {after})"
        )

        sends = [
            inviter.client.send_invitation([invitee.user], timeout=30)
            for inviter, invitee in zip(inviters, invitees)
        ]
        ids = [send.result(WAIT).invitation_id for send in sends]
        for inviter, invitee, invitation in zip(inviters, invitees, ids):
            assert invitee.accepted.wait(WAIT), invitee.user
            assert invitee.accepts[0].result(WAIT) is None
            heard = inviter.recorder.wait_for(beckon.InvitationAccepted)
            assert heard.invitation_id == invitation
            assert (heard.invitee, heard.extended_data) == (invitee.user, "yes")
        # Once each: one ring per invitee, one ACCEPTED per inviter, one accept each.
        for inviter, invitee, invitation in zip(inviters, invitees, ids):
            assert [e.invitation_id for e in invitee.recorder.of(beckon.InvitationReceived)] == [
                invitation
            ]
            assert len(inviter.recorder.of(beckon.InvitationAccepted)) == 1
            assert len(invitee.accepts) == 1
        assert _callbacks.pending_count() == baseline

        used: set[int] = set()
        for m in members:
            assert m.overlaps == 0, f"{m.user}: two callbacks ran at once"
            used |= m.threads
        assert main_thread not in used
        assert 1 <= len(used) <= POOL_MAX_THREADS, f"callbacks ran on {len(used)} threads"
    finally:
        for m in members:
            m.client.close()
        warm.close()
    _no_binding_errors(caplog)


def test_a_pool_client_closes_itself_from_its_own_callbacks(hub: str) -> None:
    # From an event handler: the login's own result is still to come.
    client = beckon.Client(hub, dispatch=POOL)
    closed = threading.Event()

    def close_on_connected(event: beckon.Event) -> None:
        if isinstance(event, beckon.ConnectionStateChanged) and (
            event.state == beckon.ConnectionState.CONNECTED
        ):
            client.close()
            closed.set()

    client.add_event_handler(close_on_connected)
    login = client.login("selfie")
    assert closed.wait(WAIT), "close() from the pool thread did not return"
    assert client.closed
    assert isinstance(login.exception(WAIT), beckon.ShutdownError)
    with pytest.raises(beckon.ShutdownError):
        client.renew_token("t")

    # From a future's done-callback, with more of its operations queued.
    alice = beckon.Client(hub, dispatch=POOL)
    other = beckon.Client(hub, dispatch=POOL)
    queued: list[concurrent.futures.Future[Any]] = []
    closed_on: list[int] = []
    done = threading.Event()

    def close_from_result(_f: concurrent.futures.Future[Any]) -> None:
        queued.extend(other.send_invitation(["ghost"], timeout=30) for _ in range(5))
        other.close()
        closed_on.append(threading.get_ident())
        done.set()

    def on_ring(event: beckon.Event) -> None:
        if isinstance(event, beckon.InvitationReceived):
            # Its done-callback runs on the pool after this handler returns.
            other.accept_invitation(event.invitation_id).add_done_callback(close_from_result)

    other.add_event_handler(on_ring)
    try:
        alice.login("alice").result(WAIT)
        other.login("selfie2").result(WAIT)
        alice.send_invitation(["selfie2"], timeout=30).result(WAIT)
        assert done.wait(WAIT), "close() from the pool thread did not return"
        assert closed_on and closed_on[0] != threading.get_ident()
        finished, pending = concurrent.futures.wait(queued, timeout=WAIT)
        assert not pending and len(finished) == 5
        assert all(isinstance(f.exception(), beckon.ShutdownError) for f in queued)
    finally:
        alice.close()
    other.close()  # again, from outside: returns at once


def test_a_pool_callback_closes_another_pool_client(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="beckon")
    alice, _ = make_client("alice", dispatch=POOL)
    bob, _ = make_client("bob", dispatch=POOL)
    closed = threading.Event()

    def close_bob(event: beckon.Event) -> None:
        if isinstance(event, beckon.InvitationReceived) and not closed.is_set():
            bob.close()  # waits for bob's callbacks, on other pool threads
            closed.set()

    alice.add_event_handler(close_bob)
    # Offline "ghost" first: alice's ring (and bob's close) can only follow the last call.
    in_flight = [bob.send_invitation(["ghost"], timeout=30) for _ in range(20)]
    in_flight.append(bob.send_invitation(["alice"], timeout=30))
    assert closed.wait(WAIT)
    assert bob.closed
    done, pending = concurrent.futures.wait(in_flight, timeout=WAIT)
    assert not pending
    for future in in_flight:
        error = future.exception()
        assert error is None or isinstance(error, beckon.ShutdownError), error
    assert alice.info().user_id == "alice"  # alice goes on
    _no_binding_errors(caplog)


def test_one_blocked_pool_callback_does_not_stop_other_clients(
    make_client: MakeClient,
) -> None:
    """The GIL is not held while a pool callback waits, and each client keeps its order."""
    alice, _ = make_client("alice", dispatch=POOL)
    bob, _ = make_client("bob", dispatch=POOL)
    gate = threading.Event()
    blocked = threading.Event()
    held_on: list[int] = []
    behind: list[concurrent.futures.Future[None]] = []

    def hold(event: beckon.Event) -> None:
        if isinstance(event, beckon.InvitationReceived) and not blocked.is_set():
            behind.append(bob.renew_token("t"))  # queued behind this very callback
            held_on.append(threading.get_ident())
            blocked.set()
            gate.wait(WAIT)  # holds this pool thread, not the GIL

    bob.add_event_handler(hold)
    try:
        alice.send_invitation(["bob"], timeout=30).result(WAIT)
        assert blocked.wait(WAIT)
        # Another pool client's callbacks run meanwhile, on another pool thread.
        carol, carol_events = make_client("carol", login=False, dispatch=POOL)
        assert carol.login("carol").result(WAIT) is None
        assert carol_events.threads and held_on[0] not in carol_events.threads
        assert alice.send_invitation(["carol"], timeout=30).result(WAIT)
        carol_events.wait_for(beckon.InvitationReceived)
        # Bob's own next callback waits for the one still running.
        assert not behind[0].done()
    finally:
        gate.set()
    assert behind[0].exception(WAIT) is None


def test_rules_for_callbacks_hold_on_pool_threads(make_client: MakeClient) -> None:
    alice, _ = make_client("alice", dispatch=POOL)
    bob, bob_events = make_client("bob", login=False, dispatch=POOL)
    outcome: list[BaseException | None] = []
    done = threading.Event()
    order: list[str] = []

    def on_event(event: beckon.Event) -> None:
        if isinstance(event, beckon.ConnectionStateChanged):
            order.append(event.state.name)
        if isinstance(event, beckon.InvitationReceived):
            try:
                # Its callback could only run after this one: it would never come.
                bob.renew_token("t").result(WAIT)
                outcome.append(None)
            except BaseException as error:  # noqa: BLE001
                outcome.append(error)
            try:
                # poll is for poll-mode clients only.
                bob.poll(0)
            except BaseException as error:  # noqa: BLE001
                outcome.append(error)
            done.set()

    bob.add_event_handler(on_event)
    login = bob.login("bob")
    login.add_done_callback(lambda _f: order.append("login done"))
    assert login.result(WAIT) is None
    # Events before the result of the operation that caused them, in order.
    assert order == ["CONNECTING", "CONNECTED", "login done"]
    assert threading.get_ident() not in bob_events.threads

    alice.send_invitation(["bob"], timeout=30).result(WAIT)
    assert done.wait(WAIT)
    assert isinstance(outcome[0], RuntimeError) and "deadlock" in str(outcome[0])
    assert isinstance(outcome[1], beckon.InvalidArgumentError), outcome[1]
    with pytest.raises(beckon.InvalidArgumentError, match="poll"):
        bob.poll(0)
