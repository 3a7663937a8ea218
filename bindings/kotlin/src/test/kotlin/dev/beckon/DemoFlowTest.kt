package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** The whole invitation flow on a memory:// hub, as the C demo runs it. */
class DemoFlowTest {

    @Test
    fun `alice invites, bob accepts, carol refuses, dave times out`() {
        val hub = uniqueHub("demo")
        TestUser("alice", hub).use { alice ->
            TestUser("bob", hub).use { bob ->
                TestUser("carol", hub).use { carol ->
                    alice.login()
                    bob.login()
                    carol.login()
                    // Bob's device rings and accepts from inside the listener
                    // (the API may be called again from a callback).
                    val bobAnswered = java.util.concurrent.CompletableFuture<Void?>()
                    bob.client.setEventListener { event ->
                        bob.recorder.onEvent(event)
                        if (event is BeckonEvent.InvitationReceived) {
                            bob.client.acceptInvitation(event.invitationId, "see you").whenComplete { _, e ->
                                if (e == null) bobAnswered.complete(null) else bobAnswered.completeExceptionally(e)
                            }
                        }
                    }

                    val sent = alice.client.sendInvitation(
                        listOf("bob", "carol", "dave"), 2, "{\"call\":\"video\"}",
                        Notification("Incoming call", "alice is calling")
                    ).await()
                    assertTrue(sent.invitationId.length >= 16, "invitation id: ${sent.invitationId}")
                    assertEquals(listOf(InviteeStatus("dave", InviteeState.OFFLINE)), sent.errorInvitees)

                    val ring = bob.recorder.awaitEvent<BeckonEvent.InvitationReceived>()
                    assertEquals(sent.invitationId, ring.invitationId)
                    assertEquals("alice", ring.inviter)
                    assertEquals("{\"call\":\"video\"}", ring.extendedData)
                    assertEquals(Notification("Incoming call", "alice is calling"), ring.notification)
                    assertEquals(listOf("bob", "carol", "dave"), ring.invitees.map { it.userId })
                    assertTrue(ring.secondsLeft in 1..2, "seconds left: ${ring.secondsLeft}")
                    bobAnswered.await()

                    val carolRing = carol.recorder.awaitEvent<BeckonEvent.InvitationReceived>()
                    carol.client.refuseInvitation(carolRing.invitationId, "busy").await()

                    val accepted = alice.recorder.awaitEvent<BeckonEvent.InvitationAccepted>()
                    assertEquals(BeckonEvent.InvitationAccepted(sent.invitationId, "bob", "see you"), accepted)
                    val refused = alice.recorder.awaitEvent<BeckonEvent.InvitationRefused>()
                    assertEquals(BeckonEvent.InvitationRefused(sent.invitationId, "carol", "busy"), refused)

                    // Dave never logged in: at the deadline alice hears he timed out.
                    val timeout = alice.recorder.awaitEvent<BeckonEvent.InvitationResponseTimeout>()
                    assertEquals(sent.invitationId, timeout.invitationId)
                    assertEquals(listOf("dave"), timeout.invitees.map { it.userId })

                    alice.recorder.awaitEvent<BeckonEvent.InvitationUserStateChanged> {
                        it.userId == "dave" && it.state == InviteeState.TIMEOUT
                    }
                    val states = alice.recorder.ofType<BeckonEvent.InvitationUserStateChanged>()
                        .filter { it.invitationId == sent.invitationId }
                        .map { it.userId to it.state }
                    assertTrue(states.contains("bob" to InviteeState.RECEIVED), "$states")
                    assertTrue(states.contains("bob" to InviteeState.ACCEPTED), "$states")
                    assertTrue(states.contains("carol" to InviteeState.REJECTED), "$states")
                    // Each answer is reported once.
                    assertEquals(1, states.count { it == "bob" to InviteeState.ACCEPTED })
                    assertEquals(1, bob.recorder.ofType<BeckonEvent.InvitationReceived>().size)
                }
            }
        }
        assertEquals(0L, Beckon.diagnostics().unmatchedCallbacks)
    }

    @Test
    fun `alice cancels, invitees stop ringing, a second cancel reports them cancelled`() {
        val hub = uniqueHub("cancel")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                TestUser("carol", hub).login().use { carol ->
                    val sent = alice.client.sendInvitation(listOf("bob", "carol"), 30, "hello").await()
                    assertTrue(sent.errorInvitees.isEmpty(), "${sent.errorInvitees}")
                    bob.recorder.awaitEvent<BeckonEvent.InvitationReceived> { it.invitationId == sent.invitationId }
                    carol.recorder.awaitEvent<BeckonEvent.InvitationReceived> { it.invitationId == sent.invitationId }

                    val cancel = alice.client.cancelInvitation(sent.invitationId, listOf("bob"), "never mind").await()
                    assertTrue(cancel.errorInvitees.isEmpty(), "${cancel.errorInvitees}")
                    val stop = bob.recorder.awaitEvent<BeckonEvent.InvitationCancelled>()
                    assertEquals(BeckonEvent.InvitationCancelled(sent.invitationId, "alice", "never mind"), stop)

                    // Cancelling everyone now: bob is already terminal.
                    val again = alice.client.cancelInvitation(sent.invitationId).await()
                    assertEquals(listOf(InviteeStatus("bob", InviteeState.CANCELLED)), again.errorInvitees)
                    carol.recorder.awaitEvent<BeckonEvent.InvitationCancelled> { it.invitationId == sent.invitationId }

                    // Late answers get precise errors.
                    bob.client.acceptInvitation(sent.invitationId).awaitFailure<InvitationClosedException>()
                    assertFalse(carol.recorder.ofType<BeckonEvent.InvitationReceived>().size > 1)
                }
            }
        }
    }

    @Test
    fun `an invitee that logs in later still rings, and online-only closes at once`() {
        val hub = uniqueHub("late")
        TestUser("alice", hub).login().use { alice ->
            val pending = alice.client.sendInvitation(listOf("erin"), 30).await()
            assertEquals(listOf(InviteeStatus("erin", InviteeState.OFFLINE)), pending.errorInvitees)
            val onlineOnly = alice.client.sendInvitation(listOf("frank"), 30, onlineOnly = true).await()
            assertEquals(listOf("frank"), onlineOnly.errorInvitees.map { it.userId })

            TestUser("erin", hub).login().use { erin ->
                val ring = erin.recorder.awaitEvent<BeckonEvent.InvitationReceived>()
                assertEquals(pending.invitationId, ring.invitationId)
                alice.recorder.awaitEvent<BeckonEvent.InvitationUserStateChanged> {
                    it.invitationId == pending.invitationId && it.userId == "erin" && it.state == InviteeState.RECEIVED
                }
            }
            TestUser("frank", hub).login().use { frank ->
                // A fresh invitation reaches frank, proving he is online; the
                // online-only one never did.
                val probe = alice.client.sendInvitation(listOf("frank"), 30).await()
                val ring = frank.recorder.awaitEvent<BeckonEvent.InvitationReceived>()
                assertEquals(probe.invitationId, ring.invitationId)
                assertTrue(frank.recorder.ofType<BeckonEvent.InvitationReceived>().none {
                    it.invitationId == onlineOnly.invitationId
                })
            }
        }
    }
}
