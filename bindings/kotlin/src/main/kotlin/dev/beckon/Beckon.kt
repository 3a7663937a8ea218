package dev.beckon

import com.sun.jna.Memory
import com.sun.jna.Pointer
import java.time.Instant
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong
import java.util.concurrent.locks.ReentrantLock

/**
 * Process-wide functions of libbeckon: versions, error names, memory hubs,
 * login tokens and logging.
 *
 * The library is loaded, and its ABI version checked against
 * [BINDING_ABI_VERSION], on first use of this object or of a [BeckonClient].
 * It is found through the `beckon.library` system property (a file path),
 * else the `BECKON_LIBRARY` environment variable, else JNA's search for
 * "beckon" (`jna.library.path`, `LD_LIBRARY_PATH`, the system's directories).
 * A library that does not serve this binding's ABI (another major version, or
 * an older minor version; see [isAbiCompatible]) throws [IncompatibleLibraryError].
 */
object Beckon {
    /** The `BECKON_ABI_VERSION_MAJOR` of the header this binding was written against. */
    const val BINDING_ABI_VERSION_MAJOR = 2

    /** The `BECKON_ABI_VERSION_MINOR` of the header this binding was written against. */
    const val BINDING_ABI_VERSION_MINOR = 3

    /**
     * The `BECKON_ABI_VERSION` of the header this binding was written against:
     * `(BINDING_ABI_VERSION_MAJOR shl 16) or BINDING_ABI_VERSION_MINOR`.
     */
    const val BINDING_ABI_VERSION = (BINDING_ABI_VERSION_MAJOR shl 16) or BINDING_ABI_VERSION_MINOR

    /**
     * Whether a library of ABI version [libraryAbi] serves a binding written
     * for [bindingAbi] (by default this one): the same major version, and a
     * minor version at least the binding's, as `BECKON_ABI_COMPATIBLE` in C.
     */
    @JvmStatic
    @JvmOverloads
    fun isAbiCompatible(libraryAbi: Int, bindingAbi: Int = BINDING_ABI_VERSION): Boolean =
        (libraryAbi ushr 16) == (bindingAbi ushr 16) && (libraryAbi and 0xFFFF) >= (bindingAbi and 0xFFFF)

    /** An ABI version as "major.minor", e.g. "2.1". */
    @JvmStatic
    fun abiVersionText(abiVersion: Int): String = "${abiVersion ushr 16}.${abiVersion and 0xFFFF}"

    private val api: NativeApi
        get() = NativeLibrary.api

    /** The loaded library's version, e.g. "0.1.0". */
    @JvmStatic
    val version: String
        get() = readUtf8(api.beckon_version())

    /**
     * The loaded library's ABI version, `(major shl 16) or minor`: once
     * loaded, the major is [BINDING_ABI_VERSION_MAJOR] and the minor at least
     * [BINDING_ABI_VERSION_MINOR]. [abiVersionText] shows it as "2.3".
     */
    @JvmStatic
    val abiVersion: Int
        get() = api.beckon_abi_version()

    /** The library's name for an error code, e.g. "NOT_PERMITTED"; "UNKNOWN" for other values. */
    @JvmStatic
    fun errorName(code: Int): String = readUtf8(api.beckon_error_name(code))

    /** One sentence describing an error code. */
    @JvmStatic
    fun errorDescription(code: Int): String = readUtf8(api.beckon_error_description(code))

    /** The library's name for an event kind, e.g. "INVITATION_RECEIVED". */
    @JvmStatic
    fun eventKindName(kind: Int): String = readUtf8(api.beckon_event_kind_name(kind))

    /** The library's name for an invitee state, e.g. "ACCEPTED". */
    @JvmStatic
    fun inviteeStateName(state: Int): String = readUtf8(api.beckon_invitee_state_name(state))

    /**
     * Creates the in-process hub [name] (then reached as `memory://NAME`) with
     * a non-default configuration. It must not exist yet: a client's first use
     * of a name creates that hub with defaults.
     *
     * @param secret when set, logins need a token from [createToken] with it.
     * @param maxInvitees distinct invitees per invitation, 1 to 1000; 0 means 32.
     * @param retentionMillis how long an ended invitation is remembered; 0 means 10 minutes.
     * @throws InvalidArgumentException if the hub exists or an argument is out of range.
     */
    @JvmStatic
    @JvmOverloads
    fun createMemoryHub(name: String, secret: String? = null, maxInvitees: Int = 0, retentionMillis: Int = 0) {
        if (name.length == 0) throw InvalidArgumentException("name: is empty")
        if (maxInvitees !in 0..1000) throw InvalidArgumentException("maxInvitees: $maxInvitees is outside 0..1000")
        if (retentionMillis < 0) throw InvalidArgumentException("retentionMillis: $retentionMillis is negative")
        NativeArena.use { arena ->
            val c = HubConfigStruct()
            c.secret = arena.stringOrNull(secret, "secret")
            c.max_invitees = maxInvitees
            c.retention_ms = retentionMillis
            check(api.beckon_memory_hub_create(arena.string(name, "name"), c))
        }
    }

    /**
     * A login token for [userId], valid until [expiresAtUnixSeconds], made
     * with [secret] (the recipe is in docs/C_API.md, so any backend can make
     * the same tokens).
     */
    @JvmStatic
    fun createToken(secret: String, userId: String, expiresAtUnixSeconds: Long): String {
        if (expiresAtUnixSeconds < 0) {
            throw InvalidArgumentException("expiresAtUnixSeconds: $expiresAtUnixSeconds is negative")
        }
        return NativeArena.use { arena ->
            val buffer = Memory(TOKEN_MAX_LEN.toLong())
            try {
                check(
                    api.beckon_token_create(
                        arena.string(secret, "secret"), arena.string(userId, "userId"), expiresAtUnixSeconds,
                        buffer, SizeT(TOKEN_MAX_LEN.toLong())
                    )
                )
                buffer.getString(0, "UTF-8")
            } finally {
                buffer.close()
            }
        }
    }

    /** [createToken] with an [Instant]. */
    @JvmStatic
    fun createToken(secret: String, userId: String, expiresAt: Instant): String =
        createToken(secret, userId, expiresAt.epochSecond)

    // Logging. C is handed one static callback object (never collected, so
    // C's pointer to it stays valid however handlers are replaced); which
    // handler a record is for travels in user_data as a key into
    // logHandlers. Each installation gets a new key, and the replaced key is
    // removed once beckon_set_log_config has returned, when the library
    // guarantees the replaced handler is not running and never will be: a
    // replaced handler is never called again, even by a record queued for it.
    private val logHandlers = ConcurrentHashMap<Long, BeckonLogHandler>()
    private val nextLogKey = AtomicLong(1)
    private val logLock = ReentrantLock()
    private var installedLogKey = 0L // guarded by logLock
    private val inLogHandler = ThreadLocal.withInitial { IntArray(1) }

    private val onLog: LogCallback = object : LogCallback {
        override fun invoke(userData: Pointer?, level: Int, tag: Pointer?, subTag: Pointer?, message: Pointer?) {
            // Nothing may escape into C: the handler's exceptions go to the
            // thread's uncaught-exception handler.
            val depth = inLogHandler.get()
            depth[0]++
            try {
                val handler = logHandlers[Pointer.nativeValue(userData)] ?: return
                handler.onLog(LogLevel.fromValue(level), readUtf8(tag), readUtf8(subTag), readUtf8(message))
            } catch (t: Throwable) {
                Dispatch.reportUncaught(t)
            } finally {
                depth[0]--
            }
        }
    }

    /**
     * Installs the process-wide log handler for levels up to [maxLevel],
     * replacing the previous one; a null [handler] or [LogLevel.OFF] stops
     * logging (the default: the library prints nothing).
     *
     * With [LogDelivery.QUEUED] (the default) the handler runs on one library
     * thread (`beckon-log`), one record at a time, in order, outside the
     * library's locks: it may take its time and call any function of this
     * binding (at most 10 000 records wait; extra ones are dropped and a WARN
     * record with sub-tag "log" says how many). With [LogDelivery.DIRECT] it
     * runs at once on whichever library thread logs, concurrently and
     * possibly under library locks: it must be thread-safe, quick, and call
     * no Beckon function.
     *
     * Returns once the replaced handler is not running and will never be
     * called again (records still queued for it are dropped). Called from
     * inside the current handler, it does not wait for that call to finish;
     * if another thread is replacing the handler at that moment, this call
     * has no effect (that other replacement wins). Exceptions thrown by the
     * handler go to the thread's uncaught-exception handler.
     */
    @JvmStatic
    @JvmOverloads
    fun setLogHandler(maxLevel: LogLevel, handler: BeckonLogHandler?, delivery: LogDelivery = LogDelivery.QUEUED) {
        val fromHandler = inLogHandler.get()[0] > 0
        if (fromHandler) {
            // The thread replacing the handler may be waiting for this very
            // call to return: never wait for it.
            if (!logLock.tryLock()) return
        } else {
            logLock.lock()
        }
        try {
            val on = handler != null && maxLevel != LogLevel.OFF
            val key = if (on) nextLogKey.getAndIncrement() else 0L
            if (handler != null && on) logHandlers[key] = handler
            val c = LogConfigStruct()
            c.max_level = if (on) maxLevel.value else LogLevel.OFF.value
            c.delivery = delivery.value
            c.handler = if (on) onLog else null
            c.user_data = if (on) Pointer(key) else null
            if (on) NativeLibrary.keepThreadsAttached(onLog, "beckon-log")
            val code = try {
                api.beckon_set_log_config(c)
            } catch (t: Throwable) {
                logHandlers.remove(key)
                throw t
            }
            if (code != 0) {
                val message = readUtf8(api.beckon_last_error_message())
                logHandlers.remove(key)
                throw BeckonException.of(code, message)
            }
            val replaced = installedLogKey
            installedLogKey = key
            if (replaced != 0L) logHandlers.remove(replaced)
        } finally {
            logLock.unlock()
        }
    }

    /**
     * Kotlin: `Beckon.setLogHandler(LogLevel.INFO) { level, tag, subTag, message -> ... }`,
     * as the [BeckonLogHandler] variant.
     */
    @JvmSynthetic
    fun setLogHandler(
        maxLevel: LogLevel,
        delivery: LogDelivery = LogDelivery.QUEUED,
        handler: (LogLevel, String, String, String) -> Unit
    ) {
        setLogHandler(maxLevel, object : BeckonLogHandler {
            override fun onLog(level: LogLevel, tag: String, subTag: String, message: String) =
                handler(level, tag, subTag, message)
        }, delivery)
    }

    /** Counters of this binding's bookkeeping, for tests and health checks. */
    data class Diagnostics(
        /** Operations started and not yet completed. */
        val pendingOperations: Int,
        /** Clients created and not yet closed. */
        val openClients: Int,
        /** Callbacks from the library for no pending operation (a second call): should stay 0. */
        val unmatchedCallbacks: Long,
        /** Operations the library had not completed when close() returned (failed then): should stay 0. */
        val orphanedOperations: Long
    )

    /** A snapshot of [Diagnostics]. */
    @JvmStatic
    fun diagnostics(): Diagnostics = Diagnostics(
        Dispatch.pendingCount(), Dispatch.openClientCount(), Dispatch.unmatchedCount(), Dispatch.orphanedCount()
    )

    private const val TOKEN_MAX_LEN = 96

    private fun check(code: Int) {
        if (code != 0) throw BeckonException.of(code, readUtf8(api.beckon_last_error_message()))
    }
}
