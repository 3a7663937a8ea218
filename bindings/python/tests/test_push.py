"""Push targets and push results (ABI 2.2).

Bad targets fail at once with the library's codes and messages (naming
``target.<field>``); a plain ``memory://`` hub pushes through no provider, so
a valid target fails in the future. With a library built with the
``test-hooks`` feature, a hub with a scripted push outlet shows set and clear
succeeding and the inviter's :class:`beckon.InvitationPushResult` events.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import time
from collections.abc import Callable
from itertools import count

import pytest

import beckon
from beckon import _native
from conftest import WAIT, Recorder

APNS = "ab" * 32
_numbers = count(1)

MakeClient = Callable[..., tuple[beckon.Client, Recorder]]


def test_constants_and_names() -> None:
    assert int(beckon.EventKind.INVITATION_PUSH_RESULT) == 10
    assert [int(p) for p in beckon.PushProvider] == [1, 2, 3, 4]
    assert [int(e) for e in beckon.ApnsEnvironment] == [0, 1]
    assert [int(o) for o in beckon.PushOutcome] == [1, 2, 3]
    lib = _native.library()
    for provider in beckon.PushProvider:
        assert lib.beckon_push_provider_name(provider).decode() == provider.name
    for outcome in beckon.PushOutcome:
        assert lib.beckon_push_outcome_name(outcome).decode() == outcome.name
    assert beckon.event_kind_name(beckon.EventKind.INVITATION_PUSH_RESULT) == "INVITATION_PUSH_RESULT"


@pytest.mark.parametrize(
    ("target", "error", "message"),
    [
        (beckon.PushTarget(beckon.PushProvider.FCM, ""), beckon.InvalidArgumentError, "target.token: empty"),
        (
            beckon.PushTarget(beckon.PushProvider.FCM, "a b"),
            beckon.InvalidArgumentError,
            "target.token: ' ' is not allowed",
        ),
        (
            beckon.PushTarget(beckon.PushProvider.FCM, "a\0b"),
            beckon.InvalidArgumentError,
            "target.token: contains a NUL character",
        ),
        (
            beckon.PushTarget(beckon.PushProvider.WEBHOOK, "x" * 4097),
            beckon.PayloadTooLargeError,
            "target.token: 4097 bytes",
        ),
        (
            beckon.PushTarget(beckon.PushProvider.APNS, "not-hex"),
            beckon.InvalidArgumentError,
            "target.token: an APNs device token is 16 to 200 hex digits",
        ),
        (
            beckon.PushTarget(beckon.PushProvider.APNS, APNS, topic="not a bundle"),
            beckon.InvalidArgumentError,
            "target.topic",
        ),
        (
            beckon.PushTarget(beckon.PushProvider.FCM, "t", topic="com.example"),
            beckon.InvalidArgumentError,
            "target.topic: only APNS and APNS_VOIP",
        ),
        (
            beckon.PushTarget(beckon.PushProvider.FCM, "t", environment=beckon.ApnsEnvironment.SANDBOX),
            beckon.InvalidArgumentError,
            "target.environment",
        ),
        (
            beckon.PushTarget(beckon.PushProvider.APNS, APNS, alert_token=APNS),
            beckon.InvalidArgumentError,
            "target.alert_token: only APNS_VOIP",
        ),
        (
            beckon.PushTarget(9, "t"),  # type: ignore[arg-type]
            beckon.InvalidArgumentError,
            "target.provider: 9 is not a BECKON_PUSH_PROVIDER_* value",
        ),
        (
            beckon.PushTarget(beckon.PushProvider.FCM, "t", environment=5),  # type: ignore[arg-type]
            beckon.InvalidArgumentError,
            "target.environment: 5",
        ),
        (
            beckon.PushTarget(beckon.PushProvider.FCM, 42),  # type: ignore[arg-type]
            beckon.ArgumentTypeError,
            "target.token",
        ),
        ("fcm-token", beckon.ArgumentTypeError, "target: expected beckon.PushTarget"),
    ],
    ids=[
        "empty-token",
        "space",
        "nul",
        "too-long",
        "apns-not-hex",
        "bad-topic",
        "fcm-topic",
        "fcm-sandbox",
        "apns-alert-token",
        "unknown-provider",
        "unknown-environment",
        "token-type",
        "not-a-target",
    ],
)
def test_bad_targets_fail_at_once(
    make_client: MakeClient, target: object, error: type[Exception], message: str
) -> None:
    client, _ = make_client("alice")
    with pytest.raises(error, match=message.replace("*", r"\*").replace("(", r"\(")):
        client.set_push_target(target)  # type: ignore[arg-type]


def test_not_logged_in(make_client: MakeClient) -> None:
    client, _ = make_client("alice", login=False)
    with pytest.raises(beckon.NotLoggedInError):
        client.set_push_target(beckon.PushTarget(beckon.PushProvider.FCM, "t"))
    with pytest.raises(beckon.NotLoggedInError):
        client.clear_push_target()


def test_a_memory_hub_pushes_through_nothing(make_client: MakeClient) -> None:
    client, _ = make_client("alice")
    for provider, token in [
        (beckon.PushProvider.APNS_VOIP, APNS),
        (beckon.PushProvider.FCM, "fcm-token"),
        (beckon.PushProvider.WEBHOOK, "device-7"),
    ]:
        future = client.set_push_target(beckon.PushTarget(provider, token))
        with pytest.raises(beckon.InvalidArgumentError, match=f"does not push through {provider.name.lower()}"):
            future.result(timeout=WAIT)
    client.clear_push_target().result(timeout=WAIT)


def _hooks() -> _native.Library:
    lib = _native.library()
    if not lib.has_test_hooks():
        if os.environ.get("BECKON_EXPECT_TEST_HOOKS") == "1":
            pytest.fail("BECKON_EXPECT_TEST_HOOKS=1 but the library was built without the test-hooks feature")
        pytest.skip("the library was built without the test-hooks feature (cargo build --features test-hooks)")
    return lib


def _push_hub(lib: _native.Library) -> tuple[str, str]:
    name = f"py-push-{os.getpid()}-{next(_numbers)}"
    assert lib.beckon_test_memory_hub_create_with_push(name.encode()) == 0
    return name, f"memory://{name}"


def _offline(lib: _native.Library, hub: str, user: str, device: str, provider: int, token: str) -> None:
    target = _native.PushTarget(
        struct_size=ctypes.sizeof(_native.PushTarget), provider=provider, token=token.encode()
    )
    code = lib.beckon_test_offline_push_target(hub.encode(), user.encode(), device.encode(), ctypes.byref(target))
    assert code == 0, lib.beckon_last_error_message()


def test_push_results_reach_the_inviter(make_client: MakeClient) -> None:
    lib = _hooks()
    name, url = _push_hub(lib)
    _offline(lib, name, "bob", "bob-phone", beckon.PushProvider.APNS_VOIP, APNS)
    _offline(lib, name, "bob", "bob-tablet", beckon.PushProvider.FCM, "fail-token")
    _offline(lib, name, "dave", "dave-phone", beckon.PushProvider.APNS, "bad" + "0" * 61)
    alice, seen = make_client("alice", url=url, device_id="alice-phone")

    # Alice's own phone: another token (a token rings one device of one user:
    # setting bob's would take it from him).
    target = beckon.PushTarget(
        beckon.PushProvider.APNS_VOIP,
        "ef" * 32,
        topic="com.example.calls",
        environment=beckon.ApnsEnvironment.SANDBOX,
        alert_token="cd" * 32,
    )
    alice.set_push_target(target).result(timeout=WAIT)
    alice.clear_push_target().result(timeout=WAIT)

    sent = alice.send_invitation(["bob", "dave", "erin"], timeout=30).result(timeout=WAIT)
    deadline = time.monotonic() + WAIT
    while len([r for r in seen.of(beckon.InvitationPushResult) if r.invitation_id == sent.invitation_id]) < 4:
        assert time.monotonic() < deadline, seen.events
        time.sleep(0.01)
    results = {
        (r.invitee, r.device_id): r for r in seen.of(beckon.InvitationPushResult)
    }
    assert len(results) == 4
    assert results[("bob", "bob-phone")] == beckon.InvitationPushResult(
        sent.invitation_id, "bob", "bob-phone", beckon.PushProvider.APNS_VOIP, beckon.PushOutcome.SENT, ""
    )
    failed = results[("bob", "bob-tablet")]
    assert (failed.provider, failed.outcome, failed.reason) == (
        beckon.PushProvider.FCM,
        beckon.PushOutcome.FAILED,
        "ServiceUnavailable",
    )
    assert results[("dave", "dave-phone")].reason == "BadDeviceToken"
    erin = results[("erin", None)]
    assert (erin.provider, erin.outcome, erin.reason) == (None, beckon.PushOutcome.NO_TARGET, "")
    assert erin.kind == beckon.EventKind.INVITATION_PUSH_RESULT

    # dave's token was called invalid: forgotten, so the next send finds none.
    again = alice.send_invitation(["dave"], timeout=30).result(timeout=WAIT)
    result = seen.wait_for(beckon.InvitationPushResult, lambda r: r.invitation_id == again.invitation_id)
    assert (result.device_id, result.outcome) == (None, beckon.PushOutcome.NO_TARGET)


def test_set_push_target_async(make_client: MakeClient) -> None:
    lib = _hooks()
    _, url = _push_hub(lib)
    alice, _ = make_client("alice", url=url)

    async def main() -> None:
        await alice.set_push_target_async(beckon.PushTarget(beckon.PushProvider.WEBHOOK, "device-7"))
        await alice.clear_push_target_async()

    asyncio.run(main())
