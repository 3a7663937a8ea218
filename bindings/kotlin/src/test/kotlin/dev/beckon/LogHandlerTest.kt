package dev.beckon

import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.atomic.AtomicInteger
import java.util.concurrent.atomic.AtomicLong

/** The log handler (ABI 2.1's beckon_set_log_config): queued by default, replaceable, exception-safe. */
class LogHandlerTest {

    @AfterEach
    fun logOff() {
        Beckon.setLogHandler(LogLevel.OFF, null)
    }

    /** Makes log records: a client logs in and out on its own hub. */
    private fun makeRecords(label: String) {
        TestUser("logger", uniqueHub(label)).login().use { it.client.logout().await() }
    }

    @Test
    fun `queued records arrive one at a time, in order, on the beckon-log thread`() {
        val lines = ConcurrentLinkedQueue<String>()
        val threads = ConcurrentLinkedQueue<String>()
        val running = AtomicInteger()
        val overlapped = AtomicBoolean()
        Beckon.setLogHandler(LogLevel.DEBUG) { level, tag, subTag, message ->
            if (running.incrementAndGet() != 1) overlapped.set(true)
            try {
                assertEquals("signaling", tag)
                assertTrue(level != LogLevel.OFF && level <= LogLevel.DEBUG, level.toString())
                lines.add("$level $subTag $message")
                threads.add(Thread.currentThread().name)
                Thread.sleep(1) // a slow handler holds up nothing but the log thread
            } finally {
                running.decrementAndGet()
            }
        }
        makeRecords("log-queued")
        waitUntil("log records") { lines.size >= 2 }
        Beckon.setLogHandler(LogLevel.OFF, null)
        assertTrue(threads.all { it == "beckon-log" }, threads.toSet().toString())
        assertTrue(!overlapped.get(), "two records were handled at the same time")
    }

    @Test
    fun `a queued handler may call the binding, even create and close a client`() {
        val fromHandler = CompletableFuture<String>()
        val once = AtomicBoolean()
        Beckon.setLogHandler(LogLevel.DEBUG) { _, _, _, _ ->
            if (once.compareAndSet(false, true)) {
                try {
                    val info = BeckonClient(uniqueHub("log-inner")).use { inner ->
                        inner.login("inner").get(WAIT_SECONDS, TimeUnit.SECONDS)
                        inner.info()
                    }
                    fromHandler.complete("${Beckon.version} ${info.userId} ${Beckon.errorName(17)}")
                } catch (t: Throwable) {
                    fromHandler.completeExceptionally(t)
                }
            }
        }
        makeRecords("log-outer")
        assertEquals("${Beckon.version} inner WOULD_DEADLOCK", fromHandler.await())
        assertEquals(0, Beckon.diagnostics().openClients)
    }

    @Test
    fun `exceptions thrown by the handler go to the uncaught-exception handler, and logging goes on`() {
        val previous = Thread.getDefaultUncaughtExceptionHandler()
        val reported = AtomicInteger()
        val calls = AtomicInteger()
        Thread.setDefaultUncaughtExceptionHandler { _, e ->
            if (e is IllegalStateException) reported.incrementAndGet()
        }
        try {
            for (delivery in LogDelivery.values()) {
                val before = calls.get()
                Beckon.setLogHandler(LogLevel.DEBUG, delivery) { _, _, _, _ ->
                    calls.incrementAndGet()
                    throw IllegalStateException("handler bug (expected in this test)")
                }
                makeRecords("log-throws-$delivery")
                waitUntil("more than one record with $delivery delivery") { calls.get() - before >= 2 }
                Beckon.setLogHandler(LogLevel.OFF, null)
            }
            assertEquals(calls.get(), reported.get())
        } finally {
            Thread.setDefaultUncaughtExceptionHandler(previous)
        }
    }

    @Test
    fun `a handler may replace itself from inside, without waiting for itself`() {
        val calls = AtomicInteger()
        val replaced = CompletableFuture<Boolean>()
        Beckon.setLogHandler(LogLevel.DEBUG) { _, _, _, _ ->
            if (calls.incrementAndGet() == 1) {
                Beckon.setLogHandler(LogLevel.OFF, null) // would hang if it waited for this call
                replaced.complete(true)
            }
        }
        makeRecords("log-self")
        assertTrue(replaced.await())
        val after = calls.get()
        makeRecords("log-self-after")
        Thread.sleep(50) // nothing to wait for: no record should come
        assertEquals(after, calls.get())
    }

    @Test
    fun `a replaced handler is never called once setLogHandler has returned`() {
        // One thread makes log records without pause; this one replaces the
        // handler over and over, alternating queued and direct delivery. Each
        // handler is marked retired once the call that replaced it returned:
        // a retired handler that is called again is a violation.
        val stop = AtomicBoolean()
        val churnError = CompletableFuture<Throwable?>()
        val hub = uniqueHub("log-churn")
        val churn = Thread {
            try {
                var i = 0
                while (!stop.get()) {
                    BeckonClient(hub).use { it.login("churn${i++ % 8}").get(WAIT_SECONDS, TimeUnit.SECONDS) }
                }
                churnError.complete(null)
            } catch (t: Throwable) {
                churnError.complete(t)
            }
        }
        churn.isDaemon = true
        churn.start()
        val violations = AtomicInteger()
        val handled = AtomicLong()
        val handlersCalled = AtomicInteger()
        var rounds = 0
        try {
            var previous: AtomicBoolean? = null
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(3)
            while (System.nanoTime() < deadline) {
                val retired = AtomicBoolean()
                val called = AtomicBoolean()
                val delivery = if (rounds++ % 2 == 0) LogDelivery.QUEUED else LogDelivery.DIRECT
                Beckon.setLogHandler(LogLevel.TRACE, delivery) { _, _, _, _ ->
                    if (retired.get()) violations.incrementAndGet()
                    if (called.compareAndSet(false, true)) handlersCalled.incrementAndGet()
                    handled.incrementAndGet()
                }
                previous?.set(true)
                previous = retired
                Thread.sleep(2)
            }
            Beckon.setLogHandler(LogLevel.OFF, null)
            previous?.set(true)
            Thread.sleep(50) // the churn goes on: nothing may reach a handler now
        } finally {
            stop.set(true)
            churn.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS))
        }
        assertEquals(null, churnError.getNow(AssertionError("the churn thread did not stop")))
        assertEquals(0, violations.get(), "calls to a handler after its replacement returned")
        assertTrue(rounds >= 10, "only $rounds replacements")
        assertTrue(handlersCalled.get() > 1, "handled ${handled.get()} records, by ${handlersCalled.get()} handlers")
    }
}
