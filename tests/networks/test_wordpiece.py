"""WordPiece tokenizer: pinned ids from all-MiniLM-L6-v2's vocab.txt and the BertNormalizer rules."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.errors import NetworkInputError, WeightFileError
from hfp8sim.networks import WordPieceTokenizer
from hfp8sim.networks.wordpiece import normalize, pre_tokenize

# Ids are line numbers (from 0) of vocab.txt; the Hugging Face fast tokenizer gives the same ids for these
# sentences (checked for real_networks.md section 1).
PINNED = {
    "hello world": ["[CLS]", "hello", "world", "[SEP]"],
    "This is an offline sentence embedding.":
        ["[CLS]", "this", "is", "an", "off", "##line", "sentence", "em", "##bed", "##ding", ".", "[SEP]"],
    "A man is playing a guitar.": ["[CLS]", "a", "man", "is", "playing", "a", "guitar", ".", "[SEP]"],
    "The quick brown fox jumps over the lazy dog!":
        ["[CLS]", "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "!", "[SEP]"],
    "Déjà vu: naïve café résumé, 3.14 GHz":
        ["[CLS]", "de", "##ja", "vu", ":", "naive", "cafe", "resume", ",", "3", ".", "14", "ghz", "[SEP]"],
}
PINNED_IDS = {
    "hello world": [101, 7592, 2088, 102],
    "This is an offline sentence embedding.": [101, 2023, 2003, 2019, 2125, 4179, 6251, 7861, 8270, 4667, 1012, 102],
    "A man is playing a guitar.": [101, 1037, 2158, 2003, 2652, 1037, 2858, 1012, 102],
    "The quick brown fox jumps over the lazy dog!":
        [101, 1996, 4248, 2829, 4419, 14523, 2058, 1996, 13971, 3899, 999, 102],
    "Déjà vu: naïve café résumé, 3.14 GHz":
        [101, 2139, 3900, 24728, 1024, 15743, 7668, 13746, 1010, 1017, 1012, 2403, 29066, 102],
}


@pytest.fixture(scope="module")
def tokenizer(minilm):
    return minilm.tokenizer


@pytest.mark.parametrize("sentence", list(PINNED))
def test_pinned_token_ids(tokenizer, sentence):
    ids = tokenizer.encode(sentence)
    assert ids == PINNED_IDS[sentence]
    assert tokenizer.tokens_of(ids) == PINNED[sentence]


def test_vocabulary_is_read_in_line_order(tokenizer):
    assert len(tokenizer) == 30522
    assert tokenizer.tokens_of([0, 100, 101, 102, 103]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert tokenizer.vocab["hello"] == 7592


def test_normalizer_cleans_spaces_cjk_accents_and_case():
    assert normalize("A\tB\u00a0C\u2028D") == "a b c d"  # tab, no-break space, line separator -> space
    assert normalize("x\x00y\ufffdz\u200bw\x07") == "xyzw"  # NUL, U+FFFD, zero-width space, BEL dropped
    assert normalize("北京") == " 北  京 "  # ideographs stand alone
    assert normalize("Ångström Ñandú") == "angstrom nandu"
    assert normalize("ΟΔΟΣ") == "οδοσ"  # character by character: no final-sigma rule


def test_pre_tokenizer_isolates_every_punctuation_character():
    assert pre_tokenize("don't stop--now! a$b «c»") == ["don", "'", "t", "stop", "-", "-", "now", "!",
                                                     "a", "$", "b", "«", "c", "»"]


def test_unknown_and_overlong_words_become_unk(tokenizer):
    assert tokenizer.encode("北京欢迎你") == [101, 1781, 1755, 100, 100, 100, 102]  # 欢迎你 are not in the vocab
    assert tokenizer.encode("x" * 101 + " ok") == [101, 100, 7929, 102]  # > 100 characters
    assert tokenizer.encode("x" * 100)[1] != 100  # exactly 100 characters is still split into pieces


def test_special_tokens_in_the_text_are_kept_whole(tokenizer):
    assert tokenizer.encode("a [MASK] b") == [101, 1037, 103, 1038, 102]
    assert tokenizer.encode("a [mask] b") == [101, 1037, 1031, 7308, 1033, 1038, 102]  # only the exact spelling


def test_truncation_keeps_cls_and_sep(tokenizer):
    ids = tokenizer.encode("word " * 400)
    assert len(ids) == 256 and ids[0] == 101 and ids[-1] == 102 and set(ids[1:-1]) == {2773}
    assert len(tokenizer.encode("word " * 400, max_length=8)) == 8
    with pytest.raises(NetworkInputError, match="max_length"):
        tokenizer.encode("word", max_length=1)


def test_batch_pads_right_with_a_mask(tokenizer):
    batch = tokenizer.batch(["hello world", "A man is playing a guitar."])
    assert batch.input_ids.shape == (2, 9) and batch.input_ids.dtype == np.int64
    np.testing.assert_array_equal(batch.input_ids[0], [101, 7592, 2088, 102, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(batch.attention_mask[0], [1, 1, 1, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(batch.lengths, [4, 9])
    with pytest.raises(NetworkInputError, match="non-empty list"):
        tokenizer.batch("hello world")


def test_vocabulary_without_special_tokens_is_refused(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\nhello\nworld\n", encoding="utf-8")
    with pytest.raises(WeightFileError, match="has no \\[UNK\\] token; not a BERT WordPiece vocabulary"):
        WordPieceTokenizer.from_vocab_file(vocab)
