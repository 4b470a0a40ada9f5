"""BERT's WordPiece tokenizer from a ``vocab.txt``, in plain Python.

It reproduces the Hugging Face fast tokenizer configured in all-MiniLM-L6-v2's ``tokenizer.json``:

1. special tokens written literally in the text (``[MASK]``) are matched first and never normalised;
2. ``BertNormalizer``: drop NUL, U+FFFD and control characters, turn whitespace into spaces, surround CJK
   ideographs with spaces, strip accents (NFD, drop non-spacing marks), lowercase - in that order;
3. ``BertPreTokenizer``: split on whitespace, and make every punctuation character a word of its own;
4. ``WordPiece``: greedy longest match from the left, continuation pieces prefixed ``##``; a word longer than
   100 characters, or one that cannot be covered, becomes ``[UNK]``;
5. ``[CLS] ... [SEP]``, truncated to ``max_length`` tokens in all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NetworkInputError, WeightFileError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
CONTINUATION_PREFIX = "##"
MAX_CHARS_PER_WORD = 100

# CJK Unified Ideographs and their extensions and compatibility blocks, as BERT defines "Chinese characters"
# (Hangul and kana are not in it: they are written with spaces or tokenised as ordinary letters).
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
               (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_cjk(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_punctuation(ch: str) -> bool:
    # All ASCII non-alphanumeric printable characters count ("$", "^", "`" are symbols in Unicode), plus Unicode P*.
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_removed(ch: str) -> bool:
    # NUL, the replacement character and control/format/unassigned/private characters, but not \t \n \r.
    if ch in "\t\n\r":
        return False
    return ch == "\x00" or ch == "\ufffd" or unicodedata.category(ch).startswith("C")


def normalize(text: str) -> str:
    """BertNormalizer with clean_text, handle_chinese_chars, strip_accents and lowercase all on."""
    pieces = []
    for ch in text:
        if _is_removed(ch):
            continue
        if ch.isspace():  # after removing controls this is Unicode White_Space: Zs, U+2028, U+2029
            pieces.append(" ")
        elif _is_cjk(ch):
            pieces.append(f" {ch} ")
        else:
            pieces.append(ch)
    decomposed = unicodedata.normalize("NFD", "".join(pieces))
    stripped = (ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    # Character by character, like the Rust tokenizer: str.lower() would apply the final-sigma rule.
    return "".join(ch.lower() for ch in stripped)


def pre_tokenize(normalized: str) -> list[str]:
    """Split normalised text into words: on whitespace, and around each punctuation character."""
    words = []
    for chunk in normalized.split():
        start = 0
        for i, ch in enumerate(chunk):
            if _is_punctuation(ch):
                if i > start:
                    words.append(chunk[start:i])
                words.append(ch)
                start = i + 1
        if start < len(chunk):
            words.append(chunk[start:])
    return words


@dataclass(frozen=True)
class TokenBatch:
    """Token ids of a batch of texts, right-padded with ``[PAD]``; ``attention_mask`` is 1 on real tokens."""

    input_ids: np.ndarray  # [B, T] int64
    attention_mask: np.ndarray  # [B, T] int64

    @property
    def lengths(self) -> np.ndarray:
        return self.attention_mask.sum(axis=1)


class WordPieceTokenizer:
    """Lowercasing BERT WordPiece tokenizer over a fixed vocabulary (token -> id = line number)."""

    def __init__(self, vocab: Sequence[str], max_chars_per_word: int = MAX_CHARS_PER_WORD,
                 source: str = "vocabulary"):
        self.vocab = {token: i for i, token in enumerate(vocab)}
        self.tokens = list(vocab)
        self.max_chars_per_word = max_chars_per_word
        missing = [t for t in SPECIAL_TOKENS if t not in self.vocab]
        if missing:
            raise WeightFileError(source, f"has no {missing[0]} token; not a BERT WordPiece vocabulary")
        self.pad_id, self.unk_id, self.cls_id, self.sep_id = (self.vocab[t] for t in SPECIAL_TOKENS[:4])
        # Longest first, so that no special token is split by a shorter one that prefixes it.
        specials = sorted(SPECIAL_TOKENS, key=len, reverse=True)
        self._special_pattern = re.compile("(" + "|".join(map(re.escape, specials)) + ")")
        self._word_cache: dict[str, tuple[int, ...]] = {}

    @classmethod
    def from_vocab_file(cls, path: str | Path) -> WordPieceTokenizer:
        """Read ``vocab.txt``: one token per line, ids in line order."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WeightFileError(path, "no such file") from None
        except UnicodeDecodeError as exc:
            raise WeightFileError(path, f"is not UTF-8 text ({exc.reason}); not a vocab.txt") from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return cls([line.rstrip("\r") for line in lines], source=str(path))

    def __len__(self) -> int:
        return len(self.tokens)

    def word_ids(self, word: str) -> tuple[int, ...]:
        """WordPiece ids of one pre-tokenised word (greedy longest match from the left)."""
        ids = self._word_cache.get(word)
        if ids is None:
            ids = self._word_cache[word] = self._greedy_pieces(word)
        return ids

    def _greedy_pieces(self, word: str) -> tuple[int, ...]:
        if len(word) > self.max_chars_per_word:
            return (self.unk_id,)
        ids = []
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else CONTINUATION_PREFIX + word[start:end]
                piece_id = self.vocab.get(piece)
                if piece_id is not None:
                    break
            else:  # no prefix of the rest is in the vocabulary: the whole word is unknown
                return (self.unk_id,)
            ids.append(piece_id)
            start = end
        return tuple(ids)

    def tokenize_ids(self, text: str) -> list[int]:
        """Ids of ``text`` without ``[CLS]``/``[SEP]`` and without truncation."""
        ids: list[int] = []
        for part in self._special_pattern.split(text):
            if part in SPECIAL_TOKENS:
                ids.append(self.vocab[part])
            elif part:
                for word in pre_tokenize(normalize(part)):
                    ids.extend(self.word_ids(word))
        return ids

    def encode(self, text: str, max_length: int = 256) -> list[int]:
        """``[CLS] ids [SEP]`` of ``text``, the ids cut so the whole fits ``max_length`` tokens."""
        if max_length < 2:
            raise NetworkInputError(f"max_length must leave room for [CLS] and [SEP], got {max_length}")
        return [self.cls_id, *self.tokenize_ids(text)[: max_length - 2], self.sep_id]

    def tokens_of(self, ids: Sequence[int]) -> list[str]:
        return [self.tokens[i] for i in ids]

    def batch(self, texts: Sequence[str], max_length: int = 256) -> TokenBatch:
        """Encode ``texts`` and right-pad them with ``[PAD]`` to the longest one."""
        if isinstance(texts, str) or len(texts) == 0:
            raise NetworkInputError("tokenizer wants a non-empty list of strings (wrap a single text in a list)")
        encoded = [self.encode(text, max_length) for text in texts]
        width = max(len(ids) for ids in encoded)
        input_ids = np.full((len(encoded), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(encoded), width), dtype=np.int64)
        for row, ids in enumerate(encoded):
            input_ids[row, : len(ids)] = ids
            mask[row, : len(ids)] = 1
        return TokenBatch(input_ids, mask)
