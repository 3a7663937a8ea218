// How C callbacks find their way back to Kotlin.
//
// The library calls one of a handful of JNA callbacks that live in static
// fields for the life of the process, so none can ever be garbage-collected
// while C holds it (the crash JNA warns about). What a call is for travels in
// `user_data` as a number: a key into `operations` (pending futures) or
// `clients` (event listeners). A pending operation is removed from the map by
// the one callback that completes it, so a future completes exactly once even
// if the library were to call back twice (that would be counted in
// Diagnostics.unmatchedCallbacks).

package dev.beckon

import com.sun.jna.Pointer
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong

/** One operation waiting for its C callback. */
internal abstract class PendingOperation<T>(val client: BeckonClient, val future: CompletableFuture<T>) {
    /** Copies the C result (valid only during the callback) and completes the future. */
    abstract fun complete(result: Pointer)

    fun fail(error: Throwable) {
        future.completeExceptionally(error)
    }
}

internal class VoidOperation(client: BeckonClient) : PendingOperation<Void?>(client, CompletableFuture()) {
    override fun complete(result: Pointer) {
        val r = ResultStruct(result)
        if (r.error == 0) future.complete(null) else fail(BeckonException.of(r.error, readUtf8(r.error_message)))
    }
}

internal class SendOperation(client: BeckonClient) : PendingOperation<SendResult>(client, CompletableFuture()) {
    override fun complete(result: Pointer) {
        val r = SendResultStruct(result)
        if (r.error == 0) {
            future.complete(SendResult(readUtf8(r.invitation_id), readInvitees(r.error_invitees, r.error_invitee_count)))
        } else {
            fail(BeckonException.of(r.error, readUtf8(r.error_message)))
        }
    }
}

internal class CancelOperation(client: BeckonClient) : PendingOperation<CancelResult>(client, CompletableFuture()) {
    override fun complete(result: Pointer) {
        val r = CancelResultStruct(result)
        if (r.error == 0) {
            future.complete(CancelResult(readInvitees(r.error_invitees, r.error_invitee_count)))
        } else {
            fail(BeckonException.of(r.error, readUtf8(r.error_message)))
        }
    }
}

internal class PageOperation(client: BeckonClient) : PendingOperation<InvitationPage>(client, CompletableFuture()) {
    override fun complete(result: Pointer) {
        val r = InvitationPageResultStruct(result)
        if (r.error == 0) {
            val next = readUtf8(r.next_cursor)
            future.complete(
                InvitationPage(readInvitationSummaries(r.invitations, r.invitation_count), if (next.length == 0) null else next)
            )
        } else {
            fail(BeckonException.of(r.error, readUtf8(r.error_message)))
        }
    }
}

internal object Dispatch {
    private val nextKey = AtomicLong(1)
    private val operations = ConcurrentHashMap<Long, PendingOperation<*>>()
    private val clients = ConcurrentHashMap<Long, BeckonClient>()
    private val unmatched = AtomicLong()
    private val orphaned = AtomicLong()

    /** The client whose callback this thread is running, innermost first. */
    private val running = ThreadLocal<ArrayList<BeckonClient>>()

    // The only callback objects ever handed to C: static, so never collected.
    @JvmField val onResult: ResultCallback = object : ResultCallback {
        override fun invoke(userData: Pointer?, result: Pointer?) = completeOperation(userData, result)
    }

    @JvmField val onSend: SendCallback = object : SendCallback {
        override fun invoke(userData: Pointer?, result: Pointer?) = completeOperation(userData, result)
    }

    @JvmField val onCancel: CancelCallback = object : CancelCallback {
        override fun invoke(userData: Pointer?, result: Pointer?) = completeOperation(userData, result)
    }

    @JvmField val onPage: PageCallback = object : PageCallback {
        override fun invoke(userData: Pointer?, result: Pointer?) = completeOperation(userData, result)
    }

    @JvmField val onEvent: EventCallback = object : EventCallback {
        override fun invoke(userData: Pointer?, event: Pointer?) = deliverEvent(userData, event)
    }

    init {
        NativeLibrary.keepThreadsAttached(onResult, "beckon-dispatcher")
        NativeLibrary.keepThreadsAttached(onSend, "beckon-dispatcher")
        NativeLibrary.keepThreadsAttached(onCancel, "beckon-dispatcher")
        NativeLibrary.keepThreadsAttached(onPage, "beckon-dispatcher")
        NativeLibrary.keepThreadsAttached(onEvent, "beckon-dispatcher")
    }

    fun register(operation: PendingOperation<*>): Long {
        val key = nextKey.getAndIncrement()
        operations[key] = operation
        return key
    }

    /** Removes and returns the operation (null if it already completed). */
    fun take(key: Long): PendingOperation<*>? = operations.remove(key)

    fun addClient(client: BeckonClient): Long {
        val key = nextKey.getAndIncrement()
        clients[key] = client
        return key
    }

    fun removeClient(key: Long) {
        clients.remove(key)
    }

    /** Fails, with SHUTDOWN, what the library left pending for [client] after freeing it (never expected). */
    fun failLeftovers(client: BeckonClient) {
        for ((key, op) in operations) {
            if (op.client === client && operations.remove(key, op)) {
                orphaned.incrementAndGet()
                op.fail(ShutdownException("the client was closed; libbeckon did not report this operation's outcome"))
            }
        }
    }

    /** True while this thread runs one of [client]'s callbacks. */
    fun isInCallbackOf(client: BeckonClient): Boolean = running.get()?.any { it === client } == true

    fun pendingCount(): Int = operations.size
    fun openClientCount(): Int = clients.size
    fun unmatchedCount(): Long = unmatched.get()
    fun orphanedCount(): Long = orphaned.get()

    private inline fun runAs(client: BeckonClient, block: () -> Unit) {
        var stack = running.get()
        if (stack == null) {
            stack = ArrayList(2)
            running.set(stack)
        }
        stack.add(client)
        try {
            block()
        } finally {
            stack.removeAt(stack.size - 1)
        }
    }

    private fun completeOperation(userData: Pointer?, result: Pointer?) {
        // Nothing may escape into JNA: it would print the exception and go on.
        try {
            val key = Pointer.nativeValue(userData)
            val op = operations.remove(key)
            if (op == null) {
                unmatched.incrementAndGet()
                return
            }
            runAs(op.client) {
                try {
                    if (result == null) {
                        op.fail(InternalException("libbeckon passed a NULL result"))
                    } else {
                        op.complete(result)
                    }
                } catch (t: Throwable) {
                    // Reading the result failed (or a future's dependent threw
                    // an Error): the future still completes, exactly once.
                    op.fail(t)
                    reportUncaught(t)
                }
            }
        } catch (t: Throwable) {
            reportUncaught(t)
        }
    }

    private fun deliverEvent(userData: Pointer?, event: Pointer?) {
        try {
            val client = clients[Pointer.nativeValue(userData)] ?: return
            if (event == null) return
            val value = BeckonEvent.fromNative(EventStruct(event))
            runAs(client) { client.deliver(value) }
        } catch (t: Throwable) {
            reportUncaught(t)
        }
    }

    /** An exception from a listener or a bug here: to the thread's uncaught-exception handler, not into C. */
    fun reportUncaught(t: Throwable) {
        try {
            val thread = Thread.currentThread()
            thread.uncaughtExceptionHandler.uncaughtException(thread, t)
        } catch (ignored: Throwable) {
        }
    }
}
