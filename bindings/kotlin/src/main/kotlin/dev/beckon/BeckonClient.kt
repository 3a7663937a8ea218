package dev.beckon

import com.sun.jna.Pointer
import com.sun.jna.ptr.IntByReference
import com.sun.jna.ptr.PointerByReference
import java.time.Duration
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.locks.ReentrantLock

/**
 * One device of one user: a `beckon_client` of libbeckon.
 *
 * Every operation returns a [CompletableFuture] at once, and that future
 * completes exactly once: with the result, or exceptionally with the
 * [BeckonException] subclass of the error (input errors, including the ones
 * this binding finds before calling the library, come the same way; a closed
 * client gives [ShutdownException]). Kotlin code can use the suspend variants
 * instead (`loginAwait`, `sendInvitationAwait`, ...).
 *
 * Futures complete, and the event listener runs, on the client's dispatcher
 * thread ([DispatchMode.THREAD]), on one of the library's pool threads shared
 * by every pool-mode client ([DispatchMode.POOL]), or inside [poll]
 * ([DispatchMode.POLL]): one at a time, in the order the client observed them. Continuations attached
 * with `thenApply`/`thenAccept` (not the `Async` variants) run there too, so
 * they see the same order; never block there on another future of the same
 * client.
 *
 * All methods may be called from any thread. [close] frees the native client:
 * operations still in flight then complete with [ShutdownException], and once
 * it returns nothing of this client runs any more. A client that is never
 * closed lives until the process exits.
 *
 * @throws BeckonException from the constructor if the library refuses the
 *   configuration (for example an unsupported server URL).
 */
class BeckonClient(
    /** The configuration this client was created with. */
    val config: ClientConfig
) : AutoCloseable {

    /** A client with the default configuration for [serverUrl] (`memory://NAME` for an in-process hub). */
    constructor(serverUrl: String) : this(ClientConfig(serverUrl))

    private val api = NativeLibrary.api
    private val handle: Pointer
    private val key: Long

    @Volatile
    private var listener: BeckonEventListener? = null

    // Guards the native handle against use after free: every C call on it
    // counts itself in activeCalls; close() sets closing, waits for the calls
    // of other threads to leave, and only then frees.
    private val lock = Object()
    private var closing = false
    private var freed = false
    private var activeCalls = 0
    private val callsOnThisThread = ThreadLocal.withInitial { IntArray(1) }

    // Only one thread at a time inside beckon_client_poll, so that close()
    // never waits on a poll blocked behind another poll.
    private val pollLock = ReentrantLock()

    /**
     * This client's device id: [ClientConfig.deviceId], or the random one the
     * library made when that is null. Fixed for the client's life (readable
     * after [close] too). A random id is new for every client: an app that
     * should stay the same device across restarts passes its own and keeps it.
     */
    val deviceId: String

    init {
        if (config.requestTimeoutMillis < 0) {
            throw InvalidArgumentException("config.requestTimeoutMillis: ${config.requestTimeoutMillis} is negative")
        }
        handle = NativeArena.use { arena ->
            val c = ClientConfigStruct()
            c.server_url = arena.string(config.serverUrl, "config.serverUrl")
            c.device_id = arena.stringOrNull(config.deviceId, "config.deviceId")
            c.dispatch_mode = config.dispatchMode.value
            c.request_timeout_ms = config.requestTimeoutMillis
            val out = PointerByReference()
            val code = api.beckon_client_new(c, out)
            if (code != 0) throw BeckonException.of(code, lastErrorMessage())
            out.value ?: throw InternalException("beckon_client_new returned OK and no client")
        }
        key = Dispatch.addClient(this)
        val code = api.beckon_client_set_event_handler(handle, Dispatch.onEvent, Pointer(key))
        val info = ClientInfoStruct()
        val infoCode = if (code != 0) code else api.beckon_client_get_info(handle, info)
        if (infoCode != 0) {
            val error = BeckonException.of(infoCode, lastErrorMessage())
            Dispatch.removeClient(key)
            api.beckon_client_free(handle)
            throw error
        }
        deviceId = readUtf8(info.device_id)
    }

    /**
     * The user this client is logged in as; null unless a login has succeeded
     * and no logout (or end of session) has happened since. See [info].
     *
     * @throws ShutdownException if the client is closed.
     */
    val userId: String?
        get() = info().userId

    /**
     * The state of the last [BeckonEvent.ConnectionStateChanged] this client
     * dispatched ([ConnectionState.DISCONNECTED] before any): the state its
     * listener has been told (in poll mode, it changes as [poll] runs the
     * events). See [info].
     *
     * @throws ShutdownException if the client is closed.
     */
    val connectionState: ConnectionState
        get() = info().connectionState

    /**
     * The client's connection state, logged-in user and device id, read
     * together from the library now (`beckon_client_get_info`). Callable from
     * any thread, the client's own callbacks included.
     *
     * @throws ShutdownException if the client is closed.
     */
    fun info(): ClientInfo {
        val info = ClientInfoStruct()
        withHandle({ throw ShutdownException("info: the client is closed") }) { h ->
            val code = api.beckon_client_get_info(h, info)
            if (code != 0) throw BeckonException.of(code, lastErrorMessage())
        }
        val user = readUtf8(info.user_id)
        return ClientInfo(
            ConnectionState.fromValue(info.connection_state),
            if (user.length == 0) null else user,
            readUtf8(info.device_id)
        )
    }

    /** True once [close] has been called. */
    val isClosed: Boolean
        get() = synchronized(lock) { closing }

    /**
     * Sets the listener that receives this client's events (null removes it).
     * Set it before [login] to see every event. Exceptions it throws go to the
     * thread's uncaught-exception handler.
     */
    fun setEventListener(listener: BeckonEventListener?) {
        this.listener = listener
    }

    /** Kotlin: `client.setEventListener { event -> ... }`. */
    @JvmSynthetic
    fun setEventListener(listener: (BeckonEvent) -> Unit) {
        this.listener = object : BeckonEventListener {
            override fun onEvent(event: BeckonEvent) = listener(event)
        }
    }

    /**
     * Logs in as [userId] with [token] (null: memory hubs without a secret
     * accept any token). The CONNECTING and CONNECTED events come before the
     * future completes; invitations still ringing for the user come after.
     */
    @JvmOverloads
    fun login(userId: String, token: String? = null): CompletableFuture<Void?> =
        start(VoidOperation(this)) { h, arena, ud ->
            requireNotEmpty(userId, "userId")
            api.beckon_client_login(
                h, arena.string(userId, "userId"), arena.stringOrNull(token, "token"), Dispatch.onResult, ud
            )
        }

    /** Logs out; if this was the user's last device, its pending invitations are cancelled. */
    fun logout(): CompletableFuture<Void?> =
        start(VoidOperation(this)) { h, _, ud -> api.beckon_client_logout(h, Dispatch.onResult, ud) }

    /** Replaces the session's token before it expires (see [BeckonEvent.TokenWillExpire]). */
    fun renewToken(token: String): CompletableFuture<Void?> =
        start(VoidOperation(this)) { h, arena, ud ->
            api.beckon_client_renew_token(h, arena.string(token, "token"), Dispatch.onResult, ud)
        }

    /**
     * Rings this device by push while it is not connected (ABI 2.2),
     * replacing its target. The server keeps it past this connection (a
     * reconnect or a new login of the same device id keeps it); an explicit
     * [logout], and [close] (which logs out), forget it, as does the
     * provider saying the token is no longer valid: set it again after
     * logging in anew. A bad target throws at once (naming
     * `target.<field>`); a server that does not push through the provider
     * fails the future with INVALID_ARGUMENT (a memory hub pushes through
     * none).
     */
    fun setPushTarget(target: PushTarget): CompletableFuture<Void?> =
        start(VoidOperation(this)) { h, arena, ud ->
            val c = PushTargetStruct()
            c.provider = target.provider.value
            c.token = arena.string(target.token, "target.token")
            c.topic = arena.stringOrNull(target.topic, "target.topic")
            c.environment = target.environment.value
            c.alert_token = arena.stringOrNull(target.alertToken, "target.alertToken")
            api.beckon_client_set_push_target(h, c, Dispatch.onResult, ud)
        }

    /** Forgets this device's push target, if it has one (ABI 2.2). */
    fun clearPushTarget(): CompletableFuture<Void?> =
        start(VoidOperation(this)) { h, _, ud ->
            api.beckon_client_clear_push_target(h, Dispatch.onResult, ud)
        }

    /**
     * Invites [invitees] (1 to 32 distinct user ids, duplicates folded; not
     * yourself): every online device of each rings. The future gives the
     * invitation id and the invitees that were offline.
     *
     * @param timeoutSeconds 1 to 600: at the deadline, unanswered invitees time out.
     * @param extendedData text for the invitees (at most 8 KiB of UTF-8).
     * @param notification what an offline device's push notification shows.
     * @param onlineOnly invitees with no device online are closed at once
     *   instead of kept pending until the deadline.
     * @param requestTimeoutMillis how long this request may wait for the
     *   server; 0 (the default) means the client's [ClientConfig.requestTimeoutMillis].
     */
    @JvmOverloads
    fun sendInvitation(
        invitees: List<String>,
        timeoutSeconds: Int,
        extendedData: String = "",
        notification: Notification? = null,
        onlineOnly: Boolean = false,
        requestTimeoutMillis: Int = 0
    ): CompletableFuture<SendResult> =
        start(SendOperation(this)) { h, arena, ud ->
            if (invitees.isEmpty()) throw InvalidArgumentException("invitees: is empty")
            if (timeoutSeconds !in 1..MAX_TIMEOUT_SECONDS) {
                throw InvalidArgumentException("timeoutSeconds: $timeoutSeconds is outside 1..$MAX_TIMEOUT_SECONDS")
            }
            requireRequestTimeout(requestTimeoutMillis)
            val list = arena.stringArray(invitees, "invitees")
            val c = InvitationConfigStruct()
            c.timeout_seconds = timeoutSeconds
            c.extended_data = arena.string(extendedData, "extendedData")
            c.flags = if (onlineOnly) ONLINE_ONLY_FLAG else 0
            c.request_timeout_ms = requestTimeoutMillis
            if (notification != null) {
                val n = arena.keep(NotificationStruct())
                n.title = arena.string(notification.title, "notification.title")
                n.message = arena.string(notification.message, "notification.message")
                n.resource_id = arena.string(notification.resourceId, "notification.resourceId")
                n.payload = arena.string(notification.payload, "notification.payload")
                n.write()
                c.notification = n.pointer
            }
            api.beckon_send_invitation(h, list, SizeT(invitees.size.toLong()), c, Dispatch.onSend, ud)
        }

    /**
     * Cancels an invitation this user sent: for all its invitees ([invitees]
     * null) or for the listed ones. Invitees already in a terminal state come
     * back in [CancelResult.errorInvitees] with that state.
     *
     * @param requestTimeoutMillis how long this request may wait for the
     *   server; 0 (the default) means the client's [ClientConfig.requestTimeoutMillis].
     */
    @JvmOverloads
    fun cancelInvitation(
        invitationId: String,
        invitees: List<String>? = null,
        extendedData: String? = null,
        requestTimeoutMillis: Int = 0
    ): CompletableFuture<CancelResult> =
        start(CancelOperation(this)) { h, arena, ud ->
            requireNotEmpty(invitationId, "invitationId")
            if (invitees != null && invitees.isEmpty()) {
                throw InvalidArgumentException("invitees: is empty (pass null to cancel for every invitee)")
            }
            requireRequestTimeout(requestTimeoutMillis)
            val c = CancelConfigStruct()
            c.request_timeout_ms = requestTimeoutMillis
            c.invitees = invitees?.let { arena.stringArray(it, "invitees") }
            c.invitee_count = SizeT((invitees?.size ?: 0).toLong())
            c.extended_data = arena.stringOrNull(extendedData, "extendedData")
            api.beckon_cancel_invitation_ex(h, arena.string(invitationId, "invitationId"), c, Dispatch.onCancel, ud)
        }

    /**
     * Accepts an invitation this user was invited to; the first answer from
     * any of the user's devices wins.
     *
     * @param extendedData text for the inviter (at most 8 KiB of UTF-8).
     * @param requestTimeoutMillis how long this request may wait for the
     *   server; 0 (the default) means the client's [ClientConfig.requestTimeoutMillis].
     */
    @JvmOverloads
    fun acceptInvitation(
        invitationId: String,
        extendedData: String? = null,
        requestTimeoutMillis: Int = 0
    ): CompletableFuture<Void?> = answer(true, invitationId, extendedData, requestTimeoutMillis)

    /** Refuses an invitation this user was invited to; as [acceptInvitation]. */
    @JvmOverloads
    fun refuseInvitation(
        invitationId: String,
        extendedData: String? = null,
        requestTimeoutMillis: Int = 0
    ): CompletableFuture<Void?> = answer(false, invitationId, extendedData, requestTimeoutMillis)

    private fun answer(
        accept: Boolean,
        invitationId: String,
        extendedData: String?,
        requestTimeoutMillis: Int
    ): CompletableFuture<Void?> =
        start(VoidOperation(this)) { h, arena, ud ->
            requireNotEmpty(invitationId, "invitationId")
            requireRequestTimeout(requestTimeoutMillis)
            val c = AnswerConfigStruct()
            c.request_timeout_ms = requestTimeoutMillis
            c.extended_data = arena.stringOrNull(extendedData, "extendedData")
            val id = arena.string(invitationId, "invitationId")
            if (accept) {
                api.beckon_accept_invitation_ex(h, id, c, Dispatch.onResult, ud)
            } else {
                api.beckon_refuse_invitation_ex(h, id, c, Dispatch.onResult, ud)
            }
        }

    /**
     * A page of this user's ended invitations (ABI 2.3), newest sent first,
     * from the server's history (it keeps each user's most recent ones for a
     * configured period: by default 100, for 7 days; a memory hub the same).
     * Invitations still ringing are not listed. For the page after, pass
     * the page's [InvitationPage.nextCursor] as [cursor] with the same other
     * arguments; it is null on the last page.
     *
     * Out-of-range arguments fail the future at once with
     * [InvalidArgumentException], naming the argument (the library's
     * messages name `query.<field>`: `query.until_ms`, `query.cursor`, ...);
     * before a login, with [NotLoggedInException].
     *
     * @param role sent, received or both ([HistoryRole.ANY], the default).
     * @param sinceMs only invitations sent at or after this (Unix ms); 0 (the default): no bound.
     * @param untilMs only invitations sent before this (Unix ms); 0 (the default): no bound, else
     *   it must be after [sinceMs].
     * @param limit invitations per page, 1 to 100; 0 (the default) means 20.
     * @param cursor null or "" for the first page, else the [InvitationPage.nextCursor] of the page before.
     */
    @JvmOverloads
    fun queryInvitations(
        role: HistoryRole = HistoryRole.ANY,
        sinceMs: Long = 0,
        untilMs: Long = 0,
        limit: Int = 0,
        cursor: String? = null
    ): CompletableFuture<InvitationPage> =
        start(PageOperation(this)) { h, arena, ud ->
            // uint64_t and uint32_t in C: negative values would wrap.
            if (sinceMs < 0) throw InvalidArgumentException("sinceMs: $sinceMs is negative")
            if (untilMs < 0) throw InvalidArgumentException("untilMs: $untilMs is negative")
            if (limit !in 0..MAX_HISTORY_LIMIT) {
                throw InvalidArgumentException("limit: $limit is outside 0..$MAX_HISTORY_LIMIT")
            }
            val c = InvitationQueryStruct()
            c.role = role.value
            c.since_ms = sinceMs
            c.until_ms = untilMs
            c.limit = limit
            c.cursor = arena.stringOrNull(cursor, "cursor")
            api.beckon_query_invitations(h, c, Dispatch.onPage, ud)
        }

    /**
     * Poll mode only: waits up to [timeoutMillis] (0 to 3 600 000) for
     * callbacks to be due, then runs those queued at that moment on this
     * thread (completing futures, calling the listener). Returns how many ran.
     *
     * @throws InvalidArgumentException for a client in thread or pool mode, a
     *   timeout out of range, or a call from inside one of this client's callbacks.
     * @throws ShutdownException if the client is closed.
     */
    fun poll(timeoutMillis: Int): Int {
        if (config.dispatchMode != DispatchMode.POLL) {
            throw InvalidArgumentException(
                "poll: only for DispatchMode.POLL clients; this one dispatches in DispatchMode.${config.dispatchMode}"
            )
        }
        if (timeoutMillis !in 0..MAX_POLL_MILLIS) {
            throw InvalidArgumentException("timeoutMillis: $timeoutMillis is outside 0..$MAX_POLL_MILLIS")
        }
        if (isClosed) throw ShutdownException("poll: the client is closed")
        // Polled in short slices so that close() on another thread never
        // waits long for a poll to leave the library.
        val deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis.toLong())
        while (true) {
            val left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()).coerceAtLeast(0)
            val slice = minOf(left, POLL_SLICE_MILLIS).toInt()
            if (pollLock.tryLock(slice.toLong(), TimeUnit.MILLISECONDS)) {
                val ran = try {
                    withHandle({ 0 }) { h ->
                        val ran = IntByReference()
                        val code = api.beckon_client_poll(h, slice, ran)
                        if (code != 0) throw BeckonException.of(code, lastErrorMessage())
                        // uint32_t in C: a count past Int.MAX_VALUE reads negative.
                        if (ran.value < 0) Int.MAX_VALUE else ran.value
                    }
                } finally {
                    pollLock.unlock()
                }
                if (ran > 0) return ran
            }
            if (isClosed || System.nanoTime() - deadline >= 0) return 0
        }
    }

    /** [poll] with a [Duration]. */
    fun poll(timeout: Duration): Int = poll(timeout.toMillis().coerceIn(0, MAX_POLL_MILLIS.toLong()).toInt())

    /**
     * Frees the native client. Logs out (rule 7: if this was the user's last
     * device, its pending invitations are cancelled), completes every pending
     * future with [ShutdownException], and returns when no callback of this
     * client runs or will run. Idempotent. May be called from inside one of
     * this client's own callbacks (it then returns at once if another close
     * is under way). Waits for calls of other threads on this client to leave
     * the library first (at most one poll slice, 50 ms, for [poll]).
     *
     * @throws WouldDeadlockException when called from another client's
     *   callback while a callback of this client is itself closing that other
     *   client (each would wait for the other forever). Then nothing was done:
     *   this client stays open (calls other threads made while the close was
     *   being tried may have failed with [ShutdownException]); close it later,
     *   outside the callbacks.
     */
    override fun close() {
        val mine = callsOnThisThread.get()[0]
        synchronized(lock) {
            while (closing) {
                if (freed || Dispatch.isInCallbackOf(this)) return
                // Another thread is closing: wait until it has freed the
                // client, or found it would deadlock (then try again here).
                lock.wait()
            }
            closing = true
            while (activeCalls > mine) lock.wait()
        }
        var code = 0
        var message = ""
        try {
            code = api.beckon_client_free(handle)
            if (code != 0) message = lastErrorMessage()
        } finally {
            if (code == ErrorCode.WOULD_DEADLOCK.value) {
                // Nothing was done: the client is still live and usable.
                synchronized(lock) {
                    closing = false
                    lock.notifyAll()
                }
            } else {
                // Freed (or, for a code the library does not document here,
                // never touched again: a leak is safer than a double free).
                Dispatch.removeClient(key)
                Dispatch.failLeftovers(this)
                synchronized(lock) {
                    freed = true
                    lock.notifyAll()
                }
            }
        }
        if (code != 0) throw BeckonException.of(code, message)
    }

    override fun toString(): String = "BeckonClient(${config.serverUrl}${if (isClosed) ", closed" else ""})"

    internal fun deliver(event: BeckonEvent) {
        val l = listener ?: return
        try {
            l.onEvent(event)
        } catch (t: Throwable) {
            Dispatch.reportUncaught(t)
        }
    }

    /**
     * Runs one asynchronous C call: registers [op], lets [call] build its
     * inputs in an arena and call the library, and turns an immediate error
     * (the library's or the binding's own checks) into a failed future.
     */
    private fun <T> start(
        op: PendingOperation<T>,
        call: (handle: Pointer, arena: NativeArena, userData: Pointer) -> Int
    ): CompletableFuture<T> {
        try {
            withHandle({ op.fail(ShutdownException("the client is closed")) }) { h ->
                NativeArena.use { arena ->
                    val opKey = Dispatch.register(op)
                    val code = try {
                        call(h, arena, Pointer(opKey))
                    } catch (t: Throwable) {
                        Dispatch.take(opKey)
                        throw t
                    }
                    if (code != 0) {
                        // Read before any other beckon_* call on this thread.
                        val message = lastErrorMessage()
                        if (Dispatch.take(opKey) != null) op.fail(BeckonException.of(code, message))
                    }
                }
            }
        } catch (e: BeckonException) {
            op.fail(e)
        }
        return op.future
    }

    private inline fun <R> withHandle(ifClosed: () -> R, block: (Pointer) -> R): R {
        synchronized(lock) {
            if (closing) return ifClosed()
            activeCalls++
        }
        val mine = callsOnThisThread.get()
        mine[0]++
        try {
            return block(handle)
        } finally {
            mine[0]--
            synchronized(lock) {
                activeCalls--
                lock.notifyAll()
            }
        }
    }

    private fun lastErrorMessage(): String = readUtf8(api.beckon_last_error_message())

    private fun requireNotEmpty(value: String, field: String) {
        if (value.length == 0) throw InvalidArgumentException("$field: is empty")
    }

    private fun requireRequestTimeout(millis: Int) {
        if (millis < 0) throw InvalidArgumentException("requestTimeoutMillis: $millis is negative")
    }

    companion object {
        /** The longest invitation timeout a hub allows, in seconds. */
        const val MAX_TIMEOUT_SECONDS = 600

        /** The most invitations one [queryInvitations] page holds. */
        const val MAX_HISTORY_LIMIT = 100

        /** The longest [poll] timeout, in ms. */
        const val MAX_POLL_MILLIS = 3_600_000

        private const val POLL_SLICE_MILLIS = 50L
        private const val ONLINE_ONLY_FLAG = 1
    }
}
