package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Test
import java.net.InetAddress
import java.net.ServerSocket
import java.net.Socket
import java.util.concurrent.CompletableFuture
import java.util.concurrent.TimeUnit

/**
 * ABI 2.1: a logout while a login is under way cancels the login. Against a
 * ws:// "server" that accepts the connection and never answers, the login
 * would wait for its (long) request timeout; the logout ends it at once.
 */
class LogoutDuringLoginTest {

    @Test
    fun `logout while logging in - the logout succeeds and the login fails with SHUTDOWN`() {
        ServerSocket(0, 50, InetAddress.getByName("127.0.0.1")).use { server ->
            val connection = CompletableFuture<Socket>()
            val acceptor = Thread {
                try {
                    connection.complete(server.accept())
                } catch (t: Throwable) {
                    connection.completeExceptionally(t)
                }
            }
            acceptor.isDaemon = true
            acceptor.start()
            val url = "ws://127.0.0.1:${server.localPort}"
            TestUser("alice", url, ClientConfig(url, requestTimeoutMillis = 120_000)).use { alice ->
                val login = alice.client.login("alice")
                // The client has connected and waits for an answer that never comes.
                val socket = connection.get(WAIT_SECONDS, TimeUnit.SECONDS)
                try {
                    alice.recorder.awaitEvent<BeckonEvent.ConnectionStateChanged> { it.state == ConnectionState.CONNECTING }
                    alice.client.logout().await()
                    login.awaitFailure<ShutdownException>()
                    alice.recorder.awaitEvent<BeckonEvent.ConnectionStateChanged> { it.state == ConnectionState.DISCONNECTED }
                    val states = alice.recorder.ofType<BeckonEvent.ConnectionStateChanged>()
                    assertEquals(
                        listOf(
                            BeckonEvent.ConnectionStateChanged(ConnectionState.CONNECTING, ConnectionReason.LOGIN),
                            BeckonEvent.ConnectionStateChanged(ConnectionState.DISCONNECTED, ConnectionReason.LOGOUT)
                        ),
                        states
                    )
                    assertEquals(ConnectionState.DISCONNECTED, alice.client.connectionState)
                    assertNull(alice.client.userId)
                } finally {
                    socket.close()
                }
            }
            acceptor.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS))
        }
        assertEquals(0, Beckon.diagnostics().pendingOperations)
    }
}
