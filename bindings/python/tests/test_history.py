"""History: a page of the user's ended invitations (ABI 2.3, ``beckon_query_invitations``).

alice invites bob several times, bob answers each, and the pages of either
user's history list every ended invitation exactly once, newest sent first,
with each invitee's final state; roles and time ranges filter; bad arguments
fail at once naming ``query.<field>``, from the binding's checks or the
library's; every query completes exactly once.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import beckon
from beckon import _callbacks, _native
from conftest import WAIT, Recorder

MakeClient = Callable[..., tuple[beckon.Client, Recorder]]

N = 7  # invitations: more than two pages of PAGE
PAGE = 3


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Sent:
    """What alice sent bob, and bob's answer to each."""

    def __init__(self, before_ms: int, states: dict[str, beckon.InviteeState]) -> None:
        self.before_ms = before_ms  # taken before the first send
        self.states = states  # invitation id -> bob's final state


def _invite_and_answer(alice: beckon.Client, bob: beckon.Client, count: int = N) -> Sent:
    before_ms = _now_ms()
    states: dict[str, beckon.InviteeState] = {}
    for i in range(count):
        invitation = alice.send_invitation(["bob"], timeout=60).result(WAIT).invitation_id
        if i % 3 == 0:
            bob.accept_invitation(invitation).result(WAIT)
            states[invitation] = beckon.InviteeState.ACCEPTED
        else:
            bob.refuse_invitation(invitation).result(WAIT)
            states[invitation] = beckon.InviteeState.REJECTED
    assert len(states) == count
    return Sent(before_ms, states)


def _pages(client: beckon.Client, **query: Any) -> list[beckon.InvitationPage]:
    """Every page of a query, following the cursors (bounded, so a loop fails instead)."""
    pages = [client.query_invitations(**query).result(WAIT)]
    while pages[-1].next_cursor is not None:
        assert len(pages) <= N + 1, pages
        pages.append(client.query_invitations(**query, cursor=pages[-1].next_cursor).result(WAIT))
    return pages


def _listed(pages: list[beckon.InvitationPage]) -> list[beckon.InvitationSummary]:
    return [summary for page in pages for summary in page.invitations]


def _check_newest_first(listed: list[beckon.InvitationSummary]) -> None:
    created = [s.created_ms for s in listed]
    assert created == sorted(created, reverse=True), created


def test_history_role_values() -> None:
    assert [(r.name, int(r)) for r in beckon.HistoryRole] == [
        ("ANY", 0),
        ("SENT", 1),
        ("RECEIVED", 2),
    ]
    assert beckon.InvitationPage() == beckon.InvitationPage((), None)


@pytest.mark.parametrize(
    "dispatch", [beckon.DispatchMode.THREAD, beckon.DispatchMode.POOL], ids=["thread", "pool"]
)
def test_pages_list_every_ended_invitation_once_newest_first(
    make_client: MakeClient, dispatch: beckon.DispatchMode
) -> None:
    alice, _ = make_client("alice", dispatch=dispatch)
    bob, _ = make_client("bob", dispatch=dispatch)
    assert alice.query_invitations().result(WAIT) == beckon.InvitationPage((), None)
    sent = _invite_and_answer(alice, bob)
    after_ms = _now_ms()

    for client, role in [
        (alice, beckon.HistoryRole.ANY),
        (alice, beckon.HistoryRole.SENT),
        (bob, beckon.HistoryRole.ANY),
        (bob, beckon.HistoryRole.RECEIVED),
    ]:
        pages = _pages(client, role=role, limit=PAGE)
        assert [len(p.invitations) for p in pages] == [3, 3, 1], (client.user_id, role)
        assert all(isinstance(p.next_cursor, str) and p.next_cursor for p in pages[:-1])
        assert pages[-1].next_cursor is None
        listed = _listed(pages)
        ids = [s.invitation_id for s in listed]
        assert len(ids) == len(set(ids)) == N, ids  # each exactly once
        assert set(ids) == set(sent.states)
        _check_newest_first(listed)
        for summary in listed:
            assert summary.inviter == "alice"
            assert summary.invitees == (
                beckon.InviteeStatus("bob", sent.states[summary.invitation_id]),
            )
            assert summary.invitees[0].state.is_terminal
            assert sent.before_ms <= summary.created_ms <= summary.ended_ms <= after_ms
            assert summary.sent_by_server is False
        assert Counter(s.invitees[0].state for s in listed) == {
            beckon.InviteeState.ACCEPTED: 3,
            beckon.InviteeState.REJECTED: 4,
        }

    # The default page size (20) holds them all.
    whole = alice.query_invitations().result(WAIT)
    assert whole.next_cursor is None
    assert {s.invitation_id for s in whole.invitations} == set(sent.states)
    _check_newest_first(list(whole.invitations))
    # An empty cursor is the first page too.
    assert alice.query_invitations(limit=PAGE, cursor="").result(WAIT) == _pages(
        alice, limit=PAGE
    )[0]


def test_roles_filter(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    bob, _ = make_client("bob")
    sent = _invite_and_answer(alice, bob)
    # bob also sends one, which alice refuses: it is bob's SENT, alice's RECEIVED.
    back = bob.send_invitation(["alice"], timeout=60).result(WAIT).invitation_id
    alice.refuse_invitation(back).result(WAIT)

    def ids(client: beckon.Client, role: beckon.HistoryRole) -> list[str]:
        return [s.invitation_id for s in _listed(_pages(client, role=role, limit=PAGE))]

    assert set(ids(alice, beckon.HistoryRole.SENT)) == set(sent.states)
    assert ids(alice, beckon.HistoryRole.RECEIVED) == [back]
    assert set(ids(alice, beckon.HistoryRole.ANY)) == set(sent.states) | {back}
    assert ids(bob, beckon.HistoryRole.SENT) == [back]
    assert set(ids(bob, beckon.HistoryRole.RECEIVED)) == set(sent.states)
    assert len(ids(bob, beckon.HistoryRole.ANY)) == N + 1
    # The role may be given positionally, or as its int value.
    [own] = bob.query_invitations(beckon.HistoryRole.SENT).result(WAIT).invitations
    assert own.inviter == "bob" and own.invitation_id == back
    received = bob.query_invitations(role=2, limit=100)  # type: ignore[arg-type]
    assert len(received.result(WAIT).invitations) == N


def test_only_bob_invited_and_nothing_sent(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    bob, _ = make_client("bob")
    sent = _invite_and_answer(alice, bob)
    nothing = bob.query_invitations(role=beckon.HistoryRole.SENT).result(WAIT)
    assert nothing == beckon.InvitationPage((), None)
    received = _listed(_pages(bob, role=beckon.HistoryRole.RECEIVED, limit=PAGE))
    assert len(received) == N and {s.invitation_id for s in received} == set(sent.states)
    assert alice.query_invitations(role=beckon.HistoryRole.RECEIVED).result(WAIT).invitations == ()


def test_invitations_still_ringing_are_not_listed(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    bob, _ = make_client("bob")
    ringing = alice.send_invitation(["bob"], timeout=60).result(WAIT).invitation_id
    assert alice.query_invitations().result(WAIT).invitations == ()
    alice.cancel_invitation(ringing).result(WAIT)
    [summary] = alice.query_invitations().result(WAIT).invitations
    assert summary.invitation_id == ringing
    assert summary.invitees == (beckon.InviteeStatus("bob", beckon.InviteeState.CANCELLED),)
    assert bob.query_invitations().result(WAIT).invitations == (summary,)


def test_time_ranges_select_by_when_invitations_were_sent(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    bob, _ = make_client("bob")
    sent = _invite_and_answer(alice, bob)
    listed = list(alice.query_invitations(limit=100).result(WAIT).invitations)
    assert len(listed) == N
    first_ms = min(s.created_ms for s in listed)
    last_ms = max(s.created_ms for s in listed)

    def count(since_ms: int = 0, until_ms: int = 0) -> int:
        page = alice.query_invitations(limit=100, since_ms=since_ms, until_ms=until_ms).result(WAIT)
        assert page.next_cursor is None
        return len(page.invitations)

    # Before the first send: nothing ("until" is exclusive).
    assert count(until_ms=sent.before_ms) == 0
    assert count(until_ms=first_ms) == 0
    assert count(since_ms=1, until_ms=first_ms) == 0
    # After the last send: nothing ("since" is inclusive).
    assert count(since_ms=last_ms + 1) == 0
    # Around them all: all.
    assert count(since_ms=sent.before_ms) == N
    assert count(since_ms=first_ms, until_ms=last_ms + 1) == N
    assert count(since_ms=sent.before_ms, until_ms=_now_ms() + 60_000) == N
    # A split: each side has exactly those on it, and together all of them.
    split = last_ms if first_ms == last_ms else (first_ms + last_ms + 1) // 2
    older = count(until_ms=split)
    newer = count(since_ms=split)
    assert older == sum(s.created_ms < split for s in listed)
    assert older + newer == N
    # Paging within a range keeps to it.
    ranged = _listed(_pages(alice, since_ms=first_ms, until_ms=last_ms + 1, limit=2))
    assert sorted(s.invitation_id for s in ranged) == sorted(sent.states)


# (query, exception class, message: a regex searched in the error's message)
BAD_QUERIES: list[tuple[dict[str, Any], type[beckon.BeckonError], str]] = [
    ({"role": 7}, beckon.InvalidArgumentError, r"^query\.role: 7 is not a BECKON_HISTORY_\* value$"),
    ({"role": -1}, beckon.InvalidArgumentError, r"^query\.role: -1 is not"),
    ({"role": "sent"}, beckon.ArgumentTypeError, r"^query\.role: expected beckon\.HistoryRole"),
    ({"role": True}, beckon.ArgumentTypeError, r"^query\.role: expected"),
    ({"limit": 101}, beckon.InvalidArgumentError, r"^query\.limit: 101 is outside 0\.\.=100$"),
    ({"limit": -1}, beckon.InvalidArgumentError, r"^query\.limit: -1 is outside"),
    ({"limit": 2.5}, beckon.ArgumentTypeError, r"^query\.limit: expected int"),
    ({"since_ms": -1}, beckon.InvalidArgumentError, r"^query\.since_ms: -1 is outside"),
    ({"since_ms": "0"}, beckon.ArgumentTypeError, r"^query\.since_ms: expected int"),
    ({"until_ms": 2**64}, beckon.InvalidArgumentError, r"^query\.until_ms: \d+ is outside"),
    # Judged by the library:
    (
        {"since_ms": 10, "until_ms": 10},
        beckon.InvalidArgumentError,
        r"^query\.until_ms: 10 is not after query\.since_ms \(10\)$",
    ),
    (
        {"since_ms": 2_000, "until_ms": 1_000},
        beckon.InvalidArgumentError,
        r"^query\.until_ms: 1000 is not after query\.since_ms \(2000\)$",
    ),
    (
        {"cursor": "nonsense"},
        beckon.InvalidArgumentError,
        r"^query\.cursor: 'nonsense' is not a cursor this server gave$",
    ),
    ({"cursor": "12-not-an-id"}, beckon.InvalidArgumentError, r"^query\.cursor: .* is not a cursor"),
    ({"cursor": "a\0b"}, beckon.InvalidArgumentError, r"^query\.cursor: contains a NUL"),
    ({"cursor": 5}, beckon.ArgumentTypeError, r"^query\.cursor: expected str"),
]


@pytest.mark.parametrize(
    ("query", "error", "message"),
    BAD_QUERIES,
    ids=[
        "role-unknown",
        "role-negative",
        "role-str",
        "role-bool",
        "limit-over-100",
        "limit-negative",
        "limit-float",
        "since-negative",
        "since-str",
        "until-over-u64",
        "until-equal-since",
        "until-before-since",
        "cursor-nonsense",
        "cursor-bad-id",
        "cursor-nul",
        "cursor-int",
    ],
)
def test_bad_queries_fail_at_once_naming_the_field(
    make_client: MakeClient, query: dict[str, Any], error: type[beckon.BeckonError], message: str
) -> None:
    alice, _ = make_client("alice")
    baseline = _callbacks.pending_count()
    with pytest.raises(error) as raised:
        alice.query_invitations(**query)
    assert raised.type is error
    assert raised.value.code == beckon.ErrorCode.INVALID_ARGUMENT
    assert re.search(message, raised.value.message), raised.value.message

    async def main() -> None:
        with pytest.raises(error) as raised_async:
            await alice.query_invitations_async(**query)
        assert re.search(message, raised_async.value.message), raised_async.value.message

    asyncio.run(main())
    assert _callbacks.pending_count() == baseline  # nothing was started


def test_the_binding_and_the_library_word_role_and_limit_errors_alike(
    make_client: MakeClient,
) -> None:
    # The binding checks role and limit itself, with the library's messages:
    # the same query through the raw C ABI gets the same words.
    alice, _ = make_client("alice")
    lib = _native.library()
    fieldsets: list[dict[str, Any]] = [
        {"role": 7},
        {"limit": 101},
        {"since_ms": 5, "until_ms": 5},  # judged by the library both ways
    ]
    for fields in fieldsets:
        query = _native.InvitationQuery(struct_size=ctypes.sizeof(_native.InvitationQuery), **fields)
        with alice._handle.use() as ptr:
            code = lib.beckon_query_invitations(
                ptr, ctypes.byref(query), _native.InvitationPageCallback(), None
            )
            c_message = _callbacks.last_error_message()
        assert code == beckon.ErrorCode.INVALID_ARGUMENT
        with pytest.raises(beckon.InvalidArgumentError) as raised:
            alice.query_invitations(**fields)
        assert raised.value.message == c_message


def test_the_raw_abi_struct_size_and_a_null_query(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    bob, _ = make_client("bob")
    sent = _invite_and_answer(alice, bob, count=2)
    lib = _native.library()

    for size, words in [
        (0, "query.struct_size: 0 is below the smallest known size"),
        (4, "query.struct_size: 4 is below"),
        (1 << 20, "query.struct_size: 1048576 is not a plausible size"),
    ]:
        query = _native.InvitationQuery(struct_size=size)
        with alice._handle.use() as ptr:
            code = lib.beckon_query_invitations(
                ptr, ctypes.byref(query), _native.InvitationPageCallback(), None
            )
            message = _callbacks.last_error_message()
        assert code == beckon.ErrorCode.INVALID_ARGUMENT
        assert message.startswith(words), message

    # A NULL query is every default; the callback runs exactly once.
    calls: list[tuple[int, beckon.InvitationPage]] = []
    done = threading.Event()

    def on_page(_user_data: int | None, result: Any) -> None:
        r = result.contents
        calls.append((r.error, _callbacks.page(r)))  # copied while it is valid
        done.set()

    callback = _native.InvitationPageCallback(on_page)  # alive until the callback has run
    with alice._handle.use() as ptr:
        assert lib.beckon_query_invitations(ptr, None, callback, None) == 0
    assert done.wait(WAIT)
    time.sleep(0.05)  # a second call would come now
    [(error, page)] = calls
    assert error == 0
    assert page.next_cursor is None
    assert {s.invitation_id for s in page.invitations} == set(sent.states)


def test_not_logged_in(make_client: MakeClient) -> None:
    alice, _ = make_client("alice", login=False)
    baseline = _callbacks.pending_count()
    with pytest.raises(beckon.NotLoggedInError) as raised:
        alice.query_invitations()
    assert raised.value.code == beckon.ErrorCode.NOT_LOGGED_IN
    with pytest.raises(beckon.NotLoggedInError):
        asyncio.run(alice.query_invitations_async(role=beckon.HistoryRole.SENT))
    # Bad arguments are still judged first by the binding.
    with pytest.raises(beckon.InvalidArgumentError, match="query.limit"):
        alice.query_invitations(limit=1000)
    assert _callbacks.pending_count() == baseline

    alice.login("alice").result(WAIT)
    assert alice.query_invitations().result(WAIT) == beckon.InvitationPage()
    alice.logout().result(WAIT)
    with pytest.raises(beckon.NotLoggedInError):
        alice.query_invitations()


def test_closed_client(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    alice.close()
    with pytest.raises(beckon.ShutdownError):
        alice.query_invitations()


def _no_binding_errors(caplog: pytest.LogCaptureFixture) -> None:
    # A second callback for one operation is logged as an error (and dropped).
    bad = [r for r in caplog.records if r.name == "beckon" and r.levelno >= logging.ERROR]
    assert bad == [], [r.getMessage() for r in bad]


def test_each_query_completes_exactly_once(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="beckon")
    alice, _ = make_client("alice")
    bob, _ = make_client("bob")
    sent = _invite_and_answer(alice, bob)
    baseline = _callbacks.pending_count()
    counts: Counter[int] = Counter()
    lock = threading.Lock()
    first = alice.query_invitations(limit=PAGE).result(WAIT)
    assert first.next_cursor is not None

    futures: list[concurrent.futures.Future[beckon.InvitationPage]] = []
    for i in range(300):
        client = alice if i % 2 else bob
        cursor = first.next_cursor if client is alice and i % 4 == 1 else None
        future = client.query_invitations(limit=PAGE, cursor=cursor)

        def done(f: concurrent.futures.Future[Any], key: int = len(futures)) -> None:
            with lock:
                counts[key] += 1

        future.add_done_callback(done)
        futures.append(future)
    _, not_done = concurrent.futures.wait(futures, timeout=WAIT)
    assert not not_done
    for i, finished in enumerate(futures):
        page = finished.result()
        assert len(page.invitations) == PAGE
        assert {s.invitation_id for s in page.invitations} <= set(sent.states)
        if i % 4 == 1:  # alice's second page
            assert page.invitations[0].created_ms <= first.invitations[-1].created_ms
            assert not {s.invitation_id for s in page.invitations} & {
                s.invitation_id for s in first.invitations
            }
    time.sleep(0.05)  # a second completion would come now
    with lock:
        assert len(counts) == 300 and set(counts.values()) == {1}
    assert _callbacks.pending_count() == baseline
    _no_binding_errors(caplog)


def test_queries_in_flight_complete_once_when_the_client_closes(
    make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="beckon")
    alice, _ = make_client("alice")
    bob, _ = make_client("bob")
    _invite_and_answer(alice, bob, count=3)
    baseline = _callbacks.pending_count()
    gate = threading.Event()
    blocked = threading.Event()

    def hold(_event: beckon.Event) -> None:
        if not blocked.is_set():
            blocked.set()
            gate.wait(WAIT)  # holds alice's dispatcher: the pages queue behind it

    alice.add_event_handler(hold)
    bob.send_invitation(["alice"], timeout=60).result(WAIT)  # an event for alice
    assert blocked.wait(WAIT)
    futures = [alice.query_invitations() for _ in range(50)]
    closer = threading.Thread(target=alice.close)
    closer.start()
    time.sleep(0.05)
    gate.set()
    closer.join(WAIT)
    assert not closer.is_alive()
    _, not_done = concurrent.futures.wait(futures, timeout=WAIT)
    assert not not_done
    outcomes = Counter(
        "ok" if f.exception() is None else type(f.exception()).__name__ for f in futures
    )
    assert set(outcomes) <= {"ok", "ShutdownError"}, outcomes
    assert sum(outcomes.values()) == 50
    assert _callbacks.pending_count() == baseline
    _no_binding_errors(caplog)


def test_async(make_client: MakeClient) -> None:
    alice, _ = make_client("alice")
    bob, _ = make_client("bob")
    sent = _invite_and_answer(alice, bob)

    async def main() -> list[beckon.InvitationSummary]:
        listed: list[beckon.InvitationSummary] = []
        cursor: str | None = None
        for _ in range(N + 1):
            page = await bob.query_invitations_async(
                role=beckon.HistoryRole.RECEIVED, limit=PAGE, cursor=cursor
            )
            listed += page.invitations
            cursor = page.next_cursor
            if cursor is None:
                break
        # Concurrent queries, each awaited once.
        many = await asyncio.gather(*(alice.query_invitations_async(limit=1) for _ in range(20)))
        assert len({p.invitations[0].invitation_id for p in many}) == 1
        return listed

    listed = asyncio.run(main())
    assert len(listed) == N and {s.invitation_id for s in listed} == set(sent.states)
    _check_newest_first(listed)


def test_poll_mode(make_client: MakeClient) -> None:
    alice, _ = make_client("alice", login=False, dispatch=beckon.DispatchMode.POLL)
    login = alice.login("alice")
    assert alice.poll_until(login, WAIT)
    login.result()
    bob, _ = make_client("bob")
    # Bob answers alice's invitations from his own (threaded) client.
    sent: list[str] = []
    for _ in range(4):
        send = alice.send_invitation(["bob"], timeout=60)
        assert alice.poll_until(send, WAIT)
        sent.append(send.result().invitation_id)
        bob.refuse_invitation(sent[-1]).result(WAIT)
    future = alice.query_invitations(limit=PAGE)
    time.sleep(0.05)
    assert not future.done()  # only poll() runs a poll-mode client's callbacks
    assert alice.poll_until(future, WAIT)
    page = future.result()
    assert len(page.invitations) == PAGE and page.next_cursor is not None
    rest = alice.query_invitations(limit=PAGE, cursor=page.next_cursor)
    assert alice.poll_until(rest, WAIT)
    listed = [*page.invitations, *rest.result().invitations]
    assert rest.result().next_cursor is None
    assert sorted(s.invitation_id for s in listed) == sorted(sent)
    assert all(s.invitees[0].state == beckon.InviteeState.REJECTED for s in listed)
