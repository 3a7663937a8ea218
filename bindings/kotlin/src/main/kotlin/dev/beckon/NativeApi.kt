// The C ABI of libbeckon as JNA sees it: one interface method per exported
// function, one Structure per C struct, one Callback interface per callback
// type. Nothing here is public: the rest of the binding is the API.
//
// Strings never cross as java.lang.String: JNA would encode them with the
// platform charset (not always UTF-8 on JDK 17) and truncate them at a NUL.
// They go in as Pointers to UTF-8 buffers that NativeArena owns, and come out
// through readUtf8.

package dev.beckon

import com.sun.jna.Callback
import com.sun.jna.CallbackThreadInitializer
import com.sun.jna.IntegerType
import com.sun.jna.Library
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.Structure
import com.sun.jna.ptr.IntByReference
import com.sun.jna.ptr.PointerByReference

/** C `size_t`, whatever its width on this platform. */
internal class SizeT @JvmOverloads constructor(value: Long = 0) : IntegerType(Native.SIZE_T_SIZE, value, true) {
    override fun toByte(): Byte = toInt().toByte()
    override fun toChar(): Char = toInt().toChar()
    override fun toShort(): Short = toInt().toShort()
}

internal interface NativeApi : Library {
    fun beckon_version(): Pointer?
    fun beckon_abi_version(): Int
    fun beckon_error_name(code: Int): Pointer?
    fun beckon_error_description(code: Int): Pointer?
    fun beckon_last_error_message(): Pointer?
    fun beckon_event_kind_name(kind: Int): Pointer?
    fun beckon_invitee_state_name(state: Int): Pointer?

    fun beckon_client_new(config: ClientConfigStruct, outClient: PointerByReference): Int
    fun beckon_client_set_event_handler(client: Pointer, handler: EventCallback?, userData: Pointer?): Int
    fun beckon_client_login(client: Pointer, userId: Pointer, token: Pointer?, callback: ResultCallback?, userData: Pointer?): Int
    fun beckon_client_logout(client: Pointer, callback: ResultCallback?, userData: Pointer?): Int
    fun beckon_client_renew_token(client: Pointer, token: Pointer, callback: ResultCallback?, userData: Pointer?): Int
    fun beckon_client_poll(client: Pointer, timeoutMs: Int, outRan: IntByReference?): Int
    fun beckon_client_free(client: Pointer?): Int
    fun beckon_client_get_info(client: Pointer, outInfo: ClientInfoStruct): Int

    fun beckon_memory_hub_create(name: Pointer, config: HubConfigStruct): Int
    fun beckon_token_create(secret: Pointer, userId: Pointer, expiryUnixSeconds: Long, buffer: Pointer, bufferLen: SizeT): Int

    fun beckon_send_invitation(
        client: Pointer, invitees: Pointer, inviteeCount: SizeT, config: InvitationConfigStruct,
        callback: SendCallback?, userData: Pointer?
    ): Int

    // ABI 2.1: cancel, accept and refuse with a config (for the per-operation
    // request timeout); the binding calls only these, not the 2.0 forms.
    fun beckon_cancel_invitation_ex(
        client: Pointer, invitationId: Pointer, config: CancelConfigStruct, callback: CancelCallback?, userData: Pointer?
    ): Int

    fun beckon_accept_invitation_ex(
        client: Pointer, invitationId: Pointer, config: AnswerConfigStruct, callback: ResultCallback?, userData: Pointer?
    ): Int

    fun beckon_refuse_invitation_ex(
        client: Pointer, invitationId: Pointer, config: AnswerConfigStruct, callback: ResultCallback?, userData: Pointer?
    ): Int

    /** ABI 2.1: returns once the replaced handler is not running and will never be called again. */
    fun beckon_set_log_config(config: LogConfigStruct): Int

    // ABI 2.2: push targets.
    fun beckon_client_set_push_target(client: Pointer, target: PushTargetStruct, callback: ResultCallback?, userData: Pointer?): Int
    fun beckon_client_clear_push_target(client: Pointer, callback: ResultCallback?, userData: Pointer?): Int
    fun beckon_push_provider_name(provider: Int): Pointer?
    fun beckon_push_outcome_name(outcome: Int): Pointer?

    // ABI 2.3: history.
    fun beckon_query_invitations(client: Pointer, query: InvitationQueryStruct, callback: PageCallback?, userData: Pointer?): Int
}

// Callback types. Each has exactly one instance for the life of the process
// (see Dispatch): a JNA callback that is garbage-collected while C still holds
// its trampoline crashes the process, and a static one never is.

internal interface ResultCallback : Callback {
    fun invoke(userData: Pointer?, result: Pointer?)
}

internal interface SendCallback : Callback {
    fun invoke(userData: Pointer?, result: Pointer?)
}

internal interface CancelCallback : Callback {
    fun invoke(userData: Pointer?, result: Pointer?)
}

/** `beckon_invitation_page_callback` (ABI 2.3). */
internal interface PageCallback : Callback {
    fun invoke(userData: Pointer?, result: Pointer?)
}

internal interface EventCallback : Callback {
    fun invoke(userData: Pointer?, event: Pointer?)
}

internal interface LogCallback : Callback {
    fun invoke(userData: Pointer?, level: Int, tag: Pointer?, subTag: Pointer?, message: Pointer?)
}

// Input structs. Their string fields are Pointers into a NativeArena that
// outlives the call; struct_size is set from JNA's computed layout, which is
// the C layout of the header.

@Structure.FieldOrder("struct_size", "server_url", "device_id", "dispatch_mode", "request_timeout_ms")
internal class ClientConfigStruct : Structure() {
    @JvmField var struct_size: Int = 0
    @JvmField var server_url: Pointer? = null
    @JvmField var device_id: Pointer? = null
    @JvmField var dispatch_mode: Int = 0
    @JvmField var request_timeout_ms: Int = 0

    init {
        struct_size = size()
    }
}

/** `beckon_notification_config`: a notification to send. */
@Structure.FieldOrder("struct_size", "title", "message", "resource_id", "payload")
internal class NotificationStruct : Structure() {
    @JvmField var struct_size: Int = 0
    @JvmField var title: Pointer? = null
    @JvmField var message: Pointer? = null
    @JvmField var resource_id: Pointer? = null
    @JvmField var payload: Pointer? = null

    init {
        struct_size = size()
    }
}

@Structure.FieldOrder("struct_size", "timeout_seconds", "extended_data", "notification", "flags", "request_timeout_ms")
internal class InvitationConfigStruct : Structure() {
    @JvmField var struct_size: Int = 0
    @JvmField var timeout_seconds: Int = 0
    @JvmField var extended_data: Pointer? = null
    @JvmField var notification: Pointer? = null
    @JvmField var flags: Int = 0
    /** 0: the client's request timeout (ABI 2.1; the field 2.0 called `reserved`). */
    @JvmField var request_timeout_ms: Int = 0

    init {
        struct_size = size()
    }
}

/** `beckon_answer_config` (ABI 2.1), for accept and refuse. */
@Structure.FieldOrder("struct_size", "request_timeout_ms", "extended_data")
internal class AnswerConfigStruct : Structure() {
    @JvmField var struct_size: Int = 0
    @JvmField var request_timeout_ms: Int = 0
    @JvmField var extended_data: Pointer? = null

    init {
        struct_size = size()
    }
}

/** `beckon_cancel_config` (ABI 2.1). */
@Structure.FieldOrder("struct_size", "request_timeout_ms", "invitees", "invitee_count", "extended_data")
internal class CancelConfigStruct : Structure() {
    @JvmField var struct_size: Int = 0
    @JvmField var request_timeout_ms: Int = 0
    @JvmField var invitees: Pointer? = null
    @JvmField var invitee_count: SizeT = SizeT()
    @JvmField var extended_data: Pointer? = null

    init {
        struct_size = size()
    }
}

/** `beckon_log_config` (ABI 2.1). */
@Structure.FieldOrder("struct_size", "max_level", "delivery", "reserved", "handler", "user_data")
internal class LogConfigStruct : Structure() {
    @JvmField var struct_size: Int = 0
    @JvmField var max_level: Int = 0
    @JvmField var delivery: Int = 0
    /** Must be 0. */
    @JvmField var reserved: Int = 0
    @JvmField var handler: LogCallback? = null
    @JvmField var user_data: Pointer? = null

    init {
        struct_size = size()
    }
}

/** `beckon_push_target` (ABI 2.2). */
@Structure.FieldOrder("struct_size", "provider", "token", "topic", "environment", "alert_token")
internal class PushTargetStruct : Structure() {
    @JvmField var struct_size: Int = 0
    @JvmField var provider: Int = 0
    @JvmField var token: Pointer? = null
    @JvmField var topic: Pointer? = null
    @JvmField var environment: Int = 0
    @JvmField var alert_token: Pointer? = null

    init {
        struct_size = size()
    }
}

/** `beckon_invitation_query` (ABI 2.3): 40 bytes on 64-bit platforms. */
@Structure.FieldOrder("struct_size", "role", "since_ms", "until_ms", "limit", "cursor")
internal class InvitationQueryStruct : Structure() {
    @JvmField var struct_size: Int = 0
    /** A `BECKON_HISTORY_*` value ([HistoryRole]). */
    @JvmField var role: Int = 0
    /** `uint64_t`; 0: no bound. */
    @JvmField var since_ms: Long = 0
    /** `uint64_t`; 0: no bound. */
    @JvmField var until_ms: Long = 0
    /** `uint32_t`; 0 means 20. */
    @JvmField var limit: Int = 0
    /** NULL for the first page. */
    @JvmField var cursor: Pointer? = null

    init {
        struct_size = size()
    }
}

@Structure.FieldOrder("struct_size", "secret", "max_invitees", "retention_ms")
internal class HubConfigStruct : Structure() {
    @JvmField var struct_size: Int = 0
    @JvmField var secret: Pointer? = null
    @JvmField var max_invitees: Int = 0
    @JvmField var retention_ms: Int = 0

    init {
        struct_size = size()
    }
}

/** `beckon_client_info`: filled by `beckon_client_get_info` (JNA reads it back after the call). */
@Structure.FieldOrder("struct_size", "connection_state", "user_id", "device_id")
internal class ClientInfoStruct : Structure() {
    @JvmField var struct_size: Int = 0
    @JvmField var connection_state: Int = 0
    @JvmField var user_id: ByteArray = ByteArray(ID_CAPACITY)
    @JvmField var device_id: ByteArray = ByteArray(ID_CAPACITY)

    init {
        struct_size = size()
    }

    companion object {
        /** `BECKON_ID_CAPACITY`. */
        const val ID_CAPACITY = 68
    }
}

/** The UTF-8 text of a NUL-terminated `char[]` field. */
internal fun readUtf8(field: ByteArray): String {
    var end = field.indexOf(0.toByte())
    if (end < 0) end = field.size
    return String(field, 0, end, Charsets.UTF_8)
}

// Output structs, read from the pointer a callback receives. Everything is
// copied into Kotlin values before the callback returns.

@Structure.FieldOrder("user_id", "state")
internal class InviteeStateStruct : Structure {
    @JvmField var user_id: Pointer? = null
    @JvmField var state: Int = 0

    constructor() : super()
    constructor(p: Pointer) : super(p) {
        read()
    }
}

@Structure.FieldOrder("error", "error_message")
internal class ResultStruct(p: Pointer) : Structure(p) {
    @JvmField var error: Int = 0
    @JvmField var error_message: Pointer? = null

    init {
        read()
    }
}

@Structure.FieldOrder("error", "error_message", "invitation_id", "error_invitees", "error_invitee_count")
internal class SendResultStruct(p: Pointer) : Structure(p) {
    @JvmField var error: Int = 0
    @JvmField var error_message: Pointer? = null
    @JvmField var invitation_id: Pointer? = null
    @JvmField var error_invitees: Pointer? = null
    @JvmField var error_invitee_count: SizeT = SizeT()

    init {
        read()
    }
}

@Structure.FieldOrder("error", "error_message", "error_invitees", "error_invitee_count")
internal class CancelResultStruct(p: Pointer) : Structure(p) {
    @JvmField var error: Int = 0
    @JvmField var error_message: Pointer? = null
    @JvmField var error_invitees: Pointer? = null
    @JvmField var error_invitee_count: SizeT = SizeT()

    init {
        read()
    }
}

/** `beckon_invitation_page_result` (ABI 2.3). */
@Structure.FieldOrder("error", "error_message", "invitations", "invitation_count", "next_cursor")
internal class InvitationPageResultStruct(p: Pointer) : Structure(p) {
    @JvmField var error: Int = 0
    @JvmField var error_message: Pointer? = null
    /** A C array of `beckon_invitation_summary` ([InvitationSummaryStruct]); NULL when empty. */
    @JvmField var invitations: Pointer? = null
    @JvmField var invitation_count: SizeT = SizeT()
    /** "" on the last page. */
    @JvmField var next_cursor: Pointer? = null

    init {
        read()
    }
}

/** `beckon_invitation_summary` (ABI 2.3): 56 bytes on 64-bit platforms. */
@Structure.FieldOrder("invitation_id", "inviter", "invitees", "invitee_count", "created_ms", "ended_ms", "sent_by_server")
internal class InvitationSummaryStruct : Structure {
    @JvmField var invitation_id: Pointer? = null
    @JvmField var inviter: Pointer? = null
    @JvmField var invitees: Pointer? = null
    @JvmField var invitee_count: SizeT = SizeT()
    /** `uint64_t` Unix milliseconds. */
    @JvmField var created_ms: Long = 0
    /** `uint64_t` Unix milliseconds. */
    @JvmField var ended_ms: Long = 0
    /** 1 if the server API sent it on the inviter's behalf, else 0. */
    @JvmField var sent_by_server: Int = 0

    constructor() : super()
    constructor(p: Pointer) : super(p) {
        read()
    }
}

@Structure.FieldOrder(
    "kind", "invitation_id", "inviter", "user_id", "state", "extended_data", "invitees", "invitee_count",
    "notification", "seconds_left", "connection_state", "connection_reason",
    "push_provider", "push_outcome", "device_id", "push_reason"
)
internal class EventStruct(p: Pointer) : Structure(p) {
    @JvmField var kind: Int = 0
    @JvmField var invitation_id: Pointer? = null
    @JvmField var inviter: Pointer? = null
    @JvmField var user_id: Pointer? = null
    @JvmField var state: Int = 0
    @JvmField var extended_data: Pointer? = null
    @JvmField var invitees: Pointer? = null
    @JvmField var invitee_count: SizeT = SizeT()
    /** A `const beckon_event_notification *` ([EventNotificationStruct]), or NULL. */
    @JvmField var notification: Pointer? = null
    @JvmField var seconds_left: Int = 0
    @JvmField var connection_state: Int = 0
    @JvmField var connection_reason: Int = 0
    // ABI 2.2: INVITATION_PUSH_RESULT's fields.
    @JvmField var push_provider: Int = 0
    @JvmField var push_outcome: Int = 0
    @JvmField var device_id: Pointer? = null
    @JvmField var push_reason: Pointer? = null

    init {
        read()
    }
}

/**
 * `beckon_event_notification`: the notification an INVITATION_RECEIVED event
 * carries (the library sets its `struct_size`; a newer one may add fields
 * after these, which are not read).
 */
@Structure.FieldOrder("struct_size", "title", "message", "resource_id", "payload")
internal class EventNotificationStruct(p: Pointer) : Structure(p) {
    @JvmField var struct_size: Int = 0
    @JvmField var title: Pointer? = null
    @JvmField var message: Pointer? = null
    @JvmField var resource_id: Pointer? = null
    @JvmField var payload: Pointer? = null

    init {
        read()
    }
}

/** A NUL-terminated UTF-8 string from C; "" for NULL. */
internal fun readUtf8(p: Pointer?): String = p?.getString(0, "UTF-8") ?: ""

/** Reads a C array of `beckon_invitee`. */
internal fun readInvitees(array: Pointer?, count: SizeT): List<InviteeStatus> {
    val n = count.toLong()
    if (array == null || n <= 0L) return emptyList()
    require(n <= Int.MAX_VALUE) { "invitee count $n" }
    val first = InviteeStateStruct(array)
    @Suppress("UNCHECKED_CAST")
    val all = first.toArray(n.toInt()) as Array<InviteeStateStruct>
    return all.map { InviteeStatus(readUtf8(it.user_id), InviteeState.fromValue(it.state)) }
}

/** Reads a C array of `beckon_invitation_summary`, invitees included. */
internal fun readInvitationSummaries(array: Pointer?, count: SizeT): List<InvitationSummary> {
    val n = count.toLong()
    if (array == null || n <= 0L) return emptyList()
    require(n <= Int.MAX_VALUE) { "invitation count $n" }
    val first = InvitationSummaryStruct(array)
    @Suppress("UNCHECKED_CAST")
    val all = first.toArray(n.toInt()) as Array<InvitationSummaryStruct>
    return all.map {
        InvitationSummary(
            readUtf8(it.invitation_id), readUtf8(it.inviter), readInvitees(it.invitees, it.invitee_count),
            it.created_ms, it.ended_ms, it.sent_by_server != 0
        )
    }
}

/** Loads libbeckon once, checks its ABI version, and hands out the interface. */
internal object NativeLibrary {
    /** System property naming the library file (or a name JNA can find). */
    const val PATH_PROPERTY = "beckon.library"

    /** Environment variable naming the library file, used when the property is not set. */
    const val PATH_ENV = "BECKON_LIBRARY"

    val api: NativeApi by lazy { load() }

    private fun load(): NativeApi {
        val location = System.getProperty(PATH_PROPERTY)?.takeIf { it.isNotEmpty() }
            ?: System.getenv(PATH_ENV)?.takeIf { it.isNotEmpty() }
            ?: "beckon"
        val api = try {
            Native.load(location, NativeApi::class.java)
        } catch (e: UnsatisfiedLinkError) {
            val hint = UnsatisfiedLinkError(
                "cannot load libbeckon from '$location': ${e.message}. Set -D$PATH_PROPERTY=/path/to/libbeckon.so, " +
                    "the $PATH_ENV environment variable, or -Djna.library.path=DIR"
            )
            hint.initCause(e)
            throw hint
        }
        checkAbi(api.beckon_abi_version(), Beckon.BINDING_ABI_VERSION, readUtf8(api.beckon_version()), location)
        return api
    }

    /**
     * Throws [IncompatibleLibraryError] unless the loaded library serves the
     * ABI this binding was written for: the same major version, and a minor
     * version at least the binding's ([Beckon.isAbiCompatible]).
     */
    fun checkAbi(loaded: Int, expected: Int, libraryVersion: String, location: String) {
        if (!Beckon.isAbiCompatible(loaded, expected)) {
            throw IncompatibleLibraryError(
                "libbeckon $libraryVersion at '$location' has ABI version ${Beckon.abiVersionText(loaded)}; " +
                    "this binding needs ABI ${Beckon.abiVersionText(expected)} " +
                    "(the same major, an equal or newer minor)",
                loaded, expected
            )
        }
    }

    /**
     * Library threads that call into Java stay attached (as daemon threads, so
     * they never hold up JVM exit) until they end, instead of being attached
     * and detached around every callback.
     */
    fun keepThreadsAttached(callback: Callback, name: String) {
        Native.setCallbackThreadInitializer(callback, CallbackThreadInitializer(true, false, name))
    }
}
