package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertThrows
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.Collections
import java.util.concurrent.TimeUnit

/** A client's identity and state: [BeckonClient.info], deviceId, userId, connectionState. */
class ClientInfoTest {

    @Test
    fun `before login, after login and after logout`() {
        val hub = uniqueHub("info")
        TestUser("amy", hub, ClientConfig(hub, deviceId = "amy-phone")).use { amy ->
            val client = amy.client
            assertEquals(ClientInfo(ConnectionState.DISCONNECTED, null, "amy-phone"), client.info())
            assertEquals("amy-phone", client.deviceId)
            assertNull(client.userId)
            assertEquals(ConnectionState.DISCONNECTED, client.connectionState)

            amy.login()
            // The CONNECTED event is dispatched before the login's future completes.
            assertEquals(ClientInfo(ConnectionState.CONNECTED, "amy", "amy-phone"), client.info())
            assertEquals("amy", client.userId)
            assertEquals(ConnectionState.CONNECTED, client.connectionState)

            client.logout().await()
            amy.recorder.awaitEvent<BeckonEvent.ConnectionStateChanged> { it.state == ConnectionState.DISCONNECTED }
            assertEquals(ClientInfo(ConnectionState.DISCONNECTED, null, "amy-phone"), client.info())
            assertNull(client.userId)
            assertEquals(ConnectionState.DISCONNECTED, client.connectionState)
            assertEquals("amy-phone", client.deviceId)
        }
    }

    @Test
    fun `a random device id is told, and differs per client`() {
        val hub = uniqueHub("info-random")
        BeckonClient(hub).use { first ->
            BeckonClient(hub).use { second ->
                assertTrue(first.deviceId.isNotEmpty())
                assertEquals(first.deviceId, first.info().deviceId)
                assertNotEquals(first.deviceId, second.deviceId)
                first.login("ben").await()
                assertEquals(first.deviceId, first.info().deviceId)
            }
        }
    }

    @Test
    fun `the state is the one the listener has been told`() {
        val hub = uniqueHub("info-told")
        val seen = Collections.synchronizedList(ArrayList<Pair<ConnectionState, ClientInfo>>())
        val recorder = EventRecorder()
        BeckonClient(ClientConfig(hub, deviceId = "cat-tab")).use { client ->
            client.setEventListener { event ->
                if (event is BeckonEvent.ConnectionStateChanged) seen.add(event.state to client.info())
                recorder.onEvent(event)
            }
            client.login("cat").await()
            client.logout().await()
            recorder.awaitEvent<BeckonEvent.ConnectionStateChanged> { it.state == ConnectionState.DISCONNECTED }
        }
        val states = seen.map { it.first }
        assertEquals(listOf(ConnectionState.CONNECTING, ConnectionState.CONNECTED), states.take(2), seen.toString())
        assertEquals(ConnectionState.DISCONNECTED, states.last())
        for ((state, info) in seen) {
            assertEquals(state, info.connectionState)
            assertEquals("cat-tab", info.deviceId)
        }
        assertEquals("cat", seen[1].second.userId)
    }

    @Test
    fun `poll mode tells the state once polled`() {
        val hub = uniqueHub("info-poll")
        BeckonClient(ClientConfig(hub).withDispatchMode(DispatchMode.POLL)).use { client ->
            val login = client.login("dan")
            // Nothing is dispatched until polled: the app has been told nothing yet.
            assertEquals(ConnectionState.DISCONNECTED, client.connectionState)
            val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS)
            while (!login.isDone && System.nanoTime() < deadline) client.poll(50)
            login.await()
            assertEquals(ConnectionState.CONNECTED, client.connectionState)
            assertEquals("dan", client.userId)
        }
    }

    @Test
    fun `a closed client throws ShutdownException but keeps its device id`() {
        val client = BeckonClient(ClientConfig(uniqueHub("info-closed"), deviceId = "eve-pc"))
        client.login("eve").await()
        client.close()
        assertThrows(ShutdownException::class.java) { client.info() }
        assertThrows(ShutdownException::class.java) { client.userId }
        assertThrows(ShutdownException::class.java) { client.connectionState }
        assertEquals("eve-pc", client.deviceId)
    }
}
