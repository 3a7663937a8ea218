package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/**
 * ABI 2.1's per-operation request timeout: send, accept, refuse and cancel
 * take `requestTimeoutMillis` (0: the client's). Accept, refuse and cancel go
 * through the `_ex` functions with a config struct. A memory hub answers at
 * once, so these check that the options are taken, validated and carried with
 * the rest of the config, not that a timeout fires.
 */
class RequestTimeoutTest {

    @Test
    fun `a negative request timeout is refused by the binding for every operation`() {
        TestUser("alice", uniqueHub("rt-neg")).login().use { alice ->
            val c = alice.client
            val failures = listOf(
                c.sendInvitation(listOf("bob"), 30, requestTimeoutMillis = -1),
                c.acceptInvitation("some-id", requestTimeoutMillis = -1),
                c.refuseInvitation("some-id", "why", requestTimeoutMillis = Int.MIN_VALUE),
                c.cancelInvitation("some-id", listOf("bob"), requestTimeoutMillis = -20)
            ).map { it.awaitFailure<InvalidArgumentException>() }
            for (e in failures) assertTrue(e.message!!.startsWith("requestTimeoutMillis: -"), e.message)
            // The other checks still come first where they did.
            val empty = c.acceptInvitation("", requestTimeoutMillis = 1000).awaitFailure<InvalidArgumentException>()
            assertEquals("invitationId: is empty", empty.message)
            assertEquals(0, Beckon.diagnostics().pendingOperations)
        }
    }

    @Test
    fun `accept with options carries extended data, and the request timeout is accepted`() {
        val hub = uniqueHub("rt-accept")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                val sent = alice.client.sendInvitation(
                    listOf("bob"), 30, "ring", requestTimeoutMillis = 5_000
                ).await()
                val ring = bob.recorder.awaitEvent<BeckonEvent.InvitationReceived> { it.invitationId == sent.invitationId }
                assertEquals("ring", ring.extendedData)
                bob.client.acceptInvitation(sent.invitationId, "on my way", requestTimeoutMillis = 5_000).await()
                val heard = alice.recorder.awaitEvent<BeckonEvent.InvitationAccepted>()
                assertEquals(BeckonEvent.InvitationAccepted(sent.invitationId, "bob", "on my way"), heard)
                // Answering twice is still the hub's error, through the same path.
                bob.client.refuseInvitation(sent.invitationId, requestTimeoutMillis = 1)
                    .awaitFailure<AlreadyAnsweredException>()
            }
        }
    }

    @Test
    fun `refuse with options carries extended data`() {
        val hub = uniqueHub("rt-refuse")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                val sent = alice.client.sendInvitation(listOf("bob"), 30).await()
                bob.recorder.awaitEvent<BeckonEvent.InvitationReceived>()
                bob.client.refuseInvitation(sent.invitationId, "busy", requestTimeoutMillis = 2_000).await()
                val heard = alice.recorder.awaitEvent<BeckonEvent.InvitationRefused>()
                assertEquals(BeckonEvent.InvitationRefused(sent.invitationId, "bob", "busy"), heard)
            }
        }
    }

    @Test
    fun `cancel with options for a listed invitee leaves the others ringing`() {
        val hub = uniqueHub("rt-cancel")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                TestUser("carol", hub).login().use { carol ->
                    // Dave is not logged in: still pending at the end.
                    val sent = alice.client.sendInvitation(listOf("bob", "carol", "dave"), 30).await()
                    bob.recorder.awaitEvent<BeckonEvent.InvitationReceived>()
                    carol.recorder.awaitEvent<BeckonEvent.InvitationReceived>()

                    val cancel = alice.client.cancelInvitation(
                        sent.invitationId, listOf("carol"), "never mind", requestTimeoutMillis = 3_000
                    ).await()
                    assertEquals(emptyList<InviteeStatus>(), cancel.errorInvitees)
                    val cancelled = carol.recorder.awaitEvent<BeckonEvent.InvitationCancelled>()
                    assertEquals(BeckonEvent.InvitationCancelled(sent.invitationId, "alice", "never mind"), cancelled)

                    // Bob was not in the list: still invited, and can accept.
                    bob.client.acceptInvitation(sent.invitationId, requestTimeoutMillis = 3_000).await()
                    assertTrue(bob.recorder.ofType<BeckonEvent.InvitationCancelled>().isEmpty())
                    // Cancelling for everyone now: dave is cancelled, bob and
                    // carol were already terminal and come back with their state.
                    val again = alice.client.cancelInvitation(sent.invitationId, requestTimeoutMillis = 3_000).await()
                    assertEquals(
                        setOf(InviteeStatus("bob", InviteeState.ACCEPTED), InviteeStatus("carol", InviteeState.CANCELLED)),
                        again.errorInvitees.toSet()
                    )
                }
            }
        }
    }

    @Test
    fun `the library judges the config fields`() {
        val hub = uniqueHub("rt-config")
        TestUser("alice", hub).login().use { alice ->
            val c = alice.client
            val id = c.sendInvitation(listOf("bob"), 30).await().invitationId
            val badInvitee = c.cancelInvitation(id, listOf("bob", "not a valid id!"), requestTimeoutMillis = 1_000)
                .awaitFailure<InvalidArgumentException>()
            assertTrue(badInvitee.message!!.startsWith("config.invitees[1]"), badInvitee.message)
            val big = "x".repeat(8 * 1024 + 1)
            // (The size limit is checked past the C boundary: its message says
            // "extended_data", without the "config." prefix.)
            val tooBig = c.cancelInvitation(id, extendedData = big).awaitFailure<PayloadTooLargeException>()
            assertTrue(tooBig.message!!.contains("extended_data: 8193 bytes"), tooBig.message)
            val tooBigAnswer = c.acceptInvitation(id, big).awaitFailure<PayloadTooLargeException>()
            assertTrue(tooBigAnswer.message!!.contains("extended_data: 8193 bytes"), tooBigAnswer.message)
            c.refuseInvitation(id, big, requestTimeoutMillis = 10).awaitFailure<PayloadTooLargeException>()
            // An invitation this user was not invited to: the hub's answer.
            c.acceptInvitation(id, requestTimeoutMillis = 500).awaitFailure<NotPermittedException>()
            assertEquals(0, Beckon.diagnostics().pendingOperations)
        }
    }

    @Test
    fun `the suspend variants take the request timeout too`() = kotlinx.coroutines.runBlocking<Unit> {
        val hub = uniqueHub("rt-co")
        TestUser("alice", hub).login().use { alice ->
            TestUser("bob", hub).login().use { bob ->
                kotlinx.coroutines.withTimeout(WAIT_SECONDS * 1000) {
                    val sent = alice.client.sendInvitationAwait(listOf("bob", "ghost"), 30, requestTimeoutMillis = 4_000)
                    bob.recorder.awaitEvent<BeckonEvent.InvitationReceived>()
                    bob.client.refuseInvitationAwait(sent.invitationId, "later", requestTimeoutMillis = 4_000)
                    val cancel = alice.client.cancelInvitationAwait(sent.invitationId, requestTimeoutMillis = 4_000)
                    assertEquals(listOf(InviteeStatus("bob", InviteeState.REJECTED)), cancel.errorInvitees)
                    try {
                        bob.client.acceptInvitationAwait(sent.invitationId, requestTimeoutMillis = -3)
                        throw AssertionError("a negative timeout was accepted")
                    } catch (e: InvalidArgumentException) {
                        assertTrue(e.message!!.startsWith("requestTimeoutMillis"), e.message)
                    }
                }
            }
        }
    }
}

/**
 * The per-operation timeout against a ws:// server (on 127.0.0.1) that
 * welcomes the login and then answers nothing: with the client's own request
 * timeout long, only the operation's own timeout can end each request.
 */
class RequestTimeoutOverWsTest {

    @Test
    fun `each operation's own request timeout fires, with the client's timeout long`() {
        SilentAfterWelcomeServer().use { server ->
            BeckonClient(ClientConfig(server.url, requestTimeoutMillis = 600_000)).use { client ->
                client.login("fay").await()
                val invitation = "0123456789abcdef0123456789abcdef"
                val started = System.nanoTime()
                val operations = linkedMapOf(
                    "send" to (client.sendInvitation(listOf("gus"), 30, requestTimeoutMillis = 200) to 200),
                    "accept" to (client.acceptInvitation(invitation, requestTimeoutMillis = 300) to 300),
                    "refuse" to (client.refuseInvitation(invitation, "no", requestTimeoutMillis = 300) to 300),
                    "cancel" to (client.cancelInvitation(invitation, listOf("gus"), requestTimeoutMillis = 400) to 400)
                )
                // Without its own timeout, an operation waits for the client's (ten minutes).
                val untimed = client.acceptInvitation(invitation)
                for ((name, operation) in operations) {
                    val (future, millis) = operation
                    val e = future.awaitFailure<RequestTimeoutException>()
                    assertEquals("no answer from the server within $millis ms", e.message, name)
                }
                assertTrue(System.nanoTime() - started < java.util.concurrent.TimeUnit.SECONDS.toNanos(WAIT_SECONDS))
                assertTrue(!untimed.isDone, "an operation without its own timeout ended: $untimed")
                assertTrue(server.received.containsAll(listOf("hello", "send", "accept", "refuse", "cancel")), server.received.toString())
                client.close()
                untimed.awaitFailure<ShutdownException>()
            }
        }
        assertEquals(0, Beckon.diagnostics().pendingOperations)
    }
}

/**
 * A WebSocket server on 127.0.0.1 that answers the handshake and the `hello`
 * (with a `welcome`) and then nothing: every request waits for its timeout.
 * [received] lists the `type` of each text frame the client sent.
 */
class SilentAfterWelcomeServer : AutoCloseable {
    private val server = java.net.ServerSocket(0, 8, java.net.InetAddress.getByName("127.0.0.1"))
    private val sockets = java.util.concurrent.CopyOnWriteArrayList<java.net.Socket>()
    private val threads = java.util.concurrent.CopyOnWriteArrayList<Thread>()
    val received: MutableList<String> = java.util.concurrent.CopyOnWriteArrayList()
    val url = "ws://127.0.0.1:${server.localPort}"

    init {
        start {
            while (true) {
                val socket = try {
                    server.accept()
                } catch (e: java.io.IOException) {
                    break // closed
                }
                sockets.add(socket)
                start { serve(socket) }
            }
        }
    }

    private fun start(body: () -> Unit) {
        val thread = Thread {
            try {
                body()
            } catch (e: java.io.IOException) {
                // closed by close() or by the client
            }
        }
        thread.isDaemon = true
        threads.add(thread)
        thread.start()
    }

    private fun serve(socket: java.net.Socket) {
        val input = java.io.DataInputStream(java.io.BufferedInputStream(socket.getInputStream()))
        val output = socket.getOutputStream()
        val headers = HashMap<String, String>()
        while (true) {
            val line = readLine(input)
            if (line.length == 0) break
            val colon = line.indexOf(':')
            if (colon > 0) headers[line.substring(0, colon).trim().toLowerCase()] = line.substring(colon + 1).trim()
        }
        val key = headers["sec-websocket-key"] ?: throw java.io.IOException("no Sec-WebSocket-Key")
        val accept = java.util.Base64.getEncoder().encodeToString(
            java.security.MessageDigest.getInstance("SHA-1").digest((key + WS_GUID).toByteArray(Charsets.US_ASCII))
        )
        val response = StringBuilder(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: $accept\r\n"
        )
        if (headers["sec-websocket-protocol"]?.contains("beckon.v1") == true) {
            response.append("Sec-WebSocket-Protocol: beckon.v1\r\n")
        }
        output.write(response.append("\r\n").toString().toByteArray(Charsets.US_ASCII))
        output.flush()
        while (true) {
            val first = input.readUnsignedByte()
            val second = input.readUnsignedByte()
            var length = (second and 0x7F).toLong()
            if (length == 126L) length = input.readUnsignedShort().toLong() else if (length == 127L) length = input.readLong()
            val mask = ByteArray(4)
            if (second and 0x80 != 0) input.readFully(mask)
            val payload = ByteArray(length.toInt())
            input.readFully(payload)
            for (i in payload.indices) payload[i] = (payload[i].toInt() xor mask[i % 4].toInt()).toByte()
            when (first and 0x0F) {
                0x8 -> return // close
                0x1 -> {
                    val text = String(payload, Charsets.UTF_8)
                    val type = Regex("\"type\"\\s*:\\s*\"([a-z_]+)\"").find(text)?.groupValues?.get(1) ?: "?"
                    received.add(type)
                    if (type == "hello") sendText(output, WELCOME)
                }
                // pings and pongs go unanswered
            }
        }
    }

    private fun readLine(input: java.io.DataInputStream): String {
        val line = StringBuilder()
        while (true) {
            val c = input.readUnsignedByte()
            if (c == '\n'.toInt()) return line.toString().trimEnd('\r')
            line.append(c.toChar())
        }
    }

    private fun sendText(output: java.io.OutputStream, text: String) {
        val payload = text.toByteArray(Charsets.UTF_8)
        val header = if (payload.size < 126) {
            byteArrayOf(0x81.toByte(), payload.size.toByte())
        } else {
            byteArrayOf(0x81.toByte(), 126, (payload.size shr 8).toByte(), payload.size.toByte())
        }
        synchronized(output) {
            output.write(header + payload)
            output.flush()
        }
    }

    override fun close() {
        server.close()
        for (socket in sockets) socket.close()
        for (thread in threads) thread.join(java.util.concurrent.TimeUnit.SECONDS.toMillis(WAIT_SECONDS))
    }

    private companion object {
        const val WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
        const val WELCOME = "{\"type\":\"welcome\",\"v\":1,\"session\":\"ssssssssssssssssssssssssssssssss\"," +
            "\"resumed\":false,\"last_request\":0,\"limits\":{},\"heartbeat_secs\":15,\"grace_secs\":30," +
            "\"max_frame_bytes\":262144}"
    }
}
