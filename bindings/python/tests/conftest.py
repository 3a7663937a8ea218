"""Shared fixtures: unique memory hubs, clients closed after each test, event recorders.

The tests run against the real libbeckon named by ``$BECKON_LIBRARY`` (test.sh
sets it). Every wait has a timeout; nothing leaves the process.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

import beckon

WAIT = 10.0  # seconds: generous upper bound for anything the memory hub does

_E = TypeVar("_E", bound=beckon.Event)
_hub_numbers = itertools.count(1)


class Recorder:
    """A thread-safe list of events, fed by an event handler, that a test can wait on."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.events: list[beckon.Event] = []
        self.threads: set[int] = set()
        self._changed = threading.Condition()

    def __call__(self, event: beckon.Event) -> None:
        with self._changed:
            self.events.append(event)
            self.threads.add(threading.get_ident())
            self._changed.notify_all()

    def clear(self) -> None:
        """Forgets the events recorded so far."""
        with self._changed:
            self.events.clear()

    def of(self, cls: type[_E]) -> list[_E]:
        with self._changed:
            return [e for e in self.events if isinstance(e, cls)]

    def wait_for(
        self,
        cls: type[_E],
        where: Callable[[_E], bool] = lambda _e: True,
        timeout: float = WAIT,
    ) -> _E:
        """The first recorded event of ``cls`` matching ``where``; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for event in self.events:
                    if isinstance(event, cls) and where(event):
                        return event
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(
                        f"{self.name}: no {cls.__name__} matching within {timeout} s; "
                        f"got {self.events!r}"
                    )
                self._changed.wait(left)


@pytest.fixture
def hub(request: pytest.FixtureRequest) -> str:
    """A memory:// URL no other test uses."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:40]
    return f"memory://py-{os.getpid()}-{next(_hub_numbers)}-{safe}"


@pytest.fixture
def clients() -> Iterator[list[beckon.Client]]:
    """Clients put in this list are closed after the test."""
    made: list[beckon.Client] = []
    yield made
    for client in made:
        client.close()


@pytest.fixture
def make_client(
    hub: str, clients: list[beckon.Client]
) -> Callable[..., tuple[beckon.Client, Recorder]]:
    """``make_client(user, **config)``: a client on the test's hub, logged in as ``user``.

    Returns the client and the recorder of its events. ``login=False`` skips
    the login.
    """

    def make(
        user: str, *, login: bool = True, url: str | None = None, **config: object
    ) -> tuple[beckon.Client, Recorder]:
        recorder = Recorder(user)
        client = beckon.Client(url or hub, on_event=recorder, **config)  # type: ignore[arg-type]
        clients.append(client)
        if login:
            client.login(user).result(timeout=WAIT)
        return client, recorder

    return make
