// Helpers shared by the tests: unique hub names, bounded waits, an event
// recorder, and assertions on failed futures.

package dev.beckon

import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ExecutionException
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/** Every wait in the tests is bounded by this. */
const val WAIT_SECONDS = 10L

private val hubCounter = AtomicInteger()

/** A `memory://` URL no other test uses. */
fun uniqueHub(label: String): String =
    "memory://kt-$label-${ProcessHandle.current().pid()}-${hubCounter.incrementAndGet()}"

/** The future's value, waiting at most [WAIT_SECONDS]. */
fun <T> CompletableFuture<T>.await(): T = get(WAIT_SECONDS, TimeUnit.SECONDS)

/** Waits for the future to fail and checks the exception type; returns it. */
inline fun <reified E : BeckonException> CompletableFuture<*>.awaitFailure(): E {
    try {
        val value = get(WAIT_SECONDS, TimeUnit.SECONDS)
        fail<Unit>("expected ${E::class.java.simpleName}, the future succeeded with $value")
    } catch (e: ExecutionException) {
        val cause = e.cause
        if (cause is E) {
            assertTrue(cause.message!!.length > 0, "the exception has a message")
            return cause
        }
        fail<Unit>("expected ${E::class.java.simpleName}, got $cause")
    }
    throw IllegalStateException("unreachable")
}

/** Waits until [condition] holds, for at most [WAIT_SECONDS]; fails the test otherwise. */
fun waitUntil(what: String, condition: () -> Boolean) {
    val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS)
    while (!condition()) {
        if (System.nanoTime() > deadline) fail<Unit>("timed out waiting for $what")
        Thread.sleep(5)
    }
}

/** Records a client's events, and lets a test wait for one. */
class EventRecorder : BeckonEventListener {
    private val lock = Object()
    private val all = ArrayList<BeckonEvent>()

    override fun onEvent(event: BeckonEvent) {
        synchronized(lock) {
            all.add(event)
            lock.notifyAll()
        }
    }

    val events: List<BeckonEvent>
        get() = synchronized(lock) { ArrayList(all) }

    /** The first recorded event of type [T] matching [predicate], waiting at most [WAIT_SECONDS]. */
    inline fun <reified T : BeckonEvent> awaitEvent(noinline predicate: (T) -> Boolean = { true }): T =
        awaitMatching(T::class.java.simpleName) { it is T && predicate(it) } as T

    fun awaitMatching(what: String, match: (BeckonEvent) -> Boolean): BeckonEvent {
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS)
        synchronized(lock) {
            while (true) {
                all.firstOrNull(match)?.let { return it }
                val left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())
                if (left <= 0) fail<Unit>("timed out waiting for $what; events so far: $all")
                lock.wait(left)
            }
        }
    }

    inline fun <reified T : BeckonEvent> ofType(): List<T> = events.filterIsInstance<T>()
}

/** A client logged in as [user] on [hub], with an [EventRecorder]. */
class TestUser(val user: String, hub: String, config: ClientConfig = ClientConfig(hub)) : AutoCloseable {
    val client = BeckonClient(config)
    val recorder = EventRecorder()

    init {
        client.setEventListener(recorder)
    }

    fun login(): TestUser {
        client.login(user).await()
        return this
    }

    override fun close() = client.close()
}
