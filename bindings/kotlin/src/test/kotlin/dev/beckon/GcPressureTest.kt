package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.CompletableFuture

/**
 * A JNA callback collected while the library still holds it crashes the JVM.
 * These tests run thousands of operations while forcing collections: the
 * process must survive and every result must be right.
 */
class GcPressureTest {

    private var sink: Any? = null

    private fun churn() {
        // Garbage, so the collector has work, then a full collection.
        sink = List(2_000) { ByteArray(64) }
        sink = null
        System.gc()
    }

    @Test
    fun `thousands of operations with forced collections`() {
        val hub = uniqueHub("gc")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                val sends = ArrayList<CompletableFuture<SendResult>>()
                val misses = ArrayList<CompletableFuture<Void?>>()
                for (i in 0 until 2_000) {
                    // No reference to anything JNA-related is kept here: only the futures.
                    sends.add(alice.client.sendInvitation(listOf("bob", "ghost"), 60, "gc $i"))
                    misses.add(bob.client.refuseInvitation("0000000000000000000000000000000$i".takeLast(32)))
                    if (i % 100 == 0) churn()
                }
                churn()
                val ids = sends.map { it.await() }.onEach {
                    assertEquals(listOf(InviteeStatus("ghost", InviteeState.OFFLINE)), it.errorInvitees)
                }.map { it.invitationId }
                assertEquals(2_000, ids.toSet().size, "every invitation has its own id")
                for (miss in misses) miss.awaitFailure<InvitationNotFoundException>()
                waitUntil("2000 rings at bob") {
                    bob.recorder.ofType<BeckonEvent.InvitationReceived>().size == 2_000
                }
                churn()
            }
        }
        val d = Beckon.diagnostics()
        assertEquals(0L, d.unmatchedCallbacks, "$d")
        assertEquals(0, d.pendingOperations, "$d")
    }

    @Test
    fun `clients created and dropped under collections do not leak dispatcher threads`() {
        fun dispatcherThreads() = Thread.getAllStackTraces().keys.count { it.name.startsWith("beckon-dispatcher") && it.isAlive }
        val hub = uniqueHub("gc-clients")
        repeat(30) { i ->
            BeckonClient(hub).use { c ->
                // A fresh listener object each time, reachable only through the client.
                c.setEventListener { _ -> }
                c.login("user$i").await()
                c.sendInvitation(listOf("nobody"), 30).await()
            }
            if (i % 5 == 0) churn()
        }
        churn()
        assertEquals(0, Beckon.diagnostics().openClients)
        // The library's dispatcher threads end with their clients; JNA detaches them.
        waitUntil("dispatcher threads to end (now ${dispatcherThreads()})") { dispatcherThreads() <= 2 }
        assertTrue(dispatcherThreads() <= 2)
    }
}
