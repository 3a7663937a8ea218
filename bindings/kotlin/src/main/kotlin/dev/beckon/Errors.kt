// Every C error code has its own exception class, all under the sealed
// BeckonException, so that `catch (e: NotPermittedException)` (or a `when`
// over the subclasses) says exactly what went wrong.

package dev.beckon

/**
 * The error codes of the C ABI (`BECKON_ERROR_*`), with their numeric values.
 * The values never change; [UNKNOWN] stands for a code this binding does not
 * know (a newer library).
 */
enum class ErrorCode(
    /** The numeric value in the C ABI. */
    val value: Int
) {
    INVALID_ARGUMENT(1),
    TOO_MANY_INVITEES(2),
    PAYLOAD_TOO_LARGE(3),
    NOT_LOGGED_IN(4),
    AUTH_FAILED(5),
    TOKEN_EXPIRED(6),
    INVITATION_NOT_FOUND(7),
    NOT_PERMITTED(8),
    ALREADY_ANSWERED(9),
    INVITATION_CLOSED(10),
    NETWORK(11),
    REQUEST_TIMEOUT(12),
    RATE_LIMITED(13),
    SHUTDOWN(14),
    SERVER(15),
    INTERNAL(16),
    /** Since ABI 2.1: see [WouldDeadlockException]. */
    WOULD_DEADLOCK(17),
    UNKNOWN(-1);

    companion object {
        /** The code with this numeric value, or [UNKNOWN]. */
        @JvmStatic
        fun fromValue(value: Int): ErrorCode = values().firstOrNull { it.value == value && it != UNKNOWN } ?: UNKNOWN
    }
}

/**
 * An error reported by libbeckon, or found by this binding before it called
 * the library (then with the code the library would have used).
 *
 * Operations that return a [java.util.concurrent.CompletableFuture] complete
 * it exceptionally with one of these (`get()` wraps it in an
 * `ExecutionException`, `join()` in a `CompletionException`; the suspend
 * variants throw it as it is). Synchronous functions throw it.
 */
sealed class BeckonException(
    /** Which error this is. */
    val code: ErrorCode,
    /** The numeric code as the library reported it (differs from `code.value` only for [ErrorCode.UNKNOWN]). */
    val rawCode: Int,
    message: String
) : RuntimeException(message) {

    companion object {
        /**
         * The exception for a C error code and message. An empty message is
         * replaced by the library's description of the code.
         */
        @JvmStatic
        fun of(code: Int, message: String): BeckonException {
            val text = if (message.isNotEmpty()) message else describe(code)
            return when (ErrorCode.fromValue(code)) {
                ErrorCode.INVALID_ARGUMENT -> InvalidArgumentException(text)
                ErrorCode.TOO_MANY_INVITEES -> TooManyInviteesException(text)
                ErrorCode.PAYLOAD_TOO_LARGE -> PayloadTooLargeException(text)
                ErrorCode.NOT_LOGGED_IN -> NotLoggedInException(text)
                ErrorCode.AUTH_FAILED -> AuthFailedException(text)
                ErrorCode.TOKEN_EXPIRED -> TokenExpiredException(text)
                ErrorCode.INVITATION_NOT_FOUND -> InvitationNotFoundException(text)
                ErrorCode.NOT_PERMITTED -> NotPermittedException(text)
                ErrorCode.ALREADY_ANSWERED -> AlreadyAnsweredException(text)
                ErrorCode.INVITATION_CLOSED -> InvitationClosedException(text)
                ErrorCode.NETWORK -> NetworkException(text)
                ErrorCode.REQUEST_TIMEOUT -> RequestTimeoutException(text)
                ErrorCode.RATE_LIMITED -> RateLimitedException(text)
                ErrorCode.SHUTDOWN -> ShutdownException(text)
                ErrorCode.SERVER -> ServerException(text)
                ErrorCode.INTERNAL -> InternalException(text)
                ErrorCode.WOULD_DEADLOCK -> WouldDeadlockException(text)
                ErrorCode.UNKNOWN -> UnknownErrorException(code, text)
            }
        }

        private fun describe(code: Int): String = try {
            readUtf8(NativeLibrary.api.beckon_error_description(code))
        } catch (e: LinkageError) {
            "error code $code"
        }
    }
}

/** NULL, empty, malformed or out-of-range input; the message names the field. */
class InvalidArgumentException(message: String) : BeckonException(ErrorCode.INVALID_ARGUMENT, 1, message)

/** More distinct invitees than the hub's limit. */
class TooManyInviteesException(message: String) : BeckonException(ErrorCode.TOO_MANY_INVITEES, 2, message)

/** Extended data or a notification field over its limit. */
class PayloadTooLargeException(message: String) : BeckonException(ErrorCode.PAYLOAD_TOO_LARGE, 3, message)

/** The operation needs a logged-in session. */
class NotLoggedInException(message: String) : BeckonException(ErrorCode.NOT_LOGGED_IN, 4, message)

/** Bad token, or a token for another user. */
class AuthFailedException(message: String) : BeckonException(ErrorCode.AUTH_FAILED, 5, message)

/** The token's expiry has passed. */
class TokenExpiredException(message: String) : BeckonException(ErrorCode.TOKEN_EXPIRED, 6, message)

/** Unknown invitation id, or one forgotten after the hub's retention period. */
class InvitationNotFoundException(message: String) : BeckonException(ErrorCode.INVITATION_NOT_FOUND, 7, message)

/** Not the inviter (cancel) or not an invitee (accept, refuse). */
class NotPermittedException(message: String) : BeckonException(ErrorCode.NOT_PERMITTED, 8, message)

/** This invitee already accepted or refused (possibly on another device). */
class AlreadyAnsweredException(message: String) : BeckonException(ErrorCode.ALREADY_ANSWERED, 9, message)

/** Cancelled or timed out for this invitee, or the invitation ended. */
class InvitationClosedException(message: String) : BeckonException(ErrorCode.INVITATION_CLOSED, 10, message)

/** The server cannot be reached, or the connection dropped mid-request. */
class NetworkException(message: String) : BeckonException(ErrorCode.NETWORK, 11, message)

/** No answer from the server within the client's request timeout. */
class RequestTimeoutException(message: String) : BeckonException(ErrorCode.REQUEST_TIMEOUT, 12, message)

/** The server refused the request under its rate limit. */
class RateLimitedException(message: String) : BeckonException(ErrorCode.RATE_LIMITED, 13, message)

/**
 * The client was closed (or logged out) before the operation completed, or
 * was already closed when it was called. The operation may still have been
 * carried out at the hub: this means "outcome not delivered".
 */
class ShutdownException(message: String) : BeckonException(ErrorCode.SHUTDOWN, 14, message)

/** The server failed to process the request. */
class ServerException(message: String) : BeckonException(ErrorCode.SERVER, 15, message)

/** A bug in libbeckon (including a caught panic); the message has the detail. */
class InternalException(message: String) : BeckonException(ErrorCode.INTERNAL, 16, message)

/**
 * [BeckonClient.close] was called from another client's callback while a
 * callback of the client being closed is itself closing that other client:
 * each would wait for the other forever. Nothing was done: the client is
 * still open; close it later, outside the callbacks. (ABI 2.1.)
 */
class WouldDeadlockException(message: String) : BeckonException(ErrorCode.WOULD_DEADLOCK, 17, message)

/** A code this binding does not know, from a library newer than it. */
class UnknownErrorException(rawCode: Int, message: String) : BeckonException(ErrorCode.UNKNOWN, rawCode, message)

/**
 * The loaded libbeckon does not serve the ABI this binding was written for:
 * another major version, or an older minor version ([Beckon.isAbiCompatible]).
 * Thrown (like `UnsatisfiedLinkError`) by the first use of the library.
 */
class IncompatibleLibraryError(
    message: String,
    /** `beckon_abi_version()` of the loaded library, `(major shl 16) or minor`. */
    val loadedAbiVersion: Int,
    /** The ABI version this binding needs ([Beckon.BINDING_ABI_VERSION]). */
    val expectedAbiVersion: Int
) : LinkageError(message)
