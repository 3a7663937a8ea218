package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.time.Duration
import java.util.Collections
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit

/** Poll mode: nothing runs until the application polls, and then on its thread. */
class PollModeTest {

    private fun pollClient(hub: String) = BeckonClient(ClientConfig(hub).withDispatchMode(DispatchMode.POLL))

    /** Polls until [done], at most [WAIT_SECONDS]. */
    private fun pollUntil(client: BeckonClient, what: String, done: () -> Boolean) {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS)
        while (!done()) {
            if (System.nanoTime() > deadline) throw AssertionError("timed out polling for $what")
            client.poll(50)
        }
    }

    @Test
    fun `callbacks run inside poll on the polling thread, in order`() {
        val hub = uniqueHub("poll")
        pollClient(hub).use { alice ->
            val seen = Collections.synchronizedList(ArrayList<String>())
            val threads = Collections.synchronizedSet(HashSet<Thread>())
            alice.setEventListener { e ->
                threads.add(Thread.currentThread())
                seen.add(if (e is BeckonEvent.ConnectionStateChanged) "${e.state}" else e.kind.name)
            }
            assertEquals(0, alice.poll(0), "nothing queued yet")
            val login = alice.login("alice").thenRun {
                threads.add(Thread.currentThread())
                seen.add("login done")
            }
            assertFalse(login.isDone, "a poll-mode client completes nothing without a poll")
            pollUntil(alice, "login") { login.isDone }
            assertEquals(listOf("CONNECTING", "CONNECTED", "login done"), seen.toList())
            assertEquals(setOf(Thread.currentThread()), threads.toSet())

            TestUser("bob", hub).login().use { bob ->
                val send = alice.sendInvitation(listOf("bob"), 30, "poll me")
                pollUntil(alice, "send result") { send.isDone }
                val id = send.await().invitationId
                bob.recorder.awaitEvent<BeckonEvent.InvitationReceived> { it.invitationId == id }
                bob.client.acceptInvitation(id).await()
                pollUntil(alice, "accepted") { seen.contains("INVITATION_ACCEPTED") }
                assertEquals(setOf(Thread.currentThread()), threads.toSet())
            }
            // The Duration overload.
            assertTrue(alice.poll(Duration.ofMillis(1)) >= 0)
        }
    }

    @Test
    fun `poll rejects thread-mode clients, bad timeouts and calls from its own callbacks`() {
        val hub = uniqueHub("poll-bad")
        BeckonClient(hub).use { threadMode ->
            assertThrows(InvalidArgumentException::class.java) { threadMode.poll(0) }
        }
        pollClient(hub).use { c ->
            assertThrows(InvalidArgumentException::class.java) { c.poll(-1) }
            assertThrows(InvalidArgumentException::class.java) { c.poll(3_600_001) }
            val inner = CompletableFuture<Throwable?>()
            val login = c.login("alice").whenComplete { _, _ ->
                inner.complete(runCatching { c.poll(0) }.exceptionOrNull())
            }
            pollUntil(c, "login") { login.isDone }
            val e = inner.await()
            assertTrue(e is InvalidArgumentException, "poll inside a callback: $e")
        }
    }

    @Test
    fun `close from inside a poll callback, then poll is refused`() {
        val hub = uniqueHub("poll-close")
        val c = pollClient(hub)
        val pending = CompletableFuture<CompletableFuture<SendResult>>()
        val closedInside = CompletableFuture<Boolean>()
        val login = c.login("alice").thenRun {
            // An operation whose result is queued, then close from this callback.
            pending.complete(c.sendInvitation(listOf("ghost"), 30))
            c.close()
            closedInside.complete(c.isClosed)
        }
        pollUntil(c, "login") { login.isDone }
        assertTrue(closedInside.await())
        pending.await().awaitFailure<ShutdownException>()
        assertThrows(ShutdownException::class.java) { c.poll(0) }
        assertEquals(0L, Beckon.diagnostics().unmatchedCallbacks)
    }

    @Test
    fun `close on another thread ends a long poll early`() {
        val c = pollClient(uniqueHub("poll-long"))
        val polling = java.util.concurrent.CountDownLatch(1)
        val result = CompletableFuture<String>()
        val poller = Thread {
            polling.countDown()
            result.complete(
                try {
                    "ran ${c.poll(60_000)}"
                } catch (e: ShutdownException) {
                    "closed before the poll"
                }
            )
        }
        poller.start()
        assertTrue(polling.await(WAIT_SECONDS, TimeUnit.SECONDS))
        c.close()
        // Well before the poll's 60 s: the wait is bounded by WAIT_SECONDS.
        val outcome = result.await()
        assertTrue(outcome == "ran 0" || outcome == "closed before the poll", outcome)
        poller.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS))
        assertFalse(poller.isAlive)
    }
}
