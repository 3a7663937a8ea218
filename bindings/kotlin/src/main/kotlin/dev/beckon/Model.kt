// The values the API takes and returns: configuration, invitation results and
// the enumerations of the C ABI (whose numeric values never change).

package dev.beckon

/** Where a client's callbacks and events run. */
enum class DispatchMode(val value: Int) {
    /**
     * On a thread the client owns (the default): futures complete and the
     * listener runs there, one at a time, in order.
     */
    THREAD(0),

    /**
     * Queued until the application calls [BeckonClient.poll], which runs them
     * on the polling thread (UI loops, single-threaded runtimes).
     */
    POLL(1),

    /**
     * On a small pool of library threads shared by every pool-mode client of
     * the process (as many as the CPUs, 2 to 8): each client's futures and
     * listener still run one at a time, in order, never on the caller's
     * thread. For processes with many clients (a test rig, a gateway), where a
     * thread per client would cost more than the callbacks. A slow callback
     * holds a pool thread the other pool clients wait for: keep them short.
     */
    POOL(2)
}

/**
 * How to create a [BeckonClient].
 *
 * From Java: `new ClientConfig("memory://demo")`, then the `with...` methods
 * for the rest.
 */
data class ClientConfig @JvmOverloads constructor(
    /** Required. `memory://NAME` for the in-process hub NAME. */
    val serverUrl: String,
    /** This device's id (1 to 64 bytes of `[A-Za-z0-9_.@:+-]`); null for a random one. */
    val deviceId: String? = null,
    /** Where callbacks run; see [DispatchMode]. */
    val dispatchMode: DispatchMode = DispatchMode.THREAD,
    /** How long a request may wait for the server, in ms; 0 means the library's default (10 000 ms). */
    val requestTimeoutMillis: Int = 0
) {
    fun withDeviceId(deviceId: String?): ClientConfig = copy(deviceId = deviceId)
    fun withDispatchMode(dispatchMode: DispatchMode): ClientConfig = copy(dispatchMode = dispatchMode)
    fun withRequestTimeoutMillis(requestTimeoutMillis: Int): ClientConfig =
        copy(requestTimeoutMillis = requestTimeoutMillis)
}

/** The state of one invitee of an invitation (`BECKON_INVITEE_*`). */
enum class InviteeState(val value: Int) {
    /** Sent, not yet delivered to any device of this invitee. */
    INVITING(0),
    /** This invitee accepted (terminal). */
    ACCEPTED(1),
    /** This invitee refused (terminal). */
    REJECTED(2),
    /** The inviter cancelled for this invitee (terminal). */
    CANCELLED(3),
    /** No device of this invitee was online when the invitation was sent. */
    OFFLINE(4),
    /** Delivered to at least one device of this invitee. */
    RECEIVED(5),
    /** No answer before the deadline (terminal). */
    TIMEOUT(6),
    /** A value this binding does not know (from a newer library). */
    UNKNOWN(-1);

    /** True for the states an invitee never leaves. */
    val isTerminal: Boolean
        get() = this == ACCEPTED || this == REJECTED || this == CANCELLED || this == TIMEOUT

    companion object {
        @JvmStatic
        fun fromValue(value: Int): InviteeState = values().firstOrNull { it.value == value && it != UNKNOWN } ?: UNKNOWN
    }
}

/** A user id with its state in one invitation. */
data class InviteeStatus(val userId: String, val state: InviteeState)

/**
 * What an offline device's push notification shows: carried to invitees in
 * INVITATION_RECEIVED, and in the ring pushed to their devices that are not
 * connected (docs/PUSH.md). Limits: title 256 bytes, message 1 KiB, resource
 * id 64 bytes, payload 4 KiB (UTF-8).
 */
data class Notification @JvmOverloads constructor(
    val title: String = "",
    val message: String = "",
    val resourceId: String = "",
    val payload: String = ""
)

/** The result of [BeckonClient.sendInvitation]. */
data class SendResult(
    /** The invitation's id, made by the hub: non-empty. */
    val invitationId: String,
    /** Invitees no device of whom was online at send time (state [InviteeState.OFFLINE]). */
    val errorInvitees: List<InviteeStatus>
)

/** What [BeckonClient.info] tells about a client, at the moment of the call. */
data class ClientInfo(
    /**
     * The state of the last [BeckonEvent.ConnectionStateChanged] the client
     * dispatched ([ConnectionState.DISCONNECTED] before any): the state its
     * listener has been told.
     */
    val connectionState: ConnectionState,
    /** The logged-in user; null unless a login has succeeded and no logout (or end of session) has happened since. */
    val userId: String?,
    /** The client's device id: [ClientConfig.deviceId], or the random one the library made. */
    val deviceId: String
)

/** The result of [BeckonClient.cancelInvitation]. */
data class CancelResult(
    /** Invitees that could not be cancelled (already in a terminal state), with that state. */
    val errorInvitees: List<InviteeStatus>
)

/** Which of the user's ended invitations [BeckonClient.queryInvitations] lists (`BECKON_HISTORY_*`, ABI 2.3). */
enum class HistoryRole(val value: Int) {
    /** Sent and received: the default. */
    ANY(0),
    /** Those the user sent (from a device, or the server API on its behalf). */
    SENT(1),
    /** Those the user was invited to. */
    RECEIVED(2)
}

/** One ended invitation of an [InvitationPage] (ABI 2.3). */
data class InvitationSummary(
    val invitationId: String,
    /** The user who sent it. */
    val inviter: String,
    /** Every invitee with its final state. */
    val invitees: List<InviteeStatus>,
    /** When it was sent, in Unix milliseconds. */
    val createdMs: Long,
    /** When it ended (its last invitee reached a final state), in Unix milliseconds. */
    val endedMs: Long,
    /** True if the server API sent it on the inviter's behalf. */
    val sentByServer: Boolean
)

/** The result of [BeckonClient.queryInvitations]: one page of the user's ended invitations (ABI 2.3). */
data class InvitationPage(
    /** Newest sent first (those sent in the same millisecond in the order of their ids). */
    val invitations: List<InvitationSummary>,
    /** The `cursor` that asks for the next page; null on the last page. */
    val nextCursor: String?
)

/** The service a push target is reached through (`BECKON_PUSH_PROVIDER_*`, ABI 2.2). */
enum class PushProvider(val value: Int) {
    /** APNs alert pushes. */
    APNS(1),
    /** APNs VoIP pushes, for PushKit and CallKit. */
    APNS_VOIP(2),
    /** Firebase Cloud Messaging, high-priority data messages. */
    FCM(3),
    /** A signed HTTP POST to the app's own backend. */
    WEBHOOK(4),
    UNKNOWN(-1);

    companion object {
        @JvmStatic
        fun fromValue(value: Int): PushProvider = values().firstOrNull { it.value == value && it != UNKNOWN } ?: UNKNOWN
    }
}

/** Which APNs servers a device token belongs to (`BECKON_APNS_*`, ABI 2.2). */
enum class ApnsEnvironment(val value: Int) {
    PRODUCTION(0),
    /** The tokens of development builds. */
    SANDBOX(1)
}

/** What happened to one push (`BECKON_PUSH_*`, ABI 2.2). */
enum class PushOutcome(val value: Int) {
    SENT(1),
    /** Refused by the provider or not delivered; the event's `reason` says why. */
    FAILED(2),
    /** The invitee was offline and none of its devices has a push target. */
    NO_TARGET(3),
    UNKNOWN(-1);

    companion object {
        @JvmStatic
        fun fromValue(value: Int): PushOutcome = values().firstOrNull { it.value == value && it != UNKNOWN } ?: UNKNOWN
    }
}

/**
 * Where this device is rung by push while it is not connected
 * ([BeckonClient.setPushTarget]). [token] is the APNs device token (hex;
 * PushKit's for APNS_VOIP), the FCM registration token, or for a webhook what
 * the app's backend knows the device by. [topic] (the bundle id; null for the
 * server's) and [environment] are for APNs; [alertToken] (the regular APNs
 * token, where stop pushes go as alerts) for APNS_VOIP.
 */
data class PushTarget @JvmOverloads constructor(
    val provider: PushProvider,
    val token: String,
    val topic: String? = null,
    val environment: ApnsEnvironment = ApnsEnvironment.PRODUCTION,
    val alertToken: String? = null
)

/** A client's connection state (`BECKON_CONNECTION_*`). */
enum class ConnectionState(val value: Int) {
    DISCONNECTED(0),
    CONNECTING(1),
    CONNECTED(2),
    RECONNECTING(3),
    UNKNOWN(-1);

    companion object {
        @JvmStatic
        fun fromValue(value: Int): ConnectionState = values().firstOrNull { it.value == value && it != UNKNOWN } ?: UNKNOWN
    }
}

/** Why the connection state changed (`BECKON_REASON_*`). */
enum class ConnectionReason(val value: Int) {
    LOGIN(0),
    LOGOUT(1),
    NETWORK(2),
    KICKED_OUT(3),
    TOKEN_EXPIRED(4),
    SERVER_SHUTDOWN(5),
    UNKNOWN(-1);

    companion object {
        @JvmStatic
        fun fromValue(value: Int): ConnectionReason = values().firstOrNull { it.value == value && it != UNKNOWN } ?: UNKNOWN
    }
}

/** Log levels of [Beckon.setLogHandler] (`BECKON_LOG_*`). */
enum class LogLevel(val value: Int) {
    OFF(0),
    ERROR(1),
    WARN(2),
    INFO(3),
    DEBUG(4),
    TRACE(5);

    companion object {
        @JvmStatic
        fun fromValue(value: Int): LogLevel = values().firstOrNull { it.value == value } ?: TRACE
    }
}

/** How log records reach the handler of [Beckon.setLogHandler] (`BECKON_LOG_*` delivery). */
enum class LogDelivery(val value: Int) {
    /**
     * At once, on whichever library thread logs, concurrently, possibly while
     * the library holds internal locks: the handler must be thread-safe and
     * quick, and must call no Beckon function.
     */
    DIRECT(0),

    /**
     * Queued, and delivered in order on one library thread (`beckon-log`)
     * outside every library lock: the handler may take its time and call the
     * binding. At most 10 000 records wait; extra ones are dropped, and a
     * WARN record with sub-tag "log" says how many. The default.
     */
    QUEUED(1)
}

/** Receives libbeckon's log lines; see [Beckon.setLogHandler]. */
interface BeckonLogHandler {
    /**
     * One log line: [tag] is always "signaling", [subTag] the layer ("api",
     * "room", "client", "hub", "log"). With [LogDelivery.QUEUED] (the default)
     * it runs on one library thread, one record at a time, and may call the
     * binding; with [LogDelivery.DIRECT], on any library thread, concurrently:
     * then be thread-safe and quick, and call no Beckon function from here.
     */
    fun onLog(level: LogLevel, tag: String, subTag: String, message: String)
}
