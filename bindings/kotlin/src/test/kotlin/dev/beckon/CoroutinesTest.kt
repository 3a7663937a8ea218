package dev.beckon

import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import kotlinx.coroutines.withTimeoutOrNull
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assertions.fail
import org.junit.jupiter.api.Test

/** The suspend variants: same operations, exceptions thrown unwrapped. */
class CoroutinesTest {

    @Test
    fun `the demo flow with suspend functions`() = runBlocking<Unit> {
        val hub = uniqueHub("co")
        BeckonClient(hub).use { alice ->
            BeckonClient(hub).use { bob ->
                val ring = CompletableDeferred<BeckonEvent.InvitationReceived>()
                val heard = CompletableDeferred<BeckonEvent.InvitationAccepted>()
                bob.setEventListener { if (it is BeckonEvent.InvitationReceived) ring.complete(it) }
                alice.setEventListener { if (it is BeckonEvent.InvitationAccepted) heard.complete(it) }
                withTimeout(WAIT_SECONDS * 1000) {
                    alice.loginAwait("alice")
                    bob.loginAwait("bob")
                    val sent = alice.sendInvitationAwait(listOf("bob", "ghost"), 30, extendedData = "ring")
                    assertTrue(sent.invitationId.length > 0)
                    val invitation = ring.await()
                    assertEquals("ring", invitation.extendedData)
                    bob.acceptInvitationAwait(invitation.invitationId, "hi")
                    assertEquals(BeckonEvent.InvitationAccepted(sent.invitationId, "bob", "hi"), heard.await())
                    // Ghost never answered: cancelling everyone reports bob as already accepted.
                    val cancel = alice.cancelInvitationAwait(sent.invitationId)
                    assertEquals(listOf(InviteeStatus("bob", InviteeState.ACCEPTED)), cancel.errorInvitees)
                    alice.logoutAwait()
                }
            }
        }
    }

    @Test
    fun `failures are thrown as their own exception`() = runBlocking<Unit> {
        BeckonClient(uniqueHub("co-err")).use { c ->
            try {
                c.sendInvitationAwait(listOf("bob"), 30)
                fail<Unit>("sending without a login succeeded")
            } catch (e: NotLoggedInException) {
                assertEquals(ErrorCode.NOT_LOGGED_IN, e.code)
            }
            c.loginAwait("alice")
            try {
                c.refuseInvitationAwait("feedfacefeedfacefeedfacefeedface")
                fail<Unit>("refusing an unknown invitation succeeded")
            } catch (e: InvitationNotFoundException) {
                assertTrue(e.message!!.length > 0)
            }
            try {
                c.renewTokenAwait("x\u0000")
                fail<Unit>("a NUL in a token was accepted")
            } catch (e: InvalidArgumentException) {
                assertTrue(e.message!!.startsWith("token"))
            }
        }
    }

    @Test
    fun `cancelling the coroutine stops the wait, the operation still completes once`() = runBlocking<Unit> {
        val c = BeckonClient(ClientConfig(uniqueHub("co-cancel"), dispatchMode = DispatchMode.POLL))
        // Nobody polls, so the login cannot complete: the timeout cancels the wait.
        val outcome = withTimeoutOrNull(50) { c.loginAwait("alice") }
        assertNull(outcome)
        c.close()
        assertEquals(0, Beckon.diagnostics().pendingOperations)
    }
}
