package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.time.Instant

/**
 * Wrong input gives the exception of its error code, with a message naming the
 * field: from the binding's own checks (before any C call) or from the library.
 */
class BadInputTest {

    private fun loggedIn(label: String, user: String = "alice") = TestUser(user, uniqueHub(label)).login()

    @Test
    fun `binding rejects what C cannot see - NUL, lone surrogates, nulls in lists, ranges`() {
        loggedIn("bind").use { alice ->
            val c = alice.client
            val nul = c.sendInvitation(listOf("bob\u0000mallory"), 30).awaitFailure<InvalidArgumentException>()
            assertTrue(nul.message!!.startsWith("invitees[0]: contains a NUL"), nul.message)
            val surrogate = c.sendInvitation(listOf("bob"), 30, "bad \uD800 text").awaitFailure<InvalidArgumentException>()
            assertTrue(surrogate.message!!.startsWith("extendedData: is not valid Unicode"), surrogate.message)
            @Suppress("UNCHECKED_CAST")
            val withNull = listOf("bob", null) as List<String>
            val nullEntry = c.sendInvitation(withNull, 30).awaitFailure<InvalidArgumentException>()
            assertEquals("invitees[1]: is null", nullEntry.message)
            assertTrue(c.sendInvitation(emptyList(), 30).awaitFailure<InvalidArgumentException>().message!!.startsWith("invitees"))
            for (timeout in listOf(0, -1, 601, Int.MAX_VALUE)) {
                val e = c.sendInvitation(listOf("bob"), timeout).awaitFailure<InvalidArgumentException>()
                assertTrue(e.message!!.startsWith("timeoutSeconds"), e.message)
            }
            c.cancelInvitation("some-id", emptyList()).awaitFailure<InvalidArgumentException>()
            c.acceptInvitation("").awaitFailure<InvalidArgumentException>()
            c.refuseInvitation("id", "x\u0000y").awaitFailure<InvalidArgumentException>()
            val note = Notification(title = "ok", payload = "\uDC00")
            val bad = c.sendInvitation(listOf("bob"), 30, notification = note).awaitFailure<InvalidArgumentException>()
            assertTrue(bad.message!!.startsWith("notification.payload"), bad.message)
        }
        assertThrows(InvalidArgumentException::class.java) {
            BeckonClient(ClientConfig(uniqueHub("cfg"), requestTimeoutMillis = -5))
        }
        assertThrows(InvalidArgumentException::class.java) { Beckon.createMemoryHub("kt-hub-x", maxInvitees = 1001) }
        assertThrows(InvalidArgumentException::class.java) { Beckon.createToken("s", "bob", -1L) }
    }

    @Test
    fun `library errors known at once map to their exception`() {
        loggedIn("lib").use { alice ->
            val c = alice.client
            val badId = c.sendInvitation(listOf("not a valid id!"), 30).awaitFailure<InvalidArgumentException>()
            assertTrue(badId.message!!.contains("invitees"), badId.message)
            val many = (1..33).map { "user$it" }
            val tooMany = c.sendInvitation(many, 30).awaitFailure<TooManyInviteesException>()
            assertEquals(ErrorCode.TOO_MANY_INVITEES, tooMany.code)
            assertEquals(2, tooMany.rawCode)
            // Duplicates fold before the limit is checked.
            val folded = c.sendInvitation(List(40) { "bob" }, 30).await()
            assertTrue(folded.invitationId.length > 0)
            c.sendInvitation(listOf("bob"), 30, "x".repeat(8 * 1024 + 1)).awaitFailure<PayloadTooLargeException>()
            c.sendInvitation(listOf("bob"), 30, notification = Notification(title = "t".repeat(257)))
                .awaitFailure<PayloadTooLargeException>()
            c.sendInvitation(listOf("alice"), 30).awaitFailure<InvalidArgumentException>()
        }
        TestUser("nobody", uniqueHub("nolog")).use { u ->
            val e = u.client.sendInvitation(listOf("bob"), 30).awaitFailure<NotLoggedInException>()
            assertEquals(ErrorCode.NOT_LOGGED_IN, e.code)
            u.client.login("bad user!").awaitFailure<InvalidArgumentException>()
        }
        assertThrows(InvalidArgumentException::class.java) { BeckonClient("http://not-a-beckon-url") }
        assertThrows(InvalidArgumentException::class.java) {
            BeckonClient(ClientConfig(uniqueHub("dev"), deviceId = "bad device id"))
        }
    }

    @Test
    fun `hub-state errors arrive through the future`() {
        val hub = uniqueHub("state")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                TestUser("mallory", hub).login().use { mallory ->
                    bob.client.acceptInvitation("0123456789abcdef0123456789abcdef").awaitFailure<InvitationNotFoundException>()
                    val sent = alice.client.sendInvitation(listOf("bob"), 30).await()
                    bob.recorder.awaitEvent<BeckonEvent.InvitationReceived>()
                    mallory.client.cancelInvitation(sent.invitationId).awaitFailure<NotPermittedException>()
                    mallory.client.acceptInvitation(sent.invitationId).awaitFailure<NotPermittedException>()
                    bob.client.acceptInvitation(sent.invitationId).await()
                    val twice = bob.client.refuseInvitation(sent.invitationId).awaitFailure<AlreadyAnsweredException>()
                    assertEquals(9, twice.rawCode)
                }
            }
        }
    }

    @Test
    fun `tokens - wrong, expired and valid`() {
        val name = "kt-secret-${ProcessHandle.current().pid()}"
        Beckon.createMemoryHub(name, secret = "s3cret", maxInvitees = 4, retentionMillis = 60_000)
        assertThrows(InvalidArgumentException::class.java) { Beckon.createMemoryHub(name) }
        val hub = "memory://$name"
        val future = Instant.now().plusSeconds(3600)
        BeckonClient(hub).use { c ->
            c.login("bob", "v1.1.deadbeef").awaitFailure<AuthFailedException>()
            c.login("bob", Beckon.createToken("s3cret", "carol", future)).awaitFailure<AuthFailedException>()
            c.login("bob", Beckon.createToken("other", "bob", future)).awaitFailure<AuthFailedException>()
            val past = Instant.now().minusSeconds(60)
            c.login("bob", Beckon.createToken("s3cret", "bob", past)).awaitFailure<TokenExpiredException>()
            val token = Beckon.createToken("s3cret", "bob", future)
            assertTrue(token.startsWith("v1.${future.epochSecond}."), token)
            c.login("bob", token).await()
            c.renewToken(Beckon.createToken("s3cret", "bob", future.plusSeconds(60))).await()
            // This hub allows 4 distinct invitees.
            c.sendInvitation(listOf("a", "b", "c", "d", "e"), 30).awaitFailure<TooManyInviteesException>()
        }
    }

    @Test
    fun `a closed client fails every operation with ShutdownException`() {
        val user = TestUser("alice", uniqueHub("closed")).login()
        user.close()
        user.close() // idempotent
        assertTrue(user.client.isClosed)
        user.client.login("alice").awaitFailure<ShutdownException>()
        user.client.sendInvitation(listOf("bob"), 30).awaitFailure<ShutdownException>()
        user.client.cancelInvitation("id").awaitFailure<ShutdownException>()
        user.client.logout().awaitFailure<ShutdownException>()
    }

    @Test
    fun `every C error code maps to its own exception class with the message`() {
        val expected = mapOf(
            1 to InvalidArgumentException::class.java, 2 to TooManyInviteesException::class.java,
            3 to PayloadTooLargeException::class.java, 4 to NotLoggedInException::class.java,
            5 to AuthFailedException::class.java, 6 to TokenExpiredException::class.java,
            7 to InvitationNotFoundException::class.java, 8 to NotPermittedException::class.java,
            9 to AlreadyAnsweredException::class.java, 10 to InvitationClosedException::class.java,
            11 to NetworkException::class.java, 12 to RequestTimeoutException::class.java,
            13 to RateLimitedException::class.java, 14 to ShutdownException::class.java,
            15 to ServerException::class.java, 16 to InternalException::class.java,
            17 to WouldDeadlockException::class.java
        )
        for ((code, type) in expected) {
            val e = BeckonException.of(code, "detail $code")
            assertEquals(type, e.javaClass)
            assertEquals(code, e.rawCode)
            assertEquals(code, e.code.value)
            assertEquals("detail $code", e.message)
            // The binding's names are the library's names.
            assertEquals(Beckon.errorName(code), e.code.name)
        }
        // An empty message is replaced by the library's description.
        assertEquals(Beckon.errorDescription(8), BeckonException.of(8, "").message)
        val unknown = BeckonException.of(99, "from the future")
        assertTrue(unknown is UnknownErrorException)
        assertEquals(ErrorCode.UNKNOWN, unknown.code)
        assertEquals(99, unknown.rawCode)
        assertEquals("UNKNOWN", Beckon.errorName(99))
        assertEquals("UNKNOWN", Beckon.errorName(18))
    }
}
