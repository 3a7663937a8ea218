package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.Collections
import java.util.concurrent.atomic.AtomicInteger

/**
 * Events and future completions reach a client one at a time, in the order
 * the client observed them, on its dispatcher thread.
 */
class EventOrderTest {

    /** One timeline of events and completions, as the dispatcher ran them. */
    private class Timeline {
        val entries: MutableList<String> = Collections.synchronizedList(ArrayList())
        val inside = AtomicInteger()
        val overlaps = AtomicInteger()
        val threads: MutableSet<String> = Collections.synchronizedSet(HashSet())

        /** From the listener: checks it never overlaps itself and never runs on the test thread. */
        fun event(entry: String) {
            if (inside.incrementAndGet() != 1) overlaps.incrementAndGet()
            threads.add(Thread.currentThread().name)
            entries.add(entry)
            inside.decrementAndGet()
        }

        /**
         * From a future continuation: that runs on the dispatcher, or on the
         * caller's thread if the future completed before the continuation
         * was attached (CompletableFuture's rule), so it may only be late.
         */
        fun completion(entry: String) {
            entries.add(entry)
        }

        fun snapshot(): List<String> = synchronized(entries) { ArrayList(entries) }
    }

    private fun describe(e: BeckonEvent): String = when (e) {
        is BeckonEvent.ConnectionStateChanged -> "connection ${e.state}"
        is BeckonEvent.InvitationUserStateChanged -> "state ${e.userId} ${e.state}"
        else -> e.kind.name
    }

    @Test
    fun `login events come before the login completes, cancel state changes before the cancel`() {
        val hub = uniqueHub("order")
        val timeline = Timeline()
        BeckonClient(hub).use { alice ->
            alice.setEventListener { timeline.event(describe(it)) }
            alice.login("alice").thenRun { timeline.completion("login done") }.await()
            assertEquals(listOf("connection CONNECTING", "connection CONNECTED", "login done"), timeline.snapshot())

            TestUser("bob", hub).login().use { bob ->
                val sent = alice.sendInvitation(listOf("bob"), 30).thenApply { timeline.completion("send done"); it }.await()
                bob.recorder.awaitEvent<BeckonEvent.InvitationReceived>()
                waitUntil("bob RECEIVED") { timeline.snapshot().contains("state bob RECEIVED") }
                alice.cancelInvitation(sent.invitationId).thenRun { timeline.completion("cancel done") }.await()
                val t = timeline.snapshot()
                assertTrue(t.indexOf("state bob CANCELLED") in 0 until t.indexOf("cancel done"), "$t")
                assertTrue(t.indexOf("send done") > t.indexOf("login done"), "$t")

                alice.logout().thenRun { timeline.completion("logout done") }.await()
                val end = timeline.snapshot()
                assertTrue(end.indexOf("connection DISCONNECTED") in 0 until end.indexOf("logout done"), "$end")
            }
        }
        assertEquals(0, timeline.overlaps.get(), "callbacks of one client never overlap")
        assertTrue(timeline.threads.none { it == Thread.currentThread().name }, "never on the caller's thread")
        assertTrue(timeline.threads.all { it.startsWith("beckon-dispatcher") }, "${timeline.threads}")
    }

    @Test
    fun `many invitations - each invitee sees its invitations in the order they were sent`() {
        val hub = uniqueHub("seq")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                val ids = (1..40).map { i ->
                    alice.client.sendInvitation(listOf("bob"), 60, "n=$i").await().invitationId
                }
                waitUntil("40 invitations at bob") {
                    bob.recorder.ofType<BeckonEvent.InvitationReceived>().size == 40
                }
                val received = bob.recorder.ofType<BeckonEvent.InvitationReceived>()
                assertEquals(ids, received.map { it.invitationId })
                assertEquals((1..40).map { "n=$it" }, received.map { it.extendedData })
            }
        }
    }
}
