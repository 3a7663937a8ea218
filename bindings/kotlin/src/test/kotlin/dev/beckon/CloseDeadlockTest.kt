package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CountDownLatch
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean

/**
 * ABI 2.1: `beckon_client_free` returns WOULD_DEADLOCK instead of hanging when
 * two clients free each other from their callbacks at the same time. The
 * binding throws [WouldDeadlockException] from [BeckonClient.close] and leaves
 * that client open.
 */
class CloseDeadlockTest {

    /** How each client's listener ended: "closed" or the exception's class name. */
    private class Round(mode: DispatchMode, label: String) : AutoCloseable {
        val hub = uniqueHub(label)
        val carol = TestUser("carol", hub).login()
        val a = BeckonClient(ClientConfig(hub, dispatchMode = mode))
        val b = BeckonClient(ClientConfig(hub, dispatchMode = mode))
        val outcome = ConcurrentHashMap<String, String>()
        val done = CountDownLatch(2)
        private val barrier = CyclicBarrier(2)

        init {
            closeFromListener("a", a, b)
            closeFromListener("b", b, a)
            a.login("user-a").await()
            b.login("user-b").await()
        }

        /** On its first invitation, [self]'s listener waits for the other's, then closes [other]. */
        private fun closeFromListener(name: String, self: BeckonClient, other: BeckonClient) {
            val fired = AtomicBoolean()
            self.setEventListener { event ->
                if (event is BeckonEvent.InvitationReceived && fired.compareAndSet(false, true)) {
                    try {
                        // Both callbacks are running before either closes.
                        barrier.await(WAIT_SECONDS, TimeUnit.SECONDS)
                        other.close()
                        outcome[name] = "closed"
                    } catch (t: Throwable) {
                        outcome[name] = t.javaClass.simpleName
                    } finally {
                        done.countDown()
                    }
                }
            }
        }

        fun run() {
            carol.client.sendInvitation(listOf("user-a", "user-b"), 30).await()
            assertTrue(done.await(2 * WAIT_SECONDS, TimeUnit.SECONDS), "a listener hangs in close(): $outcome")
        }

        override fun close() {
            a.close()
            b.close()
            carol.close()
        }
    }

    private fun mutualClose(mode: DispatchMode) {
        repeat(3) { i ->
            Round(mode, "mutual-$mode-$i").use { round ->
                round.run()
                val outcomes = round.outcome.values.sorted()
                assertEquals(listOf("WouldDeadlockException", "closed"), outcomes, "round $i: ${round.outcome}")
                // "a" closed b, or b's attempt to close a would have deadlocked: either
                // way the one whose close() threw is still open and usable.
                val (survivor, closed) = if (round.outcome["a"] == "closed") round.a to round.b else round.b to round.a
                assertTrue(closed.isClosed)
                closed.logout().awaitFailure<ShutdownException>()
                assertFalse(survivor.isClosed)
                assertEquals(ConnectionState.CONNECTED, survivor.connectionState)
                survivor.logout().await()
                survivor.close() // outside the callbacks: succeeds
                assertTrue(survivor.isClosed)
            }
        }
        val d = Beckon.diagnostics()
        assertEquals(0L, d.unmatchedCallbacks)
        assertEquals(0L, d.orphanedOperations)
    }

    @Test
    fun `two clients closing each other from their callbacks - exactly one gets WouldDeadlockException`() =
        mutualClose(DispatchMode.THREAD)

    @Test
    fun `the same in pool mode`() = mutualClose(DispatchMode.POOL)

    @Test
    fun `a WouldDeadlockException is the C code 17 with the library's message`() {
        val e = BeckonException.of(17, "")
        assertTrue(e is WouldDeadlockException)
        assertEquals(ErrorCode.WOULD_DEADLOCK, e.code)
        assertEquals(17, e.rawCode)
        assertEquals("WOULD_DEADLOCK", Beckon.errorName(17))
        assertEquals(Beckon.errorDescription(17), e.message)
    }
}
