package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.CompletableFuture

/** Callbacks may call the client again, including closing it. */
class ReentrancyTest {

    @Test
    fun `close from inside the event listener - no deadlock, pending work completes`() {
        val hub = uniqueHub("reenter")
        TestUser("alice", hub).login().use { alice ->
            val bob = BeckonClient(hub)
            val inFlight = CompletableFuture<CompletableFuture<SendResult>>()
            val closeReturned = CompletableFuture<Boolean>()
            bob.setEventListener { event ->
                if (event is BeckonEvent.InvitationReceived) {
                    inFlight.complete(bob.sendInvitation(listOf("ghost"), 30))
                    bob.close()
                    closeReturned.complete(bob.isClosed)
                }
            }
            bob.login("bob").await()
            alice.client.sendInvitation(listOf("bob"), 30).await()
            assertTrue(closeReturned.await())
            // Queued behind the running callback when close() ran: SHUTDOWN.
            inFlight.await().awaitFailure<ShutdownException>()
            bob.close() // again, from outside: returns at once
            // Bob's last device is gone: alice's pending invitation is not his to answer any more.
            assertEquals(0, Beckon.diagnostics().pendingOperations)
        }
    }

    @Test
    fun `close from inside a future continuation`() {
        val client = BeckonClient(uniqueHub("reenter-future"))
        val closed = client.login("alice").thenApply {
            client.close()
            client.isClosed
        }
        assertTrue(closed.await())
        client.logout().awaitFailure<ShutdownException>()
    }

    @Test
    fun `a listener that throws does not stop later events`() {
        val hub = uniqueHub("throws")
        TestUser("alice", hub).login().use { alice ->
            val bob = BeckonClient(hub)
            val recorder = EventRecorder()
            val thrown = java.util.concurrent.atomic.AtomicInteger()
            bob.setEventListener { e ->
                recorder.onEvent(e)
                if (e is BeckonEvent.ConnectionStateChanged) {
                    thrown.incrementAndGet()
                    throw IllegalStateException("listener bug (expected in this test)")
                }
            }
            val previous = Thread.getDefaultUncaughtExceptionHandler()
            val reported = java.util.concurrent.atomic.AtomicInteger()
            Thread.setDefaultUncaughtExceptionHandler { _, _ -> reported.incrementAndGet() }
            try {
                bob.login("bob").await()
                alice.client.sendInvitation(listOf("bob"), 30).await()
                recorder.awaitEvent<BeckonEvent.InvitationReceived>()
                assertEquals(2, thrown.get())
                assertEquals(2, reported.get())
            } finally {
                bob.close()
                Thread.setDefaultUncaughtExceptionHandler(previous)
            }
        }
    }
}
