package dev.beckon

import com.sun.jna.Library
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.Structure
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Assumptions.assumeTrue
import org.junit.jupiter.api.Test

/**
 * Push targets and push results (ABI 2.2): bad targets fail naming
 * `target.<field>`, a plain memory hub pushes through no provider, and with a
 * library built with the `test-hooks` feature, a hub with a scripted push
 * outlet shows set/clear succeeding and the inviter's InvitationPushResult.
 */
class PushTest {
    private val apns = "ab".repeat(32)

    @Test
    fun `bad targets fail naming the field`() {
        TestUser("alice", uniqueHub("push-bad")).login().use { alice ->
            val c = alice.client
            fun fails(target: PushTarget): BeckonException =
                c.setPushTarget(target).awaitFailure<BeckonException>()
            val empty = fails(PushTarget(PushProvider.FCM, ""))
            assertTrue(empty.message!!.startsWith("target.token"), empty.message)
            val long = fails(PushTarget(PushProvider.WEBHOOK, "x".repeat(4097)))
            assertEquals(ErrorCode.PAYLOAD_TOO_LARGE, long.code)
            val nul = fails(PushTarget(PushProvider.FCM, "a\u0000b"))
            assertTrue(nul.message!!.startsWith("target.token: contains a NUL"), nul.message)
            val hex = fails(PushTarget(PushProvider.APNS, "zz"))
            assertTrue(hex.message!!.contains("hex"), hex.message)
            val topic = fails(PushTarget(PushProvider.FCM, "t", topic = "com.example"))
            assertTrue(topic.message!!.startsWith("target.topic"), topic.message)
            val sandbox = fails(PushTarget(PushProvider.FCM, "t", environment = ApnsEnvironment.SANDBOX))
            assertTrue(sandbox.message!!.startsWith("target.environment"), sandbox.message)
            val alert = fails(PushTarget(PushProvider.APNS, apns, alertToken = apns))
            assertTrue(alert.message!!.startsWith("target.alert_token"), alert.message)
            val unknown = fails(PushTarget(PushProvider.UNKNOWN, "t"))
            assertTrue(unknown.message!!.startsWith("target.provider: -1"), unknown.message)
            for (e in listOf(empty, nul, hex, topic, sandbox, alert, unknown)) {
                assertEquals(ErrorCode.INVALID_ARGUMENT, e.code, e.message)
            }
        }
        TestUser("bob", uniqueHub("push-out")).use { bob ->
            bob.client.setPushTarget(PushTarget(PushProvider.FCM, "t")).awaitFailure<NotLoggedInException>()
            bob.client.clearPushTarget().awaitFailure<NotLoggedInException>()
        }
    }

    @Test
    fun `a memory hub pushes through nothing`() {
        TestUser("alice", uniqueHub("push-none")).login().use { alice ->
            val refused = alice.client.setPushTarget(PushTarget(PushProvider.APNS_VOIP, apns, "com.example.calls"))
                .awaitFailure<InvalidArgumentException>()
            assertTrue(refused.message!!.contains("does not push through apns_voip"), refused.message)
            alice.client.clearPushTarget().await()
        }
    }

    /** `beckon_push_target`, for the test hook (the binding's own struct is internal to it). */
    @Structure.FieldOrder("struct_size", "provider", "token", "topic", "environment", "alert_token")
    class HookTarget : Structure() {
        @JvmField var struct_size: Int = 0
        @JvmField var provider: Int = 0
        @JvmField var token: String? = null
        @JvmField var topic: Pointer? = null
        @JvmField var environment: Int = 0
        @JvmField var alert_token: Pointer? = null

        init {
            struct_size = size()
        }
    }

    /** The push test hooks of a library built with the `test-hooks` feature. */
    interface Hooks : Library {
        fun beckon_test_memory_hub_create_with_push(name: String): Int
        fun beckon_test_offline_push_target(name: String, user: String, device: String, target: HookTarget): Int
    }

    @Test
    fun `push results reach the inviter (test hooks)`() {
        val hooks = Native.load("beckon", Hooks::class.java)
        val name = "kt-push-" + uniqueHub("x").substringAfter("memory://").takeLast(20)
        val created = try {
            hooks.beckon_test_memory_hub_create_with_push(name)
        } catch (e: UnsatisfiedLinkError) {
            -1
        }
        if (System.getenv("BECKON_EXPECT_TEST_HOOKS") == "1") {
            assertEquals(0, created, "BECKON_EXPECT_TEST_HOOKS=1 but the library was built without the test-hooks feature")
        }
        assumeTrue(created == 0, "the library was built without the test-hooks feature")
        val target = HookTarget()
        target.provider = PushProvider.FCM.value
        target.token = "fail-token"
        assertEquals(0, hooks.beckon_test_offline_push_target(name, "bob", "bob-phone", target))

        TestUser("alice", "memory://$name").login().use { alice ->
            alice.client.setPushTarget(
                PushTarget(PushProvider.APNS_VOIP, apns, "com.example.calls", ApnsEnvironment.SANDBOX, "cd".repeat(32))
            ).await()
            alice.client.clearPushTarget().await()
            val sent = alice.client.sendInvitation(listOf("bob", "erin"), 30).await()
            val bob = alice.recorder.awaitEvent<BeckonEvent.InvitationPushResult> { it.invitee == "bob" }
            assertEquals(
                BeckonEvent.InvitationPushResult(
                    sent.invitationId, "bob", "bob-phone", PushProvider.FCM, PushOutcome.FAILED, "ServiceUnavailable"
                ),
                bob
            )
            val erin = alice.recorder.awaitEvent<BeckonEvent.InvitationPushResult> { it.invitee == "erin" }
            assertNull(erin.deviceId)
            assertNull(erin.provider)
            assertEquals(PushOutcome.NO_TARGET, erin.outcome)
            assertEquals(EventKind.INVITATION_PUSH_RESULT, erin.kind)
            assertEquals(2, alice.recorder.ofType<BeckonEvent.InvitationPushResult>().size)
        }
    }
}
