package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Test
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CompletionException
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/**
 * Every future completes exactly once, also when the client is closed with
 * work in flight; the library never calls back twice or not at all.
 */
class ExactlyOnceTest {

    /** Counts how often each future's completion is observed. */
    private class Tracker {
        val futures = ArrayList<CompletableFuture<*>>()
        val completions = ConcurrentHashMap<Int, AtomicInteger>()

        fun <T> track(future: CompletableFuture<T>): CompletableFuture<T> {
            val index = futures.size
            futures.add(future)
            completions[index] = AtomicInteger()
            future.whenComplete { _, _ -> completions.getValue(index).incrementAndGet() }
            return future
        }

        /** Checks, without waiting, that every future is done and was completed once. */
        fun assertAllDoneOnce() {
            futures.forEachIndexed { i, f -> assertTrue(f.isDone, "future $i is not done") }
            completions.forEach { (i, n) -> assertEquals(1, n.get(), "future $i completed ${n.get()} times") }
        }

        fun failures(): List<Throwable> = futures.mapNotNull { f ->
            try {
                f.join()
                null
            } catch (e: CompletionException) {
                e.cause
            }
        }
    }

    private fun startMany(client: BeckonClient, tracker: Tracker, count: Int) {
        for (i in 0 until count) {
            when (i % 4) {
                0 -> tracker.track(client.sendInvitation(listOf("ghost$i"), 60, "load $i"))
                1 -> tracker.track(client.acceptInvitation("feedfacefeedfacefeedfacefeedface"))
                2 -> tracker.track(client.cancelInvitation("feedfacefeedfacefeedfacefeedface"))
                else -> tracker.track(client.refuseInvitation("feedfacefeedfacefeedfacefeedface"))
            }
        }
    }

    private fun checkCleanBookkeeping() {
        val d = Beckon.diagnostics()
        assertEquals(0, d.pendingOperations, "$d")
        assertEquals(0L, d.unmatchedCallbacks, "$d")
        assertEquals(0L, d.orphanedOperations, "$d")
    }

    @Test
    fun `poll mode - close with every result still queued fails them all with SHUTDOWN`() {
        val client = BeckonClient(ClientConfig(uniqueHub("once-poll"), dispatchMode = DispatchMode.POLL))
        val login = client.login("alice")
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS)
        while (!login.isDone && System.nanoTime() < deadline) client.poll(100)
        login.await()

        val tracker = Tracker()
        startMany(client, tracker, 200)
        assertTrue(tracker.futures.none { it.isDone }, "nothing completes before a poll")
        client.close()
        tracker.assertAllDoneOnce()
        val failures = tracker.failures()
        assertEquals(200, failures.size)
        assertTrue(failures.all { it is ShutdownException }, failures.map { it.javaClass.simpleName }.distinct().toString())
        checkCleanBookkeeping()
    }

    @Test
    fun `thread mode - close while the dispatcher is busy completes every queued result once`() {
        val hub = uniqueHub("once-busy")
        val client = BeckonClient(hub)
        val tracker = Tracker()
        val blocked = CompletableFuture<Void?>()
        client.login("alice").await()
        TestUser("bob", hub).login().use { bob ->
            // The dispatcher is held inside this listener until close() has
            // begun, so 200 results are queued behind it when close() starts.
            client.setEventListener { event ->
                if (event is BeckonEvent.InvitationUserStateChanged && !blocked.isDone) {
                    blocked.complete(null)
                    val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS)
                    while (!client.isClosed && System.nanoTime() < deadline) Thread.sleep(1)
                }
            }
            // Its result may be queued behind the blocked listener: not awaited.
            val first = client.sendInvitation(listOf("bob"), 60)
            blocked.await()
            startMany(client, tracker, 200)
            assertTrue(tracker.futures.none { it.isDone }, "nothing completes while the dispatcher is held")
            client.close()
            assertTrue(first.isDone)
            tracker.assertAllDoneOnce()
            // Results the dispatcher delivered before the library closed its
            // queue are real; the rest are SHUTDOWN. Which ones is a race.
            tracker.futures.forEachIndexed { i, f ->
                try {
                    val value = f.join()
                    if (i % 4 == 0) assertTrue((value as SendResult).invitationId.length > 0)
                } catch (e: CompletionException) {
                    val cause = e.cause
                    assertTrue(cause is ShutdownException || (i % 4 != 0 && cause is InvitationNotFoundException), "$i: $cause")
                }
            }
            bob.recorder.awaitEvent<BeckonEvent.InvitationReceived>()
        }
        checkCleanBookkeeping()
    }

    @Test
    fun `thread mode - many operations racing a close all complete exactly once`() {
        repeat(5) { round ->
            val client = BeckonClient(uniqueHub("once-race"))
            client.login("alice").await()
            val tracker = Tracker()
            startMany(client, tracker, 300)
            client.close()
            tracker.assertAllDoneOnce()
            for (failure in tracker.failures()) {
                when (failure) {
                    is ShutdownException, is InvitationNotFoundException -> Unit
                    else -> fail<Unit>("round $round: unexpected $failure")
                }
            }
        }
        checkCleanBookkeeping()
    }

    @Test
    fun `operations from several threads while another thread closes`() {
        val client = BeckonClient(uniqueHub("once-threads"))
        client.login("alice").await()
        val trackers = List(4) { Tracker() }
        val started = java.util.concurrent.CountDownLatch(trackers.size)
        val threads = trackers.map { tracker ->
            Thread {
                started.countDown()
                for (i in 0 until 150) {
                    tracker.track(client.sendInvitation(listOf("ghost$i"), 60))
                    tracker.track(client.acceptInvitation("feedfacefeedfacefeedfacefeedface"))
                }
            }.apply { start() }
        }
        assertTrue(started.await(WAIT_SECONDS, TimeUnit.SECONDS))
        client.close()
        for (t in threads) {
            t.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS))
            assertTrue(!t.isAlive)
        }
        // Futures made after close() returned failed at once; the others were
        // completed by the library before close() returned.
        for (tracker in trackers) {
            tracker.assertAllDoneOnce()
            for (failure in tracker.failures()) {
                assertTrue(failure is ShutdownException || failure is InvitationNotFoundException, "$failure")
            }
        }
        checkCleanBookkeeping()
    }
}
