// Suspend variants of the client's operations (kotlinx-coroutines). Each
// starts the same C operation as its CompletableFuture twin and suspends until
// it completes; a failure is thrown as its BeckonException subclass, not
// wrapped. Cancelling the coroutine stops the wait, not the operation (the
// library has no cancel for a request in flight): it still completes.
@file:JvmName("BeckonCoroutines")

package dev.beckon

import kotlinx.coroutines.suspendCancellableCoroutine
import java.util.concurrent.CompletableFuture
import java.util.concurrent.CompletionException
import kotlin.coroutines.resume

/** Suspends until this future completes; throws its cause unwrapped. */
internal suspend fun <T> CompletableFuture<T>.awaitCompletion(): T {
    // The continuation is resumed with a value in every case: a value resumes
    // a cancelled continuation silently, where an exception would be reported
    // as unhandled when the operation completes after the wait was cancelled.
    val outcome = suspendCancellableCoroutine<Outcome<T>> { continuation ->
        whenComplete { value, error -> continuation.resume(Outcome(value, error)) }
    }
    val error = outcome.error
    if (error == null) {
        @Suppress("UNCHECKED_CAST")
        return outcome.value as T
    }
    throw (error as? CompletionException)?.cause ?: error
}

private class Outcome<T>(val value: T?, val error: Throwable?)

/** Suspending [BeckonClient.login]. */
suspend fun BeckonClient.loginAwait(userId: String, token: String? = null) {
    login(userId, token).awaitCompletion()
}

/** Suspending [BeckonClient.logout]. */
suspend fun BeckonClient.logoutAwait() {
    logout().awaitCompletion()
}

/** Suspending [BeckonClient.renewToken]. */
suspend fun BeckonClient.renewTokenAwait(token: String) {
    renewToken(token).awaitCompletion()
}

/** Suspending [BeckonClient.setPushTarget]. */
suspend fun BeckonClient.setPushTargetAwait(target: PushTarget) {
    setPushTarget(target).awaitCompletion()
}

/** Suspending [BeckonClient.clearPushTarget]. */
suspend fun BeckonClient.clearPushTargetAwait() {
    clearPushTarget().awaitCompletion()
}

/** Suspending [BeckonClient.sendInvitation]. */
suspend fun BeckonClient.sendInvitationAwait(
    invitees: List<String>,
    timeoutSeconds: Int,
    extendedData: String = "",
    notification: Notification? = null,
    onlineOnly: Boolean = false,
    requestTimeoutMillis: Int = 0
): SendResult =
    sendInvitation(invitees, timeoutSeconds, extendedData, notification, onlineOnly, requestTimeoutMillis).awaitCompletion()

/** Suspending [BeckonClient.cancelInvitation]. */
suspend fun BeckonClient.cancelInvitationAwait(
    invitationId: String,
    invitees: List<String>? = null,
    extendedData: String? = null,
    requestTimeoutMillis: Int = 0
): CancelResult = cancelInvitation(invitationId, invitees, extendedData, requestTimeoutMillis).awaitCompletion()

/** Suspending [BeckonClient.acceptInvitation]. */
suspend fun BeckonClient.acceptInvitationAwait(
    invitationId: String,
    extendedData: String? = null,
    requestTimeoutMillis: Int = 0
) {
    acceptInvitation(invitationId, extendedData, requestTimeoutMillis).awaitCompletion()
}

/** Suspending [BeckonClient.refuseInvitation]. */
suspend fun BeckonClient.refuseInvitationAwait(
    invitationId: String,
    extendedData: String? = null,
    requestTimeoutMillis: Int = 0
) {
    refuseInvitation(invitationId, extendedData, requestTimeoutMillis).awaitCompletion()
}

/** Suspending [BeckonClient.queryInvitations]. */
suspend fun BeckonClient.queryInvitationsAwait(
    role: HistoryRole = HistoryRole.ANY,
    sinceMs: Long = 0,
    untilMs: Long = 0,
    limit: Int = 0,
    cursor: String? = null
): InvitationPage = queryInvitations(role, sinceMs, untilMs, limit, cursor).awaitCompletion()
