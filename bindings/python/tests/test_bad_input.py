"""Bad input: wrong types and values fail before the C call; C-side errors map to their class.

Every case also checks that nothing was left behind: a call that raises never
leaves an operation waiting for a callback.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import beckon
from beckon import _callbacks
from beckon._errors import error_for
from conftest import WAIT, Recorder

MakeClient = Callable[..., tuple[beckon.Client, Recorder]]
# The client is Any: the table calls it with wrong types on purpose.
Call = Callable[[Any], object]
ID = "0123456789abcdef0123456789abcdef"  # well formed, unknown to the hub


@pytest.fixture
def alice(make_client: MakeClient) -> Iterator[beckon.Client]:
    client, _ = make_client("alice")
    before = _callbacks.pending_count()
    yield client
    # Whatever raised left nothing behind.
    assert _callbacks.pending_count() == before


def _cases(*cases: tuple[str, Call, type[BaseException], str]) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        "call, error, field", [c[1:] for c in cases], ids=[c[0] for c in cases]
    )


# Judged by the binding, before any C call. ``field`` must appear in the message.
@_cases(
    ("login-int", lambda c: c.login(42), beckon.ArgumentTypeError, "user_id"),
    ("login-bytes", lambda c: c.login(b"bob"), beckon.ArgumentTypeError, "user_id"),
    ("login-empty", lambda c: c.login(""), beckon.InvalidArgumentError, "user_id"),
    ("login-space", lambda c: c.login("bo b"), beckon.InvalidArgumentError, "byte 2"),
    ("login-65", lambda c: c.login("u" * 65), beckon.InvalidArgumentError, "65 bytes"),
    ("login-token-int", lambda c: c.login("bob", 7), beckon.ArgumentTypeError, "token"),
    ("login-token-nul", lambda c: c.login("bob", "a\0b"), beckon.InvalidArgumentError, "NUL"),
    (
        "login-token-long",
        lambda c: c.login("bob", "t" * 4097),
        beckon.InvalidArgumentError,
        "token",
    ),
    ("renew-none", lambda c: c.renew_token(None), beckon.ArgumentTypeError, "token"),
    ("renew-empty", lambda c: c.renew_token(""), beckon.InvalidArgumentError, "token"),
    (
        "send-str",
        lambda c: c.send_invitation("bob", timeout=5),
        beckon.ArgumentTypeError,
        "not a single string",
    ),
    ("send-int", lambda c: c.send_invitation(5, timeout=5), beckon.ArgumentTypeError, "invitees"),
    (
        "send-empty",
        lambda c: c.send_invitation([], timeout=5),
        beckon.InvalidArgumentError,
        "empty",
    ),
    (
        "send-none-entry",
        lambda c: c.send_invitation(["bob", None], timeout=5),
        beckon.ArgumentTypeError,
        "invitees[1]",
    ),
    (
        "send-bad-entry",
        lambda c: c.send_invitation(["bob", "x/y"], timeout=5),
        beckon.InvalidArgumentError,
        "invitees[1]",
    ),
    ("send-no-timeout", lambda c: c.send_invitation(["bob"]), TypeError, "timeout"),
    (
        "send-timeout-0",
        lambda c: c.send_invitation(["bob"], timeout=0),
        beckon.InvalidArgumentError,
        "timeout",
    ),
    (
        "send-timeout-601",
        lambda c: c.send_invitation(["bob"], timeout=601),
        beckon.InvalidArgumentError,
        "1..=600",
    ),
    (
        "send-timeout-float",
        lambda c: c.send_invitation(["bob"], timeout=1.5),
        beckon.ArgumentTypeError,
        "timeout",
    ),
    (
        "send-timeout-bool",
        lambda c: c.send_invitation(["bob"], timeout=True),
        beckon.ArgumentTypeError,
        "timeout",
    ),
    (
        "send-data-bytes",
        lambda c: c.send_invitation(["bob"], timeout=5, extended_data=b"x"),
        beckon.ArgumentTypeError,
        "extended_data",
    ),
    (
        "send-data-big",
        lambda c: c.send_invitation(["bob"], timeout=5, extended_data="é" * 4097),
        beckon.PayloadTooLargeError,
        "8194 bytes",
    ),
    (
        "send-data-nul",
        lambda c: c.send_invitation(["bob"], timeout=5, extended_data="a\0"),
        beckon.InvalidArgumentError,
        "extended_data",
    ),
    (
        "send-data-surrogate",
        lambda c: c.send_invitation(["bob"], timeout=5, extended_data="\udc80"),
        beckon.InvalidArgumentError,
        "UTF-8",
    ),
    (
        "send-note-dict",
        lambda c: c.send_invitation(["bob"], timeout=5, notification={"title": "x"}),
        beckon.ArgumentTypeError,
        "notification",
    ),
    (
        "send-note-title",
        lambda c: c.send_invitation(
            ["bob"], timeout=5, notification=beckon.Notification(title="t" * 257)
        ),
        beckon.PayloadTooLargeError,
        "notification.title",
    ),
    (
        "send-note-message",
        lambda c: c.send_invitation(
            ["bob"], timeout=5, notification=beckon.Notification(message="m" * 1025)
        ),
        beckon.PayloadTooLargeError,
        "notification.message",
    ),
    (
        "send-note-resource",
        lambda c: c.send_invitation(
            ["bob"], timeout=5, notification=beckon.Notification(resource_id="r" * 65)
        ),
        beckon.PayloadTooLargeError,
        "notification.resource_id",
    ),
    (
        "send-note-payload",
        lambda c: c.send_invitation(
            ["bob"], timeout=5, notification=beckon.Notification(payload="p" * 4097)
        ),
        beckon.PayloadTooLargeError,
        "notification.payload",
    ),
    (
        "send-note-int-field",
        lambda c: c.send_invitation(["bob"], timeout=5, notification=beckon.Notification(title=1)),  # type: ignore[arg-type]
        beckon.ArgumentTypeError,
        "notification.title",
    ),
    (
        "send-online-only-int",
        lambda c: c.send_invitation(["bob"], timeout=5, online_only=1),
        beckon.ArgumentTypeError,
        "online_only",
    ),
    (
        "cancel-id-none",
        lambda c: c.cancel_invitation(None),
        beckon.ArgumentTypeError,
        "invitation_id",
    ),
    (
        "cancel-id-empty",
        lambda c: c.cancel_invitation(""),
        beckon.InvalidArgumentError,
        "invitation_id",
    ),
    (
        "cancel-invitees-str",
        lambda c: c.cancel_invitation(ID, "bob"),
        beckon.ArgumentTypeError,
        "invitees",
    ),
    (
        "cancel-invitees-empty",
        lambda c: c.cancel_invitation(ID, []),
        beckon.InvalidArgumentError,
        "invitees",
    ),
    (
        "cancel-data-big",
        lambda c: c.cancel_invitation(ID, extended_data="x" * 8193),
        beckon.PayloadTooLargeError,
        "extended_data",
    ),
    ("accept-id-int", lambda c: c.accept_invitation(7), beckon.ArgumentTypeError, "invitation_id"),
    (
        "accept-data-none",
        lambda c: c.accept_invitation(ID, extended_data=None),
        beckon.ArgumentTypeError,
        "extended_data",
    ),
    (
        "refuse-data-big",
        lambda c: c.refuse_invitation(ID, extended_data="x" * 8193),
        beckon.PayloadTooLargeError,
        "extended_data",
    ),
    (
        "send-request-timeout-0",
        lambda c: c.send_invitation(["bob"], timeout=5, request_timeout_ms=0),
        beckon.InvalidArgumentError,
        "request_timeout_ms: 0 is outside 1..=4294967295",
    ),
    (
        "send-request-timeout-2**32",
        lambda c: c.send_invitation(["bob"], timeout=5, request_timeout_ms=2**32),
        beckon.InvalidArgumentError,
        "request_timeout_ms: 4294967296 is outside",
    ),
    (
        "send-request-timeout-float",
        lambda c: c.send_invitation(["bob"], timeout=5, request_timeout_ms=1.5),
        beckon.ArgumentTypeError,
        "request_timeout_ms",
    ),
    (
        "cancel-request-timeout-negative",
        lambda c: c.cancel_invitation(ID, request_timeout_ms=-1),
        beckon.InvalidArgumentError,
        "request_timeout_ms: -1",
    ),
    (
        "cancel-request-timeout-str",
        lambda c: c.cancel_invitation(ID, ["bob"], request_timeout_ms="1000"),
        beckon.ArgumentTypeError,
        "request_timeout_ms",
    ),
    (
        "accept-request-timeout-bool",
        lambda c: c.accept_invitation(ID, request_timeout_ms=True),
        beckon.ArgumentTypeError,
        "request_timeout_ms",
    ),
    (
        "accept-request-timeout-0",
        lambda c: c.accept_invitation(ID, request_timeout_ms=0),
        beckon.InvalidArgumentError,
        "request_timeout_ms",
    ),
    (
        "refuse-request-timeout-2**32",
        lambda c: c.refuse_invitation(ID, extended_data="no", request_timeout_ms=2**32),
        beckon.InvalidArgumentError,
        "request_timeout_ms",
    ),
    (
        "refuse-request-timeout-float",
        lambda c: c.refuse_invitation(ID, request_timeout_ms=10.0),
        beckon.ArgumentTypeError,
        "request_timeout_ms",
    ),
    ("poll-str", lambda c: c.poll("1"), beckon.ArgumentTypeError, "timeout"),
    ("events-bad-kind", lambda c: c.events("ring"), beckon.ArgumentTypeError, "kinds"),
    ("handler-not-callable", lambda c: c.add_event_handler(3), beckon.ArgumentTypeError, "handler"),
)
def test_checked_by_the_binding(
    alice: beckon.Client, call: Call, error: type[BaseException], field: str
) -> None:
    with pytest.raises(error) as caught:
        call(alice)
    assert field in str(caught.value)
    if isinstance(caught.value, beckon.BeckonError):
        assert caught.value.code in (
            beckon.ErrorCode.INVALID_ARGUMENT,
            beckon.ErrorCode.PAYLOAD_TOO_LARGE,
        )


def test_type_errors_are_also_invalid_argument_errors(alice: beckon.Client) -> None:
    with pytest.raises(TypeError):
        alice.login(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        alice.login("")
    with pytest.raises(beckon.InvalidArgumentError) as caught:
        alice.login(None)  # type: ignore[arg-type]
    assert caught.value.code == beckon.ErrorCode.INVALID_ARGUMENT
    assert str(caught.value).startswith("INVALID_ARGUMENT: user_id:")


# Judged by the library and returned at once: the binding maps the code and message.
@_cases(
    (
        "malformed-invitation-id",
        lambda c: c.accept_invitation("not-an-id"),
        beckon.InvalidArgumentError,
        "invitation_id",
    ),
    (
        "cancel-unknown-id",
        lambda c: c.cancel_invitation(ID, ["zed"]).result(WAIT),
        beckon.InvitationNotFoundError,
        ID,
    ),
    (
        "too-many-invitees",
        lambda c: c.send_invitation([f"u{i}" for i in range(33)], timeout=5),
        beckon.TooManyInviteesError,
        "33",
    ),
    (
        "invite-self",
        lambda c: c.send_invitation(["alice"], timeout=5),
        beckon.InvalidArgumentError,
        "invitees",
    ),
    ("login-twice", lambda c: c.login("alice"), beckon.InvalidArgumentError, "already logged in"),
    ("poll-in-thread-mode", lambda c: c.poll(0), beckon.InvalidArgumentError, "poll mode"),
)
def test_checked_by_the_library(
    alice: beckon.Client, call: Call, error: type[beckon.BeckonError], field: str
) -> None:
    with pytest.raises(error) as caught:
        call(alice)
    assert field in caught.value.message
    assert caught.value.code == error._default_code


def test_not_logged_in_is_raised_at_once(make_client: MakeClient) -> None:
    client, _ = make_client("ivan", login=False)
    with pytest.raises(beckon.NotLoggedInError) as caught:
        client.send_invitation(["bob"], timeout=5)
    assert caught.value.code == beckon.ErrorCode.NOT_LOGGED_IN
    with pytest.raises(beckon.NotLoggedInError):
        client.logout()
    with pytest.raises(beckon.NotLoggedInError):
        client.accept_invitation(ID)


@pytest.mark.parametrize(
    "config, error, field",
    [
        ({"server_url": 5}, beckon.ArgumentTypeError, "server_url"),
        ({"server_url": ""}, beckon.InvalidArgumentError, "server_url"),
        ({"server_url": "http://example.invalid"}, beckon.InvalidArgumentError, "memory://"),
        ({"server_url": "memory://bad name"}, beckon.InvalidArgumentError, "memory hub name"),
        ({"device_id": "bad id"}, beckon.InvalidArgumentError, "device_id"),
        ({"device_id": 3}, beckon.ArgumentTypeError, "device_id"),
        ({"dispatch": "poll"}, beckon.ArgumentTypeError, "dispatch"),
        ({"dispatch": 7}, beckon.InvalidArgumentError, "dispatch_mode"),
        ({"request_timeout": -1}, beckon.InvalidArgumentError, "request_timeout"),
        ({"request_timeout": float("nan")}, beckon.InvalidArgumentError, "NaN"),
        ({"request_timeout": "1"}, beckon.ArgumentTypeError, "request_timeout"),
        ({"on_event": "print"}, beckon.ArgumentTypeError, "on_event"),
    ],
)
def test_client_config(
    hub: str, config: dict[str, Any], error: type[Exception], field: str
) -> None:
    kwargs = {"server_url": hub, **config}
    with pytest.raises(error) as caught:
        beckon.Client(**kwargs)
    assert field in str(caught.value)


def test_config_is_keyword_only(hub: str) -> None:
    with pytest.raises(TypeError):
        beckon.Client(hub, "device")  # type: ignore[call-arg]


def test_process_wide_functions(hub: str) -> None:
    name = hub.removeprefix("memory://")
    with pytest.raises(beckon.InvalidArgumentError, match="memory hub name"):
        beckon.memory_hub_create("no spaces")
    with pytest.raises(beckon.ArgumentTypeError):
        beckon.memory_hub_create(name, max_invitees="3")  # type: ignore[arg-type]
    with pytest.raises(beckon.InvalidArgumentError, match="1..=1000"):
        beckon.memory_hub_create(name, max_invitees=1001)
    with pytest.raises(beckon.InvalidArgumentError, match="retention"):
        beckon.memory_hub_create(name, retention=0)
    beckon.memory_hub_create(name)
    # The second creation of one name is refused by the library.
    with pytest.raises(beckon.InvalidArgumentError, match="already exists"):
        beckon.memory_hub_create(name)

    with pytest.raises(beckon.InvalidArgumentError, match="secret"):
        beckon.token_create("", "bob", 10)
    with pytest.raises(beckon.InvalidArgumentError, match="user_id"):
        beckon.token_create("s", "b b", 10)
    with pytest.raises(beckon.InvalidArgumentError, match="naive"):
        beckon.token_create("s", "bob", datetime.datetime(2030, 1, 1))
    with pytest.raises(beckon.InvalidArgumentError, match="expires"):
        beckon.token_create("s", "bob", -1)
    aware = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    assert beckon.token_create("s", "bob", aware) == beckon.token_create(
        "s", "bob", int(aware.timestamp())
    )

    with pytest.raises(beckon.ArgumentTypeError):
        beckon.set_log_handler(print, max_level="info")  # type: ignore[arg-type]
    with pytest.raises(beckon.InvalidArgumentError):
        beckon.set_log_handler(print, max_level=9)  # type: ignore[arg-type]
    with pytest.raises(beckon.ArgumentTypeError):
        beckon.set_log_handler("print")  # type: ignore[arg-type]
    with pytest.raises(beckon.ArgumentTypeError):
        beckon.error_name("1")  # type: ignore[arg-type]


def test_every_error_code_has_its_class() -> None:
    codes = [c for c in beckon.ErrorCode if c != beckon.ErrorCode.OK]
    classes = {beckon.ERROR_CLASSES[c] for c in codes}
    assert len(classes) == len(codes) == 17
    for code in codes:
        error = error_for(int(code), "why")
        assert type(error) is beckon.ERROR_CLASSES[code]
        assert isinstance(error, beckon.BeckonError)
        assert (error.code, error.message, str(error)) == (code, "why", f"{code.name}: why")
        # The names are the library's own.
        assert beckon.error_name(int(code)) == code.name
        assert beckon.error_description(int(code))
    unknown = error_for(99, "from the future")
    assert type(unknown) is beckon.BeckonError
    assert int(unknown.code) == 99 and unknown.code.name == "UNKNOWN_99"
    assert beckon.error_name(99) == "UNKNOWN"
    assert beckon.error_name(18) == "UNKNOWN"  # 17, WOULD_DEADLOCK, is the last (ABI 2.1)
    assert issubclass(beckon.WouldDeadlockError, RuntimeError)
