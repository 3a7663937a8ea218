"""The library's log: queued and direct delivery, replacement, errors in the handler."""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import beckon
from beckon import _callbacks
from conftest import WAIT

_hubs = itertools.count(1)


def _hub() -> str:
    return f"memory://py-log-{os.getpid()}-{next(_hubs)}"


def _make_some_log(count: int = 1) -> None:
    """Creating and closing a client logs at INFO/DEBUG."""
    for _ in range(count):
        beckon.Client(_hub(), dispatch=beckon.DispatchMode.POLL).close()


def _thread_name(native_id: int) -> str:
    try:
        return Path(f"/proc/self/task/{native_id}/comm").read_text().strip()
    except OSError:
        return ""


@pytest.fixture(autouse=True)
def _no_handler_left() -> Iterator[None]:
    yield
    beckon.set_log_handler(None)
    assert not _callbacks.has_log_handler()
    assert _callbacks.log_handler_count() == 0


class Sink:
    """A log handler that counts its calls, and those made after it was replaced."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.calls = 0
        self.running = 0
        self.late = 0
        self.retired = False
        self.records: list[tuple[beckon.LogLevel, str, str, str]] = []
        self.threads: set[int] = set()
        self.changed = threading.Condition(self.lock)

    def __call__(self, level: beckon.LogLevel, tag: str, sub_tag: str, message: str) -> None:
        with self.lock:
            self.running += 1
            if self.retired:
                self.late += 1
            self.calls += 1
            self.records.append((level, tag, sub_tag, message))
            self.threads.add(threading.get_native_id())
            self.changed.notify_all()
        with self.lock:
            self.running -= 1

    def wait_for_calls(self, count: int, timeout: float = WAIT) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.calls >= count, timeout)


def test_queued_is_the_default_and_runs_on_the_log_thread() -> None:
    sink = Sink()
    beckon.set_log_handler(sink, beckon.LogLevel.DEBUG)
    _make_some_log(3)
    assert sink.wait_for_calls(3)
    beckon.set_log_handler(None)
    assert threading.get_native_id() not in sink.threads
    assert len(sink.threads) == 1, "queued records come from one library thread"
    name = _thread_name(next(iter(sink.threads)))
    assert name in ("", "beckon-log"), name
    assert {tag for _, tag, _, _ in sink.records} == {"signaling"}


def test_a_queued_handler_may_call_the_binding() -> None:
    done = threading.Event()
    outcomes: list[object] = []
    lock = threading.Lock()

    def handler(level: beckon.LogLevel, tag: str, sub_tag: str, message: str) -> None:
        with lock:
            if len(outcomes) >= 3:  # its own calls log too: stop the feedback loop
                return
            outcomes.append("busy")
            index = len(outcomes) - 1
        try:
            hub = _hub()
            with beckon.Client(hub) as client:
                client.login("logger").result(WAIT)
                info = client.info()
                client.logout().result(WAIT)
            outcomes[index] = (info.user_id, beckon.error_name(17))
        except BaseException as error:  # noqa: BLE001 - the test reads it
            outcomes[index] = error
        if index == 2:
            done.set()

    beckon.set_log_handler(handler, beckon.LogLevel.INFO, beckon.LogDelivery.QUEUED)
    _make_some_log()
    assert done.wait(WAIT), outcomes
    beckon.set_log_handler(None)
    assert outcomes == [("logger", "WOULD_DEADLOCK")] * 3


@pytest.mark.parametrize("delivery", list(beckon.LogDelivery))
def test_exceptions_from_the_handler_are_reported_not_raised(
    caplog: pytest.LogCaptureFixture, delivery: beckon.LogDelivery
) -> None:
    caplog.set_level(logging.ERROR, logger="beckon")
    calls = Sink()

    def broken(level: beckon.LogLevel, tag: str, sub_tag: str, message: str) -> None:
        calls(level, tag, sub_tag, message)
        raise ValueError("log handler bug")

    beckon.set_log_handler(broken, beckon.LogLevel.DEBUG, delivery)
    _make_some_log(2)
    assert calls.wait_for_calls(2), "the handler stopped being called after raising"
    beckon.set_log_handler(None)
    reports = [r for r in caplog.records if r.name == "beckon" and "log handler" in r.getMessage()]
    assert reports and all(r.levelno == logging.ERROR for r in reports)
    assert "log handler bug" in (reports[0].exc_text or "")
    # The library goes on.
    with beckon.Client(_hub()) as client:
        client.login("after").result(WAIT)


@pytest.mark.parametrize("delivery", list(beckon.LogDelivery))
def test_a_replaced_handler_is_never_called_again(delivery: beckon.LogDelivery) -> None:
    stop = threading.Event()
    made = [0]

    def churn() -> None:
        # Logs all the while: clients created and closed, bounded in count and time.
        deadline = time.monotonic() + 4 * WAIT
        while not stop.is_set() and made[0] < 20_000 and time.monotonic() < deadline:
            _make_some_log()
            made[0] += 1

    loggers = [threading.Thread(target=churn, daemon=True) for _ in range(2)]
    for thread in loggers:
        thread.start()
    sinks: list[Sink] = []
    try:
        for round_ in range(30):
            sink = Sink()
            sinks.append(sink)
            beckon.set_log_handler(sink, beckon.LogLevel.DEBUG, delivery)
            sink.wait_for_calls(1, timeout=0.05)
            # Replaced by the next one, or removed, every other round.
            if round_ % 2:
                beckon.set_log_handler(None)
            else:
                beckon.set_log_handler(Sink(), beckon.LogLevel.DEBUG, delivery)
            with sink.lock:
                sink.retired = True
                assert sink.running == 0, f"round {round_}: still running after replacement"
            assert _callbacks.log_handler_count() <= 1  # the replaced one is released
            time.sleep(0.002)
            with sink.lock:
                assert sink.late == 0, f"round {round_}: called after replacement"
    finally:
        stop.set()
        for thread in loggers:
            thread.join(WAIT)
    assert not any(thread.is_alive() for thread in loggers)
    called = sum(1 for s in sinks if s.calls)
    assert called >= len(sinks) // 2, f"{called} of {len(sinks)} handlers were called"
    time.sleep(0.02)
    assert all(s.late == 0 for s in sinks)


def test_a_handler_replaces_itself_while_another_thread_replaces_it() -> None:
    """The replacing thread's C call waits for the handler, which asks for a replacement too.

    The handler's request is handed to the replacing thread (a wait there
    would deadlock) and made right after its own: the handler it names ends
    up installed.
    """
    inside = threading.Event()
    requested = threading.Event()
    third = Sink()
    second = Sink()
    fired = [False]
    held: list[bool] = []

    def first(level: beckon.LogLevel, tag: str, sub_tag: str, message: str) -> None:
        if fired[0]:
            return
        fired[0] = True
        inside.set()
        # Wait (bounded) until the other thread holds the replacement.
        deadline = time.monotonic() + WAIT
        while not _callbacks._log_replacing.locked() and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.02)  # let it reach the C call that waits for this one
        held.append(_callbacks._log_replacing.locked())
        beckon.set_log_handler(third, beckon.LogLevel.DEBUG)  # must not block
        requested.set()

    beckon.set_log_handler(first, beckon.LogLevel.DEBUG)
    _make_some_log()
    assert inside.wait(WAIT)
    replacer = threading.Thread(
        target=beckon.set_log_handler, args=(second, beckon.LogLevel.DEBUG), daemon=True
    )
    replacer.start()
    assert requested.wait(WAIT), "set_log_handler blocked inside the handler"
    assert held == [True], "the replacing thread did not hold the replacement"
    replacer.join(WAIT)
    assert not replacer.is_alive(), "the replacement hung"
    _make_some_log(2)
    assert third.wait_for_calls(1), "the handler's own request was lost"
    assert _callbacks.log_handler_count() == 1


def test_a_handler_replaces_itself() -> None:
    second = Sink()
    first_calls = Sink()
    replaced = threading.Event()

    def first(level: beckon.LogLevel, tag: str, sub_tag: str, message: str) -> None:
        first_calls(level, tag, sub_tag, message)
        if first_calls.calls == 1:
            beckon.set_log_handler(second, beckon.LogLevel.DEBUG)
            replaced.set()

    beckon.set_log_handler(first, beckon.LogLevel.DEBUG)
    _make_some_log()
    assert first_calls.wait_for_calls(1)
    # Records logged before the replacement returned are queued for `first`
    # and dropped with it: log the next ones after it.
    assert replaced.wait(WAIT), "the handler's replacement of itself did not return"
    _make_some_log(2)
    assert second.wait_for_calls(1)
    assert first_calls.calls == 1  # the records queued behind were dropped or went to second
    assert _callbacks.log_handler_count() == 1


@pytest.mark.parametrize(
    "delivery, error",
    [
        ("later", beckon.InvalidArgumentError),
        (2, beckon.InvalidArgumentError),
        (True, beckon.ArgumentTypeError),
        (1.0, beckon.ArgumentTypeError),
    ],
)
def test_bad_delivery(delivery: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="delivery"):
        beckon.set_log_handler(print, beckon.LogLevel.INFO, delivery)  # type: ignore[arg-type]
    assert not _callbacks.has_log_handler()


def test_delivery_by_name_and_value() -> None:
    for delivery in ("direct", "QUEUED", 0, beckon.LogDelivery.QUEUED):
        sink = Sink()
        beckon.set_log_handler(sink, beckon.LogLevel.DEBUG, delivery)  # type: ignore[arg-type]
        _make_some_log()
        assert sink.wait_for_calls(1), delivery
    beckon.set_log_handler(print, beckon.LogLevel.OFF)  # OFF: stops logging
    assert not _callbacks.has_log_handler()
