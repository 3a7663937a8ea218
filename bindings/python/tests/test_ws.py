"""Against ws:// servers the tests run on 127.0.0.1: silent at once, or after the welcome.

Nothing leaves the machine; every socket is closed at the end of its test.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import pytest

import beckon
from conftest import WAIT, Recorder

_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_L = TypeVar("_L", bound="_Listener")


class _Listener:
    """A TCP listener on 127.0.0.1 that accepts connections and hands each to ``serve``."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(8)
        self.socket.settimeout(0.1)
        self.port: int = self.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self.accepted = threading.Event()
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        acceptor = threading.Thread(target=self._accept, daemon=True)
        acceptor.start()
        self._threads.append(acceptor)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.socket.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            self.connections.append(connection)
            self.accepted.set()
            server = threading.Thread(target=self._serve_safely, args=(connection,), daemon=True)
            server.start()
            self._threads.append(server)

    def _serve_safely(self, connection: socket.socket) -> None:
        try:
            connection.settimeout(0.1)
            self.serve(connection)
        except OSError:
            pass  # closed by close()

    def serve(self, connection: socket.socket) -> None:
        """Never answers: holds the connection until the test ends."""
        while not self._stop.wait(0.05):
            pass

    def close(self) -> None:
        self._stop.set()
        for connection in self.connections:
            connection.close()
        self.socket.close()
        for thread in self._threads:
            thread.join(WAIT)


class _SilentAfterWelcome(_Listener):
    """A WebSocket server that welcomes a ``hello`` and then answers nothing more."""

    def __init__(self) -> None:
        self.received: list[str] = []
        super().__init__()

    def _read_exactly(self, connection: socket.socket, count: int) -> bytes:
        data = b""
        while len(data) < count:
            if self._stop.is_set():
                raise OSError("stopped")
            try:
                chunk = connection.recv(count - len(data))
            except (TimeoutError, socket.timeout):
                continue
            if not chunk:
                raise OSError("closed by the client")
            data += chunk
        return data

    def _read_frame(self, connection: socket.socket) -> tuple[int, bytes]:
        first, second = self._read_exactly(connection, 2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exactly(connection, 2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exactly(connection, 8))
        mask = self._read_exactly(connection, 4) if second & 0x80 else b"\0\0\0\0"
        payload = self._read_exactly(connection, length)
        return first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

    @staticmethod
    def _send_text(connection: socket.socket, text: str) -> None:
        payload = text.encode()
        if len(payload) < 126:
            header = struct.pack("!BB", 0x81, len(payload))
        else:
            header = struct.pack("!BBH", 0x81, 126, len(payload))
        connection.sendall(header + payload)

    def serve(self, connection: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += self._read_exactly(connection, 1)
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (
                line.partition(":") for line in request.decode().split("\r\n")[1:] if line
            )
        }
        accept = base64.b64encode(
            hashlib.sha1((headers["sec-websocket-key"] + _WS_GUID).encode()).digest()
        ).decode()
        response = (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept}\r\n"
        )
        if "beckon.v1" in headers.get("sec-websocket-protocol", ""):
            response += "Sec-WebSocket-Protocol: beckon.v1\r\n"
        connection.sendall((response + "\r\n").encode())
        while True:
            opcode, payload = self._read_frame(connection)
            if opcode == 0x8:  # close
                return
            if opcode != 0x1:  # pings and pongs go unanswered too
                continue
            message = json.loads(payload)
            self.received.append(message["type"])
            if message["type"] == "hello":
                welcome = {
                    "type": "welcome",
                    "v": 1,
                    "session": "s" * 32,
                    "resumed": False,
                    "last_request": 0,
                    "limits": {
                        "max_invitees": 32,
                        "max_timeout_secs": 600,
                        "max_extended_data": 8192,
                        "max_title": 256,
                        "max_message": 1024,
                        "max_resource_id": 64,
                        "max_payload": 4096,
                        "max_devices": 8,
                    },
                    "heartbeat_secs": 15,
                    "grace_secs": 30,
                    "max_frame_bytes": 262144,
                }
                self._send_text(connection, json.dumps(welcome))


@contextmanager
def _listening(kind: type[_L]) -> Iterator[_L]:
    listener = kind()
    try:
        yield listener
    finally:
        listener.close()


def test_logout_while_logging_in_cancels_the_login(clients: list[beckon.Client]) -> None:
    with _listening(_Listener) as server:
        events = Recorder("eve")
        client = beckon.Client(server.url, request_timeout=600, on_event=events)
        clients.append(client)
        login = client.login("eve")  # not waited for: the server never answers
        assert server.accepted.wait(WAIT), "the client did not connect"
        events.wait_for(
            beckon.ConnectionStateChanged, lambda e: e.state == beckon.ConnectionState.CONNECTING
        )
        assert not login.done()

        assert client.logout().result(WAIT) is None
        error = login.exception(WAIT)
        assert isinstance(error, beckon.ShutdownError), repr(error)
        assert error.code == beckon.ErrorCode.SHUTDOWN
        last = events.wait_for(
            beckon.ConnectionStateChanged,
            lambda e: e.state == beckon.ConnectionState.DISCONNECTED,
        )
        assert last.reason == beckon.ConnectionReason.LOGOUT
        assert client.info().user_id is None
        client.close()


def test_per_operation_request_timeouts_fire(clients: list[beckon.Client]) -> None:
    with _listening(_SilentAfterWelcome) as server:
        # The client's own timeout is long: only the per-operation one can fire.
        client = beckon.Client(server.url, request_timeout=600)
        clients.append(client)
        client.login("fay").result(WAIT)
        invitation = "0123456789abcdef0123456789abcdef"
        started = time.monotonic()
        operations: dict[str, concurrent.futures.Future[Any]] = {
            "send": client.send_invitation(["gus"], timeout=30, request_timeout_ms=200),
            "accept": client.accept_invitation(invitation, request_timeout_ms=300),
            "refuse": client.refuse_invitation(invitation, request_timeout_ms=300),
            "cancel": client.cancel_invitation(invitation, ["gus"], request_timeout_ms=400),
        }
        within = {"send": 200, "accept": 300, "refuse": 300, "cancel": 400}
        for name, future in operations.items():
            error = future.exception(WAIT)
            assert isinstance(error, beckon.RequestTimeoutError), f"{name}: {error!r}"
            assert error.message == f"no answer from the server within {within[name]} ms"
        assert time.monotonic() - started < WAIT
        assert {"hello", "send", "accept", "refuse", "cancel"} <= set(server.received)
        client.close()


def test_a_silent_server_fails_the_login_after_the_client_request_timeout(
    clients: list[beckon.Client],
) -> None:
    with _listening(_Listener) as server:
        client = beckon.Client(server.url, request_timeout=0.3)
        clients.append(client)
        error = client.login("hal").exception(WAIT)
        assert isinstance(error, beckon.RequestTimeoutError), repr(error)
        assert "300 ms" in error.message
        client.close()


@pytest.mark.parametrize("url", ["ws://127.0.0.1:1", "wss://127.0.0.1:1"])
def test_ws_urls_are_accepted(url: str) -> None:
    beckon.Client(url).close()
