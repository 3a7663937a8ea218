package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotSame
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.io.File
import java.util.Collections
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger

/**
 * Pool mode: the callbacks of many clients on a few library threads shared by
 * all, each client's still one at a time and in order. Threads are counted in
 * /proc/self/task: the JVM's Thread list does not show idle native threads.
 */
class PoolModeTest {

    private fun poolConfig(hub: String) = ClientConfig(hub).withDispatchMode(DispatchMode.POOL)

    /** Threads of this process, native ones included. */
    private fun threadCount(): Int = File("/proc/self/task").list()!!.size

    /** A pool client and what its callbacks saw: events, threads, overlaps. */
    private class Member(hub: String, val user: String) {
        val client = BeckonClient(ClientConfig(hub).withDispatchMode(DispatchMode.POOL))
        val recorder = EventRecorder()
        val threads: MutableSet<Thread> = ConcurrentHashMap.newKeySet()
        val overlaps = AtomicInteger()
        /** The accept's outcome (null: success), set by its continuation on the pool. */
        val accepted = CompletableFuture<Throwable?>()
        val acceptCompletions = AtomicInteger()
        private val answered = AtomicBoolean()
        private val busy = AtomicBoolean()

        /** Marks a callback: two of one client's at once would find [busy] set. */
        fun enter() {
            if (!busy.compareAndSet(false, true)) {
                overlaps.incrementAndGet()
                return
            }
            threads.add(Thread.currentThread())
            Thread.yield()
            busy.set(false)
        }

        init {
            client.setEventListener { event ->
                enter()
                recorder.onEvent(event)
                if (event is BeckonEvent.InvitationReceived && answered.compareAndSet(false, true)) {
                    // Accepted from the listener, on a pool thread; its future
                    // completes on the pool after this listener returns. (Not
                    // waited for with get(): a thread waiting in get() may run
                    // a CompletableFuture's continuations itself.)
                    client.acceptInvitation(event.invitationId, "yes").whenComplete { _, error ->
                        enter()
                        acceptCompletions.incrementAndGet()
                        accepted.complete(error)
                    }
                }
            }
        }
    }

    @Test
    fun `100 pairs in pool mode - every send, accept and event once, on a few shared threads`() {
        val hub = uniqueHub("pool-many")
        val pairs = 100
        // Warm the library (its runtime and the pool) with one pool client first.
        val warm = BeckonClient(poolConfig(hub))
        val members = ArrayList<Member>()
        try {
            warm.login("warm").await()
            val pendingBefore = Beckon.diagnostics().pendingOperations
            val before = threadCount()
            val inviters = (0 until pairs).map { Member(hub, "caller$it") }
            val invitees = (0 until pairs).map { Member(hub, "callee$it") }
            members.addAll(inviters)
            members.addAll(invitees)
            members.map { it.client.login(it.user) }.forEach { it.await() }
            val after = threadCount()
            // The pool has at most 8 threads; the JVM may add a few of its own
            // meanwhile (JIT compiler threads come and go). A thread per
            // client would be 200.
            assertTrue(
                after - before <= POOL_MAX_THREADS + JVM_SLACK,
                "${members.size} pool clients added ${after - before} threads ($before -> $after)"
            )

            val sends = (0 until pairs).map { inviters[it].client.sendInvitation(listOf(invitees[it].user), 30) }
            for (i in 0 until pairs) {
                val id = sends[i].await().invitationId
                assertNull(invitees[i].accepted.await())
                val heard = inviters[i].recorder.awaitEvent<BeckonEvent.InvitationAccepted> { it.invitationId == id }
                assertEquals(invitees[i].user, heard.invitee)
                assertEquals("yes", heard.extendedData)
            }
            for (i in 0 until pairs) {
                assertEquals(1, invitees[i].recorder.ofType<BeckonEvent.InvitationReceived>().size, invitees[i].user)
                assertEquals(1, inviters[i].recorder.ofType<BeckonEvent.InvitationAccepted>().size, inviters[i].user)
                assertEquals(1, invitees[i].acceptCompletions.get(), invitees[i].user)
            }
            val d = Beckon.diagnostics()
            assertEquals(pendingBefore, d.pendingOperations, "$d")
            assertEquals(0L, d.unmatchedCallbacks, "$d")

            val used = HashSet<Thread>()
            for (m in members) {
                assertEquals(0, m.overlaps.get(), "${m.user}: two callbacks ran at once")
                used.addAll(m.threads)
            }
            assertFalse(Thread.currentThread() in used)
            // The pool threads stay attached to the JVM: the same few Thread
            // objects served all 200 clients (attaching per callback would make
            // a new one each time).
            assertTrue(used.size in 1..POOL_MAX_THREADS, "callbacks ran on ${used.size} threads: $used")
            assertTrue(used.all { it.isDaemon && it.name == "beckon-dispatcher" }, "$used")
        } finally {
            members.forEach { it.client.close() }
            warm.close()
        }
    }

    @Test
    fun `a pool client closes itself from its own listener and from its own continuation`() {
        val hub = uniqueHub("pool-self")
        val client = BeckonClient(poolConfig(hub))
        val closedOn = CompletableFuture<Thread>()
        client.setEventListener { event ->
            if (event is BeckonEvent.ConnectionStateChanged && event.state == ConnectionState.CONNECTED) {
                client.close()
                closedOn.complete(Thread.currentThread())
            }
        }
        val login = client.login("selfie")
        assertNotSame(Thread.currentThread(), closedOn.await())
        assertTrue(client.isClosed)
        // The login's own result was still to come: SHUTDOWN.
        login.awaitFailure<ShutdownException>()
        client.logout().awaitFailure<ShutdownException>()

        // From a continuation of one of its futures, with more work queued.
        TestUser("alice", hub, poolConfig(hub)).login().use { alice ->
            val bob = BeckonClient(poolConfig(hub))
            val queued = Collections.synchronizedList(ArrayList<CompletableFuture<SendResult>>())
            val closed = CompletableFuture<Thread>()
            bob.setEventListener { event ->
                if (event is BeckonEvent.InvitationReceived) {
                    // Attached here, before the accept can complete: the
                    // continuation runs on the pool, after this listener.
                    bob.acceptInvitation(event.invitationId).thenRun {
                        repeat(5) { queued.add(bob.sendInvitation(listOf("ghost"), 30)) }
                        bob.close()
                        closed.complete(Thread.currentThread())
                    }
                }
            }
            bob.login("bob").await()
            alice.client.sendInvitation(listOf("bob"), 30).await()
            assertNotSame(Thread.currentThread(), closed.await())
            assertTrue(bob.isClosed)
            assertEquals(5, queued.size)
            queued.forEach { it.awaitFailure<ShutdownException>() }
            bob.close() // again, from outside: returns at once
        }
        val d = Beckon.diagnostics()
        assertEquals(0L, d.unmatchedCallbacks, "$d")
        assertEquals(0L, d.orphanedOperations, "$d")
    }

    @Test
    fun `a pool listener closes another pool client with work in flight`() {
        val hub = uniqueHub("pool-other")
        TestUser("alice", hub, poolConfig(hub)).use { alice ->
            val bob = BeckonClient(poolConfig(hub))
            val closed = CompletableFuture<Boolean>()
            alice.client.setEventListener { event ->
                if (event is BeckonEvent.InvitationReceived && !closed.isDone) {
                    bob.close() // waits for bob's callbacks, on other pool threads
                    closed.complete(bob.isClosed)
                }
            }
            alice.login()
            bob.login("bob").await()
            // Offline "ghost" first: alice's ring (and bob's close) follow the last call.
            val inFlight = (0 until 20).map { bob.sendInvitation(listOf("ghost"), 30) } +
                bob.sendInvitation(listOf("alice"), 30)
            assertTrue(closed.await())
            for (f in inFlight) {
                val outcome = runCatching { f.get(WAIT_SECONDS, TimeUnit.SECONDS) }
                val error = outcome.exceptionOrNull()?.cause
                assertTrue(outcome.isSuccess || error is ShutdownException, "$error")
            }
            assertEquals("alice", alice.client.userId)
            assertEquals(0L, Beckon.diagnostics().orphanedOperations)
        }
    }

    @Test
    fun `the JVM rules for callback threads hold on pool threads`() {
        val hub = uniqueHub("pool-rules")
        TestUser("alice", hub, poolConfig(hub)).login().use { alice ->
            val bob = BeckonClient(poolConfig(hub))
            try {
                assertEquals(DispatchMode.POOL, bob.config.dispatchMode)
                val seen = Collections.synchronizedList(ArrayList<String>())
                val threads: MutableSet<Thread> = ConcurrentHashMap.newKeySet()
                val thrown = AtomicInteger()
                val attached = CompletableFuture<Void?>()
                bob.setEventListener { e ->
                    threads.add(Thread.currentThread())
                    seen.add(if (e is BeckonEvent.ConnectionStateChanged) "${e.state}" else e.kind.name)
                    if (e is BeckonEvent.ConnectionStateChanged && e.state == ConnectionState.CONNECTING) {
                        // Holds bob's next callbacks (the login's result among
                        // them) until the continuation below is attached.
                        attached.get(WAIT_SECONDS, TimeUnit.SECONDS)
                    }
                    if (e is BeckonEvent.InvitationReceived) {
                        thrown.incrementAndGet()
                        throw IllegalStateException("listener bug (expected in this test)")
                    }
                }
                // Events before the result of the operation that caused them;
                // a plain continuation runs on the pool thread, in that order.
                val login = bob.login("bob").thenRun {
                    threads.add(Thread.currentThread())
                    seen.add("login done")
                }
                attached.complete(null)
                login.await()
                assertEquals(listOf("CONNECTING", "CONNECTED", "login done"), seen.toList())

                // A listener's exception goes to the pool thread's
                // uncaught-exception handler; the next events still arrive.
                val reported = AtomicInteger()
                val previous = Thread.getDefaultUncaughtExceptionHandler()
                Thread.setDefaultUncaughtExceptionHandler { _, _ -> reported.incrementAndGet() }
                try {
                    val id = alice.client.sendInvitation(listOf("bob"), 30).await().invitationId
                    waitUntil("the listener's exception reported") { reported.get() == 1 }
                    alice.client.cancelInvitation(id).await()
                    waitUntil("the cancel after the exception") { "INVITATION_CANCELLED" in seen.toList() }
                    assertEquals(1, thrown.get())
                } finally {
                    Thread.setDefaultUncaughtExceptionHandler(previous)
                }
                assertFalse(Thread.currentThread() in threads)
                assertTrue(threads.all { it.isDaemon && it.name == "beckon-dispatcher" }, "$threads")

                // poll is for poll-mode clients only.
                val e = assertThrows(InvalidArgumentException::class.java) { bob.poll(0) }
                assertTrue(e.message!!.contains("POOL"), e.message)
            } finally {
                bob.close()
            }
        }
    }

    @Test
    fun `one blocked pool callback holds its client's next callbacks, not the other clients'`() {
        val hub = uniqueHub("pool-blocked")
        TestUser("alice", hub, poolConfig(hub)).login().use { alice ->
            TestUser("bob", hub, poolConfig(hub)).login().use { bob ->
                val gate = CompletableFuture<Void?>()
                val blocked = CompletableFuture<Thread>()
                val behind = CompletableFuture<CompletableFuture<Void?>>()
                bob.client.setEventListener { event ->
                    if (event is BeckonEvent.InvitationReceived && !blocked.isDone) {
                        behind.complete(bob.client.renewToken("t")) // queued behind this very callback
                        blocked.complete(Thread.currentThread())
                        gate.get(WAIT_SECONDS, TimeUnit.SECONDS)
                    }
                }
                try {
                    alice.client.sendInvitation(listOf("bob"), 30).await()
                    val held = blocked.await()
                    // Another pool client runs meanwhile, on another pool thread.
                    val carolThreads: MutableSet<Thread> = ConcurrentHashMap.newKeySet()
                    TestUser("carol", hub, poolConfig(hub)).use { carol ->
                        carol.client.setEventListener { carolThreads.add(Thread.currentThread()) }
                        carol.client.login("carol").await()
                    }
                    assertTrue(carolThreads.isNotEmpty() && held !in carolThreads, "$held, $carolThreads")
                    assertFalse(behind.await().isDone, "bob's next callback ran while his listener was running")
                } finally {
                    gate.complete(null)
                }
                assertNull(behind.await().await())
            }
        }
    }

    companion object {
        /** The most threads the library's pool runs while no callback frees a client. */
        const val POOL_MAX_THREADS = 8

        /** Threads the JVM itself may start meanwhile (compiler threads, ...). */
        const val JVM_SLACK = 8
    }
}
