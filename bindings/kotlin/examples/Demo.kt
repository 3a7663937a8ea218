// The demo flow from Kotlin, on the embedded memory:// hub: alice invites bob,
// bob's device rings, bob accepts, alice hears it and lists her history.
//
// Run (see README.md): kotlinc Demo.kt -cp beckon-kotlin.jar:... && java ... DemoKt

import dev.beckon.Beckon
import dev.beckon.BeckonClient
import dev.beckon.BeckonEvent
import dev.beckon.HistoryRole
import dev.beckon.Notification
import dev.beckon.acceptInvitationAwait
import dev.beckon.loginAwait
import dev.beckon.queryInvitationsAwait
import dev.beckon.sendInvitationAwait
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout

fun main() = runBlocking<Unit> {
    println("beckon ${Beckon.version} (ABI ${Beckon.abiVersionText(Beckon.abiVersion)}) on memory://demo-kotlin")

    BeckonClient("memory://demo-kotlin").use { alice ->
        BeckonClient("memory://demo-kotlin").use { bob ->
            val ringing = CompletableDeferred<BeckonEvent.InvitationReceived>()
            val answered = CompletableDeferred<BeckonEvent.InvitationAccepted>()

            // Listeners run on each client's dispatcher thread.
            bob.setEventListener { event ->
                println("[bob  ] $event")
                if (event is BeckonEvent.InvitationReceived) ringing.complete(event)
            }
            alice.setEventListener { event ->
                println("[alice] $event")
                if (event is BeckonEvent.InvitationAccepted) answered.complete(event)
            }

            withTimeout(10_000) {
                alice.loginAwait("alice")
                bob.loginAwait("bob")

                val sent = alice.sendInvitationAwait(
                    listOf("bob"), timeoutSeconds = 30, extendedData = """{"call":"video"}""",
                    notification = Notification(title = "Incoming call", message = "alice is calling")
                )
                println("[alice] invitation ${sent.invitationId} sent")

                val ring = ringing.await()
                println("[bob  ] ringing: ${ring.inviter} calls, data ${ring.extendedData}, ${ring.secondsLeft} s left")
                bob.acceptInvitationAwait(ring.invitationId, "see you")
                println("[bob  ] accepted")

                val heard = answered.await()
                println("[alice] ${heard.invitee} accepted: ${heard.extendedData}")

                // History (ABI 2.3): the invitation ended when its only invitee answered.
                val history = alice.queryInvitationsAwait(HistoryRole.SENT, limit = 10)
                for (past in history.invitations) {
                    println("[alice] history: ${past.invitationId} to ${past.invitees.joinToString { "${it.userId} ${it.state}" }}")
                }
            }
        }
    }
    println("--- done ---")
}
