// Native memory for the inputs of one C call. Strings are checked (no NUL, no
// lone surrogate) and encoded as NUL-terminated UTF-8; every block stays
// allocated and reachable until the arena closes, after the C call returned.
// The library copies its inputs before returning, so nothing outlives that.

package dev.beckon

import com.sun.jna.Memory
import com.sun.jna.Native
import com.sun.jna.Pointer
import java.lang.ref.Reference
import java.nio.CharBuffer
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction
import java.nio.charset.StandardCharsets

internal class NativeArena : AutoCloseable {
    private val blocks = ArrayList<Memory>()
    private val keep = ArrayList<Any>()

    /** [text] as a NUL-terminated UTF-8 C string; [field] names it in errors. */
    fun string(text: String, field: String): Pointer {
        val bytes = utf8(text, field)
        val block = Memory(bytes.size + 1L)
        block.write(0, bytes, 0, bytes.size)
        block.setByte(bytes.size.toLong(), 0)
        blocks.add(block)
        return block
    }

    /** Like [string], or NULL for null. */
    fun stringOrNull(text: String?, field: String): Pointer? = text?.let { string(it, field) }

    /** A C array of C strings (`const char *const *`), one per item. */
    fun stringArray(items: List<String?>, field: String): Pointer {
        val array = Memory(Native.POINTER_SIZE.toLong() * maxOf(items.size, 1))
        blocks.add(array)
        items.forEachIndexed { i, item ->
            if (item == null) throw InvalidArgumentException("$field[$i]: is null")
            array.setPointer(Native.POINTER_SIZE.toLong() * i, string(item, "$field[$i]"))
        }
        return array
    }

    /** Keeps [value] (a Structure whose memory C reads) reachable until close. */
    fun <T : Any> keep(value: T): T {
        keep.add(value)
        return value
    }

    override fun close() {
        Reference.reachabilityFence(keep)
        for (block in blocks) block.close()
        blocks.clear()
        keep.clear()
    }

    companion object {
        /** Runs [block] with an arena that is closed (its memory freed) only after [block] returns. */
        inline fun <R> use(block: (NativeArena) -> R): R {
            val arena = NativeArena()
            try {
                return block(arena)
            } finally {
                arena.close()
            }
        }

        /** Strict UTF-8 of [text]: a NUL or a lone surrogate is an [InvalidArgumentException] naming [field]. */
        fun utf8(text: String, field: String): ByteArray {
            val nul = text.indexOf('\u0000')
            if (nul >= 0) throw InvalidArgumentException("$field: contains a NUL character at index $nul")
            val encoder = StandardCharsets.UTF_8.newEncoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
            val buffer = try {
                encoder.encode(CharBuffer.wrap(text))
            } catch (e: CharacterCodingException) {
                val at = text.indices.firstOrNull { i ->
                    val c = text[i]
                    (Character.isHighSurrogate(c) && (i + 1 >= text.length || !Character.isLowSurrogate(text[i + 1]))) ||
                        (Character.isLowSurrogate(c) && (i == 0 || !Character.isHighSurrogate(text[i - 1])))
                }
                throw InvalidArgumentException("$field: is not valid Unicode (lone surrogate at index ${at ?: "?"})")
            }
            val bytes = ByteArray(buffer.remaining())
            buffer.get(bytes)
            return bytes
        }
    }
}
