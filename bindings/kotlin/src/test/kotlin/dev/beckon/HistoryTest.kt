package dev.beckon

import com.sun.jna.Library
import com.sun.jna.Native
import com.sun.jna.Pointer
import com.sun.jna.Structure
import com.sun.jna.ptr.PointerByReference
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger

/**
 * History (ABI 2.3, `beckon_query_invitations`): pages of the user's ended
 * invitations, newest sent first, with a cursor for the next page; the role
 * and time filters; every invalid argument failing naming its field; and the
 * result arriving exactly once.
 */
class HistoryTest {
    private val count = 7
    private val pageSize = 3
    private var sink: Any? = null

    /** What a test knows of the invitations it made. */
    private class Sent(val ids: List<String>, val startMs: Long, val endMs: Long)

    /** alice invites bob [n] times, one after the other; bob refuses each. */
    private fun refusedInvitations(alice: TestUser, bob: TestUser, n: Int): Sent {
        val start = System.currentTimeMillis()
        val ids = (0 until n).map { i ->
            val sent = alice.client.sendInvitation(listOf("bob"), 60, "call $i").await()
            bob.recorder.awaitEvent<BeckonEvent.InvitationReceived> { it.invitationId == sent.invitationId }
            bob.client.refuseInvitation(sent.invitationId).await()
            sent.invitationId
        }
        return Sent(ids, start, System.currentTimeMillis())
    }

    /**
     * Every page of [client]'s history for [role] (and the time range),
     * following the cursors; checks each page's size for [expectedTotal].
     */
    private fun allPages(
        client: BeckonClient,
        role: HistoryRole,
        limit: Int,
        expectedTotal: Int,
        sinceMs: Long = 0,
        untilMs: Long = 0
    ): List<InvitationPage> {
        val pages = ArrayList<InvitationPage>()
        var cursor: String? = null
        do {
            val page = client.queryInvitations(role, sinceMs, untilMs, limit, cursor).await()
            pages.add(page)
            cursor = page.nextCursor
            assertTrue(pages.size <= expectedTotal / limit + 1, "more pages than $expectedTotal invitations need: $pages")
        } while (cursor != null)
        val sizes = pages.map { it.invitations.size }
        val full = expectedTotal / limit
        val expectedSizes = List(full) { limit } + if (expectedTotal % limit != 0 || full == 0) listOf(expectedTotal % limit) else emptyList()
        assertEquals(expectedSizes, sizes, "page sizes")
        // A cursor on every page but the last.
        pages.dropLast(1).forEach { assertNotNull(it.nextCursor) }
        assertNull(pages.last().nextCursor)
        return pages
    }

    private fun assertNewestFirst(list: List<InvitationSummary>) {
        for (i in 1 until list.size) {
            assertTrue(list[i - 1].createdMs >= list[i].createdMs, "not newest first at $i: $list")
        }
    }

    @Test
    fun `paging with cursors lists every ended invitation once, newest first`() {
        val hub = uniqueHub("history-pages")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                val sent = refusedInvitations(alice, bob, count)

                for (who in listOf(alice, bob)) {
                    val pages = allPages(who.client, HistoryRole.ANY, pageSize, count)
                    val all = pages.flatMap { it.invitations }
                    assertEquals(count, all.size)
                    assertEquals(sent.ids.toSet(), all.map { it.invitationId }.toSet(), "each invitation exactly once")
                    assertNewestFirst(all)
                    for (summary in all) {
                        assertEquals("alice", summary.inviter)
                        assertEquals(listOf(InviteeStatus("bob", InviteeState.REJECTED)), summary.invitees)
                        assertFalse(summary.sentByServer)
                        assertTrue(summary.createdMs <= summary.endedMs, "$summary")
                        // Unix milliseconds of this run (the hub reads the same wall clock).
                        assertTrue(summary.createdMs >= sent.startMs - 1000 && summary.endedMs <= sent.endMs + 1000, "$summary")
                    }
                    // Sent one after the other: created times follow the sending order.
                    val created = all.associate { it.invitationId to it.createdMs }
                    val inSendingOrder = sent.ids.map { created.getValue(it) }
                    assertEquals(inSendingOrder.sorted(), inSendingOrder, "created times in sending order")
                    // An invitation ended before the next was sent.
                    val ended = all.associate { it.invitationId to it.endedMs }
                    for (i in 1 until sent.ids.size) {
                        assertTrue(ended.getValue(sent.ids[i - 1]) <= created.getValue(sent.ids[i]))
                    }
                }

                // The same query, in other page sizes: the same sequence.
                val reference = allPages(bob.client, HistoryRole.ANY, pageSize, count).flatMap { it.invitations }
                val one = bob.client.queryInvitations().await()
                assertEquals(reference, one.invitations, "the default limit (20) holds all $count in one page")
                assertNull(one.nextCursor)
                assertEquals(reference, allPages(bob.client, HistoryRole.ANY, count, count).single().invitations)
                assertEquals(reference, allPages(bob.client, HistoryRole.ANY, count - 1, count).flatMap { it.invitations })
                assertEquals(reference, allPages(bob.client, HistoryRole.ANY, 1, count).flatMap { it.invitations })
                assertEquals(reference, allPages(bob.client, HistoryRole.ANY, 100, count).flatMap { it.invitations })

                // A cursor can be used again: it names a place, not a session.
                val first = bob.client.queryInvitations(limit = pageSize).await()
                val second = bob.client.queryInvitations(limit = pageSize, cursor = first.nextCursor).await()
                assertEquals(second, bob.client.queryInvitations(limit = pageSize, cursor = first.nextCursor).await())
                assertEquals(reference.subList(pageSize, 2 * pageSize), second.invitations)
                // "" is the first page, as null.
                assertEquals(first, bob.client.queryInvitations(limit = pageSize, cursor = "").await())
            }
        }
    }

    @Test
    fun `roles filter sent and received, and only ended invitations are listed`() {
        val hub = uniqueHub("history-roles")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                val sent = refusedInvitations(alice, bob, count)
                val expectations = mapOf(
                    (bob to HistoryRole.SENT) to 0, (bob to HistoryRole.RECEIVED) to count, (bob to HistoryRole.ANY) to count,
                    (alice to HistoryRole.SENT) to count, (alice to HistoryRole.RECEIVED) to 0, (alice to HistoryRole.ANY) to count
                )
                checkRoles(expectations)
                val bobReceived = allPages(bob.client, HistoryRole.RECEIVED, pageSize, count).flatMap { it.invitations }
                assertEquals(sent.ids.toSet(), bobReceived.map { it.invitationId }.toSet())
                assertTrue(bob.client.queryInvitations(HistoryRole.SENT).await().invitations.isEmpty())

                // Still ringing: not history yet.
                val reverse = bob.client.sendInvitation(listOf("alice"), 60).await()
                alice.recorder.awaitEvent<BeckonEvent.InvitationReceived> { it.invitationId == reverse.invitationId }
                checkRoles(expectations)
                // Ended by alice's acceptance: bob sent one, alice received one.
                alice.client.acceptInvitation(reverse.invitationId).await()
                checkRoles(
                    mapOf(
                        (bob to HistoryRole.SENT) to 1, (bob to HistoryRole.RECEIVED) to count,
                        (bob to HistoryRole.ANY) to count + 1, (alice to HistoryRole.SENT) to count,
                        (alice to HistoryRole.RECEIVED) to 1, (alice to HistoryRole.ANY) to count + 1
                    )
                )
                val accepted = bob.client.queryInvitations(HistoryRole.SENT).await().invitations.single()
                assertEquals(reverse.invitationId, accepted.invitationId)
                assertEquals("bob", accepted.inviter)
                assertEquals(listOf(InviteeStatus("alice", InviteeState.ACCEPTED)), accepted.invitees)
                assertEquals(accepted, alice.client.queryInvitations(HistoryRole.RECEIVED).await().invitations.single())
                // The newest of all (invitations of the same millisecond are in the order of their ids).
                val bobAll = bob.client.queryInvitations().await().invitations
                assertTrue(accepted in bobAll)
                assertEquals(accepted.createdMs, bobAll.first().createdMs)

                // Cancelled for everyone, with an invitee who never was online:
                // every invitee's final state. carol received it too.
                val cancelled = alice.client.sendInvitation(listOf("bob", "carol"), 60).await()
                bob.recorder.awaitEvent<BeckonEvent.InvitationReceived> { it.invitationId == cancelled.invitationId }
                assertEquals(count, alice.client.queryInvitations(HistoryRole.SENT).await().invitations.size)
                alice.client.cancelInvitation(cancelled.invitationId).await()
                val aliceSent = alice.client.queryInvitations(HistoryRole.SENT).await().invitations
                assertEquals(count + 1, aliceSent.size)
                val ended = aliceSent.single { it.invitationId == cancelled.invitationId }
                assertEquals(aliceSent.first().createdMs, ended.createdMs, "the newest")
                assertEquals(
                    setOf(InviteeStatus("bob", InviteeState.CANCELLED), InviteeStatus("carol", InviteeState.CANCELLED)),
                    ended.invitees.toSet()
                )
                assertNotNull(alice.client.queryInvitations(HistoryRole.SENT, limit = count).await().nextCursor)
                TestUser("carol", hub).login().use { carol ->
                    val theirs = carol.client.queryInvitations(HistoryRole.RECEIVED).await()
                    assertEquals(listOf(cancelled.invitationId), theirs.invitations.map { it.invitationId })
                    assertTrue(carol.client.queryInvitations(HistoryRole.SENT).await().invitations.isEmpty())
                }
            }
        }
    }

    /** Checks the number of invitations each (user, role) lists, paging by [pageSize]. */
    private fun checkRoles(expected: Map<Pair<TestUser, HistoryRole>, Int>) {
        for ((key, n) in expected) {
            val (user, role) = key
            val listed = allPages(user.client, role, pageSize, n).flatMap { it.invitations }
            assertEquals(n, listed.size, "${user.user} $role")
            assertEquals(n, listed.map { it.invitationId }.toSet().size, "${user.user} $role: no duplicates")
            assertNewestFirst(listed)
            for (summary in listed) {
                when (role) {
                    HistoryRole.SENT -> assertEquals(user.user, summary.inviter)
                    HistoryRole.RECEIVED -> assertTrue(summary.invitees.any { it.userId == user.user }, "$summary")
                    HistoryRole.ANY -> assertTrue(
                        summary.inviter == user.user || summary.invitees.any { it.userId == user.user }, "$summary"
                    )
                }
            }
        }
    }

    @Test
    fun `time ranges select by when invitations were sent`() {
        val hub = uniqueHub("history-time")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                val sent = refusedInvitations(alice, bob, count)
                val all = bob.client.queryInvitations().await().invitations
                assertEquals(count, all.size)
                val oldest = all.last().createdMs
                val newest = all.first().createdMs
                fun listed(sinceMs: Long, untilMs: Long): List<InvitationSummary> =
                    allPages(
                        bob.client, HistoryRole.ANY, pageSize,
                        all.count { it.createdMs >= sinceMs && (untilMs == 0L || it.createdMs < untilMs) }, sinceMs, untilMs
                    ).flatMap { it.invitations }

                // Before the first send: nothing (by this JVM's clock, and by the first's createdMs).
                assertTrue(oldest >= sent.startMs, "created $oldest, sent at or after ${sent.startMs}")
                assertTrue(bob.client.queryInvitations(untilMs = sent.startMs).await().invitations.isEmpty())
                assertTrue(bob.client.queryInvitations(untilMs = oldest).await().invitations.isEmpty())
                assertNull(bob.client.queryInvitations(untilMs = oldest).await().nextCursor)
                assertTrue(listed(1, oldest).isEmpty())
                // After the last send: nothing.
                assertTrue(listed(newest + 1, 0).isEmpty())
                // The whole span: everything, in the same order.
                assertEquals(all, listed(oldest, newest + 1))
                assertEquals(all, listed(oldest, 0))
                // since is inclusive, until exclusive.
                assertEquals(all.filter { it.createdMs == newest }, listed(newest, 0))
                assertEquals(all.filter { it.createdMs < newest }, listed(0, newest))
                assertEquals(all.filter { it.createdMs == oldest }, listed(oldest, oldest + 1))
                // Combined with a role: bob sent none of them.
                assertTrue(bob.client.queryInvitations(HistoryRole.SENT, oldest, newest + 1).await().invitations.isEmpty())
                assertEquals(
                    all.filter { it.createdMs < newest },
                    alice.client.queryInvitations(HistoryRole.SENT, 0, newest, 100).await().invitations
                )
            }
        }
    }

    @Test
    fun `invalid arguments fail at once naming the field`() {
        TestUser("alice", uniqueHub("history-bad")).login().use { alice ->
            val c = alice.client
            fun fails(future: CompletableFuture<InvitationPage>, field: String) {
                assertTrue(future.isDone, "failed at once, not through a callback")
                val e = future.awaitFailure<InvalidArgumentException>()
                assertEquals(ErrorCode.INVALID_ARGUMENT, e.code)
                assertTrue(e.message!!.startsWith("$field:"), "expected a message naming $field: ${e.message}")
            }
            // The binding's checks: what would wrap in C's unsigned types, the ABI's bound on limit.
            fails(c.queryInvitations(limit = 101), "limit")
            fails(c.queryInvitations(limit = -1), "limit")
            fails(c.queryInvitations(limit = Int.MIN_VALUE), "limit")
            fails(c.queryInvitations(sinceMs = -1), "sinceMs")
            fails(c.queryInvitations(untilMs = Long.MIN_VALUE), "untilMs")
            fails(c.queryInvitations(cursor = "12-ab\u0000cd"), "cursor")
            fails(c.queryInvitations(cursor = "\uD800"), "cursor")
            // The library's: until not after since, cursors it never gave.
            fails(c.queryInvitations(sinceMs = 5, untilMs = 5), "query.until_ms")
            fails(c.queryInvitations(sinceMs = 10, untilMs = 5), "query.until_ms")
            fails(c.queryInvitations(cursor = "bogus"), "query.cursor")
            fails(c.queryInvitations(cursor = "12-not an id!"), "query.cursor")
            fails(c.queryInvitations(cursor = "x-0123456789abcdef"), "query.cursor")
            // Limits are inclusive; since without until is fine.
            assertTrue(c.queryInvitations(limit = 100).await().invitations.isEmpty())
            assertTrue(c.queryInvitations(sinceMs = Long.MAX_VALUE).await().invitations.isEmpty())
            assertTrue(c.queryInvitations(sinceMs = 5, untilMs = 6).await().invitations.isEmpty())
        }
    }

    @Test
    fun `not logged in, logged out and closed clients fail`() {
        val hub = uniqueHub("history-nolog")
        TestUser("alice", hub).use { alice ->
            val before = alice.client.queryInvitations().awaitFailure<NotLoggedInException>()
            assertEquals(ErrorCode.NOT_LOGGED_IN, before.code)
            alice.client.queryInvitations(HistoryRole.SENT, limit = 5).awaitFailure<NotLoggedInException>()
            // Argument errors come first, as the C function checks them first.
            alice.client.queryInvitations(cursor = "bogus").awaitFailure<InvalidArgumentException>()
            alice.login()
            assertTrue(alice.client.queryInvitations().await().invitations.isEmpty())
            alice.client.logout().await()
            alice.client.queryInvitations().awaitFailure<NotLoggedInException>()
        }
        val closed = BeckonClient(hub)
        closed.close()
        closed.queryInvitations().awaitFailure<ShutdownException>()
    }

    @Test
    fun `the suspend variant`() = runBlocking<Unit> {
        val hub = uniqueHub("history-co")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                val sent = refusedInvitations(alice, bob, 2)
                val page = bob.client.queryInvitationsAwait(HistoryRole.RECEIVED, limit = 1)
                assertEquals(1, page.invitations.size)
                val rest = bob.client.queryInvitationsAwait(HistoryRole.RECEIVED, limit = 1, cursor = page.nextCursor)
                assertNull(rest.nextCursor)
                assertEquals(sent.ids.toSet(), (page.invitations + rest.invitations).map { it.invitationId }.toSet())
                try {
                    bob.client.queryInvitationsAwait(untilMs = 1, sinceMs = 2)
                    throw AssertionError("until before since was accepted")
                } catch (e: InvalidArgumentException) {
                    assertTrue(e.message!!.startsWith("query.until_ms"), e.message)
                }
            }
        }
    }

    @Test
    fun `each result arrives exactly once, under collections and in poll mode`() {
        val hub = uniqueHub("history-once")
        val unmatchedBefore = Beckon.diagnostics().unmatchedCallbacks
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                refusedInvitations(alice, bob, count)
                val expected = bob.client.queryInvitations(limit = pageSize).await()
                val completions = ArrayList<AtomicInteger>()
                val futures = ArrayList<CompletableFuture<InvitationPage>>()
                for (i in 0 until 300) {
                    val n = AtomicInteger()
                    completions.add(n)
                    // Nothing JNA-related is kept here: only the futures.
                    futures.add(bob.client.queryInvitations(limit = pageSize).whenComplete { _, _ -> n.incrementAndGet() })
                    if (i % 50 == 0) {
                        sink = List(2_000) { ByteArray(64) }
                        sink = null
                        System.gc()
                    }
                }
                for (f in futures) assertEquals(expected, f.await())
                // Immediate errors run no callback either.
                repeat(50) { bob.client.queryInvitations(cursor = "bogus").awaitFailure<InvalidArgumentException>() }
                completions.forEachIndexed { i, n -> assertEquals(1, n.get(), "future $i completed ${n.get()} times") }
            }
        }

        // Poll mode: the result is delivered only by poll(), once.
        val polled = BeckonClient(ClientConfig(hub, dispatchMode = DispatchMode.POLL))
        polled.use { c ->
            fun pollUntil(future: CompletableFuture<*>) {
                val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS)
                while (!future.isDone && System.nanoTime() < deadline) c.poll(50)
            }
            val login = c.login("bob")
            pollUntil(login)
            login.await()
            while (c.poll(20) > 0) Unit // the login's events
            val query = c.queryInvitations(HistoryRole.RECEIVED, limit = 100)
            Thread.sleep(20)
            assertFalse(query.isDone, "nothing completes before a poll")
            assertEquals(1, c.poll(WAIT_SECONDS.toInt() * 1000), "one callback: the page")
            assertTrue(query.isDone)
            assertEquals(count, query.await().invitations.size)
            assertEquals(0, c.poll(100), "no second callback")
        }
        val d = Beckon.diagnostics()
        assertEquals(unmatchedBefore, d.unmatchedCallbacks, "$d")
        assertEquals(0, d.pendingOperations, "$d")
        assertEquals(0L, d.orphanedOperations, "$d")
    }

    /** `beckon_client_config`, for [RawAbi]. */
    @Structure.FieldOrder("struct_size", "server_url", "device_id", "dispatch_mode", "request_timeout_ms")
    class RawClientConfig : Structure() {
        @JvmField var struct_size: Int = 0
        @JvmField var server_url: String? = null
        @JvmField var device_id: Pointer? = null
        @JvmField var dispatch_mode: Int = 0
        @JvmField var request_timeout_ms: Int = 0

        init {
            struct_size = size()
        }
    }

    /** `beckon_invitation_query` as the header declares it, for [RawAbi]. */
    @Structure.FieldOrder("struct_size", "role", "since_ms", "until_ms", "limit", "cursor")
    class RawQuery : Structure() {
        @JvmField var struct_size: Int = 0
        @JvmField var role: Int = 0
        @JvmField var since_ms: Long = 0
        @JvmField var until_ms: Long = 0
        @JvmField var limit: Int = 0
        @JvmField var cursor: Pointer? = null

        init {
            struct_size = size()
        }
    }

    /** The C functions themselves, for what the typed API cannot pass. */
    interface RawAbi : Library {
        fun beckon_client_new(config: RawClientConfig, outClient: PointerByReference): Int
        fun beckon_client_free(client: Pointer?): Int
        fun beckon_query_invitations(client: Pointer, query: RawQuery?, callback: Pointer?, userData: Pointer?): Int
        fun beckon_last_error_message(): Pointer?
    }

    @Test
    fun `the library's own checks of what the typed API cannot pass - role and struct_size`() {
        // HistoryRole has no invalid value, and the binding sets struct_size
        // itself: the C function's checks of those, with the same layout.
        assertEquals(Beckon.BINDING_ABI_VERSION, Beckon.abiVersion) // the library is loaded and checked
        val raw = Native.load("beckon", RawAbi::class.java)
        if (Native.POINTER_SIZE == 8) assertEquals(40, RawQuery().size(), "sizeof(beckon_invitation_query)")
        val config = RawClientConfig()
        config.server_url = uniqueHub("history-raw")
        val out = PointerByReference()
        assertEquals(0, raw.beckon_client_new(config, out))
        val client = out.value
        try {
            fun invalid(query: RawQuery?, field: String) {
                assertEquals(ErrorCode.INVALID_ARGUMENT.value, raw.beckon_query_invitations(client, query, null, null))
                val message = readMessage(raw)
                assertTrue(message.startsWith("$field:"), message)
            }
            invalid(RawQuery().apply { role = 3 }, "query.role")
            invalid(RawQuery().apply { role = -1 }, "query.role")
            invalid(RawQuery().apply { struct_size = size() - 8 }, "query.struct_size")
            invalid(RawQuery().apply { limit = 101 }, "query.limit")
            // A valid query reaches the login check.
            for (role in HistoryRole.values()) {
                assertEquals(
                    ErrorCode.NOT_LOGGED_IN.value,
                    raw.beckon_query_invitations(client, RawQuery().apply { this.role = role.value }, null, null)
                )
            }
            assertEquals(ErrorCode.NOT_LOGGED_IN.value, raw.beckon_query_invitations(client, null, null, null))
        } finally {
            assertEquals(0, raw.beckon_client_free(client))
        }
    }

    private fun readMessage(raw: RawAbi): String = raw.beckon_last_error_message()?.getString(0, "UTF-8") ?: ""
}
