"""all-MiniLM-L6-v2 on real sentences: float32 against a float64 reference, padding, the GEMM trace."""

from __future__ import annotations

import numpy as np
import pytest

from hfp8sim.errors import NetworkInputError
from hfp8sim.networks import Float32Ops, Float64Ops, RecordingOps, TokenBatch, real_sentences


@pytest.fixture(scope="module")
def sentences():
    return real_sentences(32, seed=0)


@pytest.fixture(scope="module")
def embeddings(minilm, sentences):
    return minilm.embed(sentences, ops=Float32Ops()), minilm.embed(sentences, ops=Float64Ops())


def test_float32_embeddings_equal_the_float64_reference(embeddings):
    e32, e64 = embeddings
    assert e32.shape == (32, 384) and e32.dtype == np.float32 and e64.dtype == np.float64
    assert np.abs(e32 - e64).max() < 1e-5
    cosine = (e32.astype(np.float64) * e64).sum(axis=1) / np.linalg.norm(e32, axis=1) / np.linalg.norm(e64, axis=1)
    assert cosine.min() > 0.99999


def test_embeddings_are_unit_vectors(embeddings):
    np.testing.assert_allclose(np.linalg.norm(embeddings[1], axis=1), 1.0, rtol=0, atol=1e-12)


def test_pinned_embedding_values(minilm):
    # From this forward in float64; it agrees to 1.2e-7 with the research sketch, which agrees with
    # sentence-transformers (torch) to 1.4e-7 (real_networks.md section 1).
    e = minilm.embed(["This is an offline sentence embedding.", "A man is playing a guitar."])
    np.testing.assert_allclose(e[0, :6], [0.0122996353, 0.0162778835, 0.0841071446, 0.0529812085, 0.0732114942,
                                          0.0690098488], rtol=0, atol=1e-6)
    np.testing.assert_allclose(e[1, :6], [0.0216640736, -0.0048642275, -0.0096490935, -0.0634012442,
                                          -0.1674935234, 0.0046764178], rtol=0, atol=1e-6)


def test_paraphrases_are_closer_than_unrelated_sentences(minilm):
    guitar, guitar2, stocks, stocks2 = minilm.embed([
        "A man is playing a guitar.", "A person plays the guitar.",
        "The stock market fell sharply today.", "Stocks dropped steeply this afternoon."])
    assert guitar @ guitar2 > 0.8 and stocks @ stocks2 > 0.6
    assert max(guitar @ stocks, guitar @ stocks2, guitar2 @ stocks, guitar2 @ stocks2) < 0.1


def test_padding_does_not_change_an_embedding(minilm, sentences, embeddings):
    # In a batch, short sentences are padded to the longest; alone, they are not padded at all.
    shortest = int(np.argmin([len(minilm.tokenizer.encode(s)) for s in sentences]))
    alone = minilm.embed([sentences[shortest]], ops=Float64Ops())
    np.testing.assert_allclose(alone[0], embeddings[1][shortest], rtol=0, atol=1e-12)


def test_gemm_trace_names_and_macs(minilm):
    recorder = RecordingOps(Float32Ops())
    batch = minilm.tokenize(["hello world", "A man is playing a guitar."])  # padded to T = 9
    hidden = minilm.forward(batch, ops=recorder)
    assert hidden.shape == (2, 9, 384)
    names = [call.name for call in recorder.calls]
    assert len(names) == 48 == len(set(names))
    assert names[:8] == ["layer.0.attention.query", "layer.0.attention.key", "layer.0.attention.value",
                         "layer.0.attention.qk", "layer.0.attention.pv", "layer.0.attention.output",
                         "layer.0.intermediate", "layer.0.output"]
    qk = recorder.calls[3]
    assert (qk.count, qk.m, qk.n, qk.k, qk.a_role, qk.b_role) == (2 * 12, 9, 9, 32, "activation", "activation")
    assert recorder.calls[6].b_role == "weight"
    b, t, d, ff, heads, dh = 2, 9, 384, 1536, 12, 32
    per_layer = 4 * b * t * d * d + 2 * b * t * d * ff + 2 * b * heads * t * t * dh
    assert recorder.total_macs == 6 * per_layer


def test_long_text_is_truncated_to_256_tokens(minilm):
    batch = minilm.tokenize(["word " * 300])
    assert batch.input_ids.shape == (1, 256)
    embedding = minilm.embed(["word " * 300])
    assert embedding.shape == (1, 384) and np.isfinite(embedding).all()


def test_bad_inputs_are_refused(minilm):
    with pytest.raises(NetworkInputError, match="non-empty list of sentences"):
        minilm.embed("a single string")
    with pytest.raises(NetworkInputError, match=r"token ids must lie in \[0, 30522\)"):
        minilm.forward(TokenBatch(np.array([[101, 40000, 102]]), np.ones((1, 3), dtype=np.int64)))
    with pytest.raises(NetworkInputError, match="token batch must be"):
        minilm.forward(TokenBatch(np.zeros((1, 3), dtype=np.int64), np.ones((1, 4), dtype=np.int64)))
