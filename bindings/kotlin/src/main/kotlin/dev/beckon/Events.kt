// Events as typed values: one subclass of the sealed BeckonEvent per
// `BECKON_EVENT_*` kind, with only the fields that kind carries.

package dev.beckon

/** The kinds of event (`BECKON_EVENT_*`). */
enum class EventKind(val value: Int) {
    CONNECTION_STATE_CHANGED(1),
    TOKEN_WILL_EXPIRE(2),
    INVITATION_RECEIVED(3),
    INVITATION_CANCELLED(4),
    INVITATION_ACCEPTED(5),
    INVITATION_REFUSED(6),
    INVITATION_TIMEOUT(7),
    INVITATION_RESPONSE_TIMEOUT(8),
    INVITATION_USER_STATE_CHANGED(9),
    /** ABI 2.2. */
    INVITATION_PUSH_RESULT(10),
    UNKNOWN(-1);

    companion object {
        @JvmStatic
        fun fromValue(value: Int): EventKind = values().firstOrNull { it.value == value && it != UNKNOWN } ?: UNKNOWN
    }
}

/**
 * Something that happened to a client. In Kotlin, `when (event) { is
 * BeckonEvent.InvitationReceived -> ... }`; in Java 17, `if (event instanceof
 * BeckonEvent.InvitationReceived r) ...`.
 */
sealed class BeckonEvent {
    abstract val kind: EventKind

    /** The connection changed state. */
    data class ConnectionStateChanged(val state: ConnectionState, val reason: ConnectionReason) : BeckonEvent() {
        override val kind get() = EventKind.CONNECTION_STATE_CHANGED
    }

    /** The session's token expires in [secondsLeft] seconds: renew it with [BeckonClient.renewToken]. */
    data class TokenWillExpire(val secondsLeft: Int) : BeckonEvent() {
        override val kind get() = EventKind.TOKEN_WILL_EXPIRE
    }

    /** This device is invited: ring. */
    data class InvitationReceived(
        val invitationId: String,
        val inviter: String,
        /** Every invitee, with their state. */
        val invitees: List<InviteeStatus>,
        val extendedData: String,
        /** The notification the inviter attached, or null. */
        val notification: Notification?,
        /** Seconds until the invitation times out. */
        val secondsLeft: Int
    ) : BeckonEvent() {
        override val kind get() = EventKind.INVITATION_RECEIVED
    }

    /** The inviter cancelled this invitation for this user: stop ringing. */
    data class InvitationCancelled(val invitationId: String, val inviter: String, val extendedData: String) :
        BeckonEvent() {
        override val kind get() = EventKind.INVITATION_CANCELLED
    }

    /** To the inviter: [invitee] accepted. */
    data class InvitationAccepted(val invitationId: String, val invitee: String, val extendedData: String) :
        BeckonEvent() {
        override val kind get() = EventKind.INVITATION_ACCEPTED
    }

    /** To the inviter: [invitee] refused. */
    data class InvitationRefused(val invitationId: String, val invitee: String, val extendedData: String) :
        BeckonEvent() {
        override val kind get() = EventKind.INVITATION_REFUSED
    }

    /** To an invitee: the invitation timed out before this user answered. */
    data class InvitationTimeout(val invitationId: String, val inviter: String) : BeckonEvent() {
        override val kind get() = EventKind.INVITATION_TIMEOUT
    }

    /** To the inviter: these invitees did not answer in time. */
    data class InvitationResponseTimeout(val invitationId: String, val invitees: List<InviteeStatus>) :
        BeckonEvent() {
        override val kind get() = EventKind.INVITATION_RESPONSE_TIMEOUT
    }

    /** To every participant: [userId]'s state in the invitation changed. */
    data class InvitationUserStateChanged(
        val invitationId: String,
        val userId: String,
        val state: InviteeState,
        val extendedData: String
    ) : BeckonEvent() {
        override val kind get() = EventKind.INVITATION_USER_STATE_CHANGED
    }

    /**
     * To the inviter (ABI 2.2): what happened to the push for one device of
     * [invitee], which had no device online at send. One per device pushed
     * ([PushOutcome.SENT], or [PushOutcome.FAILED] with the provider's
     * [reason]), or one [PushOutcome.NO_TARGET] ([deviceId] and [provider]
     * null) when none of its devices has a push target.
     */
    data class InvitationPushResult(
        val invitationId: String,
        val invitee: String,
        val deviceId: String?,
        val provider: PushProvider?,
        val outcome: PushOutcome,
        val reason: String
    ) : BeckonEvent() {
        override val kind get() = EventKind.INVITATION_PUSH_RESULT
    }

    /** An event kind this binding does not know (from a newer library). */
    data class Unknown(val rawKind: Int) : BeckonEvent() {
        override val kind get() = EventKind.UNKNOWN
    }

    internal companion object {
        /** Copies a C `beckon_event` into a Kotlin value (inside the C callback). */
        fun fromNative(e: EventStruct): BeckonEvent = when (EventKind.fromValue(e.kind)) {
            EventKind.CONNECTION_STATE_CHANGED -> ConnectionStateChanged(
                ConnectionState.fromValue(e.connection_state), ConnectionReason.fromValue(e.connection_reason)
            )
            EventKind.TOKEN_WILL_EXPIRE -> TokenWillExpire(e.seconds_left)
            EventKind.INVITATION_RECEIVED -> InvitationReceived(
                readUtf8(e.invitation_id), readUtf8(e.inviter), readInvitees(e.invitees, e.invitee_count),
                readUtf8(e.extended_data), e.notification?.let { readNotification(it) }, e.seconds_left
            )
            EventKind.INVITATION_CANCELLED -> InvitationCancelled(
                readUtf8(e.invitation_id), readUtf8(e.inviter), readUtf8(e.extended_data)
            )
            EventKind.INVITATION_ACCEPTED -> InvitationAccepted(
                readUtf8(e.invitation_id), readUtf8(e.user_id), readUtf8(e.extended_data)
            )
            EventKind.INVITATION_REFUSED -> InvitationRefused(
                readUtf8(e.invitation_id), readUtf8(e.user_id), readUtf8(e.extended_data)
            )
            EventKind.INVITATION_TIMEOUT -> InvitationTimeout(readUtf8(e.invitation_id), readUtf8(e.inviter))
            EventKind.INVITATION_RESPONSE_TIMEOUT -> InvitationResponseTimeout(
                readUtf8(e.invitation_id), readInvitees(e.invitees, e.invitee_count)
            )
            EventKind.INVITATION_USER_STATE_CHANGED -> InvitationUserStateChanged(
                readUtf8(e.invitation_id), readUtf8(e.user_id), InviteeState.fromValue(e.state),
                readUtf8(e.extended_data)
            )
            EventKind.INVITATION_PUSH_RESULT -> InvitationPushResult(
                readUtf8(e.invitation_id), readUtf8(e.user_id), readUtf8(e.device_id).ifEmpty { null },
                if (e.push_provider == 0) null else PushProvider.fromValue(e.push_provider),
                PushOutcome.fromValue(e.push_outcome), readUtf8(e.push_reason)
            )
            EventKind.UNKNOWN -> Unknown(e.kind)
        }

        private fun readNotification(p: com.sun.jna.Pointer): Notification {
            val n = EventNotificationStruct(p)
            return Notification(readUtf8(n.title), readUtf8(n.message), readUtf8(n.resource_id), readUtf8(n.payload))
        }
    }
}

/**
 * Receives a client's events, one at a time and in order with the completion
 * of its futures: on the client's dispatcher thread (a pool thread in pool
 * mode), or inside [BeckonClient.poll] in poll mode. It may call the client
 * again (even [BeckonClient.close]); it must not block waiting for a future of
 * the same client, since that future completes only after it returns.
 *
 * From Java, a lambda: `client.setEventListener(event -> ...)`. From Kotlin,
 * `client.setEventListener { event -> ... }`.
 */
interface BeckonEventListener {
    fun onEvent(event: BeckonEvent)
}
