package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.TimeUnit

/** Loading, the ABI check, and the binding's enumerations against the library's. */
class LibraryTest {

    @Test
    fun `the loaded library has the ABI this binding needs`() {
        assertEquals(Beckon.BINDING_ABI_VERSION, Beckon.abiVersion)
        assertTrue(Beckon.version.matches(Regex("\\d+\\.\\d+\\.\\d+.*")), Beckon.version)
    }

    @Test
    fun `a library with another ABI version is refused at load`() {
        // test.sh builds src/test/c/fake_abi2.c: beckon_abi_version() returns 2.
        val fake = System.getProperty("beckon.test.fakeLibrary")
            ?: throw AssertionError("run through test.sh: -Dbeckon.test.fakeLibrary is not set")
        val classPath = System.getProperty("beckon.test.classpath")
            ?: throw AssertionError("run through test.sh: -Dbeckon.test.classpath is not set")
        val java = ProcessHandle.current().info().command().orElse("java")
        val process = ProcessBuilder(
            java, "-D${NativeLibraryProbe.PROPERTY}=$fake", "-cp", classPath,
            NativeLibraryProbe::class.java.name
        ).redirectErrorStream(true).start()
        assertTrue(process.waitFor(WAIT_SECONDS, TimeUnit.SECONDS), "the probe JVM did not finish")
        val output = process.inputStream.bufferedReader().readText()
        assertEquals(3, process.exitValue(), output)
        assertTrue(output.contains("IncompatibleLibraryError loaded=2 expected=1"), output)
        assertTrue(output.contains("9.9.9-fake") && output.contains(fake), output)
    }

    @Test
    fun `enumerations match the library's names and values`() {
        for (state in InviteeState.values().filter { it != InviteeState.UNKNOWN }) {
            assertEquals(state.name, Beckon.inviteeStateName(state.value))
            assertEquals(state, InviteeState.fromValue(state.value))
        }
        assertEquals(InviteeState.UNKNOWN, InviteeState.fromValue(42))
        for (kind in EventKind.values().filter { it != EventKind.UNKNOWN }) {
            assertEquals(kind.name, Beckon.eventKindName(kind.value))
        }
        assertEquals("UNKNOWN", Beckon.eventKindName(0))
        for (code in ErrorCode.values().filter { it != ErrorCode.UNKNOWN }) {
            assertEquals(code.name, Beckon.errorName(code.value))
            assertTrue(Beckon.errorDescription(code.value).length > 0)
        }
        assertTrue(InviteeState.ACCEPTED.isTerminal && !InviteeState.RECEIVED.isTerminal)
    }

    @Test
    fun `the log handler receives signaling lines, and can be removed`() {
        val lines = ConcurrentLinkedQueue<String>()
        Beckon.setLogHandler(LogLevel.DEBUG) { level, tag, subTag, message ->
            lines.add("$level $tag/$subTag $message")
            assertEquals("signaling", tag)
        }
        try {
            TestUser("logger", uniqueHub("log")).login().use { }
            waitUntil("a log line") { lines.isNotEmpty() }
            assertTrue(lines.all { it.contains(" signaling/") }, lines.toString())
        } finally {
            Beckon.setLogHandler(LogLevel.OFF, null)
        }
        val before = lines.size
        TestUser("quiet", uniqueHub("log")).login().use { }
        Thread.sleep(50) // nothing to wait for: no line should come
        assertEquals(before, lines.size)
    }
}

/** Run in a child JVM by LibraryTest: loads the library named by -Dbeckon.library and reports. */
object NativeLibraryProbe {
    const val PROPERTY = "beckon.library"

    @JvmStatic
    fun main(args: Array<String>) {
        try {
            println("loaded ABI ${Beckon.abiVersion}")
            System.exit(0)
        } catch (e: IncompatibleLibraryError) {
            println("IncompatibleLibraryError loaded=${e.loadedAbiVersion} expected=${e.expectedAbiVersion}: ${e.message}")
            System.exit(3)
        }
    }
}
