"""llama.cpp's vocabulary: token pieces of any length, tokenizing, and incremental text decoding.

Every place that turns tokens into text goes through `Vocab.piece`: llama-cpp-python's own
`detokenize` copies each piece through a 32-byte buffer and silently drops longer ones.
"""

from __future__ import annotations

import codecs
import ctypes

import llama_cpp

from localr1.errors import ConfigError

_FIRST_BUFFER = 64  # most pieces are a few bytes; R1's longest is 128


class Vocab:
    """A loaded model's vocabulary (a `llama_vocab *`); valid while its model is."""

    def __init__(self, pointer: llama_cpp.llama_vocab_p) -> None:
        self._vocab = pointer
        self._buffer = ctypes.create_string_buffer(_FIRST_BUFFER)

    @property
    def size(self) -> int:
        """Number of tokens."""
        return int(llama_cpp.llama_vocab_n_tokens(self._vocab))

    @property
    def bos(self) -> int:
        """The beginning-of-sequence token id (-1 when there is none)."""
        return int(llama_cpp.llama_vocab_bos(self._vocab))

    @property
    def adds_bos(self) -> bool:
        """Whether the model's tokenizer wants BOS added in front of a prompt."""
        return bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))

    def is_end(self, token: int) -> bool:
        """True for end-of-generation tokens (EOS, EOT and the like)."""
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes a token stands for, however long; control tokens are empty unless `special`."""
        size = llama_cpp.llama_token_to_piece(self._vocab, token, self._buffer, len(self._buffer), 0, special)
        if size < 0:  # llama.cpp says how many bytes it needs
            self._buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, self._buffer, len(self._buffer), 0, special)
        return self._buffer.raw[:size]

    def detokenize(self, tokens: list[int], special: bool = False) -> bytes:
        """The bytes of several tokens, piece after piece."""
        return b"".join(self.piece(token, special) for token in tokens)

    def tokenize(self, text: str, add_bos: bool, special: bool) -> list[int]:
        """Token ids of text; `special` parses special-token text such as `<｜User｜>`."""
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:  # an unpaired surrogate: a JSON "\\ud800" escape, or undecodable argv bytes
            raise ConfigError(f"the text has an invalid character ({exc.object[exc.start]!r} at position {exc.start}, "
                              "half of a UTF-16 pair): remove it or fix the text's encoding") from None
        size = len(data) + 2  # never more tokens than bytes, plus BOS/EOS
        while True:
            ids = (llama_cpp.llama_token * size)()
            count = llama_cpp.llama_tokenize(self._vocab, data, len(data), ids, size, add_bos, special)
            if count >= 0:
                return list(ids[:count])
            size = -count


class TextDecoder:
    """Turns a stream of tokens into text: whole pieces, UTF-8 characters split across tokens kept."""

    def __init__(self, vocab: Vocab) -> None:
        self._vocab = vocab
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token: int) -> str:
        """Text that is complete after this token (maybe empty, while a character is split)."""
        return self._utf8.decode(self._vocab.piece(token))

    @property
    def mid_character(self) -> bool:
        """True while the bytes of a character split across tokens are still arriving."""
        return bool(self._utf8.getstate()[0])

    def finish(self) -> str:
        """Nothing: the bytes of a character cut off by the end (a token limit) are dropped, never shown as U+FFFD."""
        self._utf8.reset()
        return ""

