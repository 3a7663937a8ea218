package dev.beckon

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.TimeUnit

/** Loading, the ABI check, and the binding's enumerations against the library's. */
class LibraryTest {

    @Test
    fun `the loaded library has the ABI this binding needs`() {
        assertEquals(2, Beckon.BINDING_ABI_VERSION_MAJOR)
        assertEquals(3, Beckon.BINDING_ABI_VERSION_MINOR)
        assertEquals((2 shl 16) or 3, Beckon.BINDING_ABI_VERSION)
        assertEquals(Beckon.BINDING_ABI_VERSION, Beckon.abiVersion)
        assertEquals("2.3", Beckon.abiVersionText(Beckon.abiVersion))
        assertTrue(Beckon.isAbiCompatible(Beckon.abiVersion))
        assertTrue(Beckon.version.matches(Regex("\\d+\\.\\d+\\.\\d+.*")), Beckon.version)
    }

    @Test
    fun `the ABI rule is the same major and an equal or newer minor`() {
        fun v(major: Int, minor: Int) = (major shl 16) or minor
        assertEquals("3.17", Beckon.abiVersionText(v(3, 17)))
        assertEquals("0.1", Beckon.abiVersionText(1))
        assertTrue(Beckon.isAbiCompatible(v(2, 0), v(2, 0)))
        assertTrue(Beckon.isAbiCompatible(v(2, 3)), "the same version")
        assertTrue(Beckon.isAbiCompatible(v(2, 4)), "a newer minor library")
        assertFalse(Beckon.isAbiCompatible(v(2, 2)), "ABI 2.2 lacks the 2.3 function this binding calls")
        assertFalse(Beckon.isAbiCompatible(v(2, 1)), "ABI 2.1 lacks the 2.2 functions this binding calls")
        assertTrue(Beckon.isAbiCompatible(v(2, 3), v(2, 1)), "a newer minor library")
        assertFalse(Beckon.isAbiCompatible(v(2, 1), v(2, 3)), "an older minor library")
        assertFalse(Beckon.isAbiCompatible(v(2, 0)), "ABI 2.0 lacks the 2.1 functions this binding calls")
        assertFalse(Beckon.isAbiCompatible(v(2, 0), v(2, 1)), "an older minor library")
        assertFalse(Beckon.isAbiCompatible(v(3, 0)), "another major")
        assertFalse(Beckon.isAbiCompatible(v(1, 0xFFFF)), "an older major")
        assertFalse(Beckon.isAbiCompatible(1), "the unversioned ABI 1")
    }

    /** Runs [NativeLibraryProbe] in a child JVM on test.sh's fake library NAME; its exit status and output. */
    private fun probe(name: String, vararg args: String): Pair<Int, String> {
        // test.sh builds src/test/c/fake_abi.c once per version: libbeckon-abi-NAME.so.
        val dir = System.getProperty("beckon.test.fakeLibraries")
            ?: throw AssertionError("run through test.sh: -Dbeckon.test.fakeLibraries is not set")
        val classPath = System.getProperty("beckon.test.classpath")
            ?: throw AssertionError("run through test.sh: -Dbeckon.test.classpath is not set")
        val fake = "$dir/libbeckon-abi-$name.so"
        assertTrue(java.io.File(fake).isFile, "$fake is missing")
        val java = ProcessHandle.current().info().command().orElse("java")
        val process = ProcessBuilder(
            listOf(java, "-D${NativeLibraryProbe.PROPERTY}=$fake", "-cp", classPath, NativeLibraryProbe::class.java.name) +
                args
        ).redirectErrorStream(true).start()
        assertTrue(process.waitFor(WAIT_SECONDS, TimeUnit.SECONDS), "the probe JVM did not finish")
        return process.exitValue() to process.inputStream.bufferedReader().readText()
    }

    @Test
    fun `a library with another ABI major version or an older minor is refused at load`() {
        val expected = Beckon.BINDING_ABI_VERSION
        val refused = listOf(
            "3.0" to (3 shl 16), "1.65535" to ((1 shl 16) or 0xFFFF), "1" to 1, "2.0" to (2 shl 16),
            "2.1" to ((2 shl 16) or 1), "2.2" to ((2 shl 16) or 2)
        )
        for ((name, loaded) in refused) {
            val (status, output) = probe(name)
            assertEquals(3, status, output)
            assertTrue(output.contains("IncompatibleLibraryError loaded=$loaded expected=$expected"), output)
            val shown = if (name == "1") "0.1" else name
            assertTrue(output.contains("has ABI version $shown; this binding needs ABI 2.3 (the same major"), output)
            assertTrue(output.contains("9.9.9-fake") && output.contains("libbeckon-abi-$name.so"), output)
        }
    }

    @Test
    fun `a library with a newer ABI minor version is accepted, then fails only for what it lacks`() {
        val (status, output) = probe("2.4", "client")
        // Loaded without complaint about its version...
        assertTrue(output.contains("loaded ABI ${(2 shl 16) or 4}"), output)
        assertFalse(output.contains("IncompatibleLibraryError"), output)
        // ...then the fake's missing beckon_client_new is the error.
        assertEquals(4, status, output)
        assertTrue(output.contains("UnsatisfiedLinkError") && output.contains("beckon_client_new"), output)
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

    /** With the argument "client", also creates a client once loaded. */
    @JvmStatic
    fun main(args: Array<String>) {
        try {
            println("loaded ABI ${Beckon.abiVersion}")
            if (args.contains("client")) BeckonClient("memory://probe").close()
            System.exit(0)
        } catch (e: IncompatibleLibraryError) {
            println("IncompatibleLibraryError loaded=${e.loadedAbiVersion} expected=${e.expectedAbiVersion}: ${e.message}")
            System.exit(3)
        } catch (e: UnsatisfiedLinkError) {
            println("UnsatisfiedLinkError: ${e.message}")
            System.exit(4)
        }
    }
}
