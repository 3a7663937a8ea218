"""The Beckon demo flow from Python, on the in-process memory:// hub.

alice invites bob; bob's device rings; bob accepts; alice hears it, then
finds the ended invitation in her history. Both clients run in one asyncio
program: operations are awaited, and each client's events are read with
``async for``. Run it with libbeckon reachable (an
installed wheel bundles it; otherwise set BECKON_LIBRARY to its full path):

    BECKON_LIBRARY=target/debug/libbeckon.so python bindings/python/examples/demo.py
"""

from __future__ import annotations

import asyncio
import sys

import beckon

HUB = "memory://demo"
STEP_TIMEOUT = 10.0  # seconds: the demo fails instead of hanging


def say(who: str, text: str) -> None:
    print(f"[{who:<5}] {text}", flush=True)


async def bob_answers(bob: beckon.Client, ringing: beckon.EventStream) -> None:
    """bob's device: rings on the invitation, then accepts it."""
    async for event in ringing:
        assert isinstance(event, beckon.InvitationReceived)
        say(
            "bob",
            f"ringing: {event.inviter} invites {[s.user_id for s in event.invitees]}, "
            f"{event.seconds_left} s left, data {event.extended_data!r}",
        )
        if event.notification is not None:
            say(
                "bob",
                f"    notification: {event.notification.title!r} / {event.notification.message!r}",
            )
        await bob.accept_invitation_async(event.invitation_id, extended_data="see you")
        say("bob", "accepted")
        return


async def alice_hears(
    alice_events: beckon.EventStream, invitation_id: str
) -> beckon.InvitationAccepted:
    """alice's device: prints what happens to her invitation until bob's answer."""
    async for event in alice_events:
        if isinstance(event, beckon.InvitationUserStateChanged):
            say("alice", f"{event.user_id} is now {event.state.name}")
        elif isinstance(event, beckon.InvitationAccepted) and event.invitation_id == invitation_id:
            say("alice", f"{event.invitee} accepted, data {event.extended_data!r}")
            return event
    raise RuntimeError("alice's client closed before bob answered")


async def main() -> int:
    abi = beckon.abi_version()
    print(
        f"beckon {beckon.version()} (ABI {abi >> 16}.{abi & 0xFFFF}) on {HUB}, "
        f"library {beckon.library_path()}\n"
    )
    async with beckon.Client(HUB) as alice, beckon.Client(HUB) as bob:
        # Subscribe before logging in, so that no event is missed.
        alice_events = alice.events(beckon.InvitationUserStateChanged, beckon.InvitationAccepted)
        bob_rings = bob.events(beckon.InvitationReceived)

        await asyncio.wait_for(alice.login_async("alice"), STEP_TIMEOUT)
        await asyncio.wait_for(bob.login_async("bob"), STEP_TIMEOUT)
        say("alice", "logged in")
        say("bob", "logged in")
        answering = asyncio.create_task(bob_answers(bob, bob_rings))

        sent = await asyncio.wait_for(
            alice.send_invitation_async(
                ["bob"],
                timeout=30,
                extended_data='{"call":"video"}',
                notification=beckon.Notification(title="Incoming call", message="alice is calling"),
            ),
            STEP_TIMEOUT,
        )
        say("alice", f"sent invitation {sent.invitation_id}")

        accepted = await asyncio.wait_for(
            alice_hears(alice_events, sent.invitation_id), STEP_TIMEOUT
        )
        await asyncio.wait_for(answering, STEP_TIMEOUT)
        assert accepted.invitee == "bob"

        # The ended invitation is in both users' history (ABI 2.3), newest first.
        history = await asyncio.wait_for(
            alice.query_invitations_async(role=beckon.HistoryRole.SENT, limit=10), STEP_TIMEOUT
        )
        for summary in history.invitations:
            answers = ", ".join(f"{s.user_id} {s.state.name}" for s in summary.invitees)
            say("alice", f"history: {summary.invitation_id} to {answers}")
        assert [s.invitation_id for s in history.invitations] == [sent.invitation_id]
    print("\n--- done ---")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except (beckon.BeckonError, beckon.LibraryLoadError, TimeoutError) as error:
        print(f"demo failed: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
