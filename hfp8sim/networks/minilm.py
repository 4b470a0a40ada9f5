"""all-MiniLM-L6-v2 (a 6-layer BERT sentence encoder) in numpy, with its GEMMs routed through an ops object.

Forward, as sentence-transformers runs it:

- embeddings: word + token type 0 + position, then LayerNorm (eps 1e-12);
- 6 encoder layers, each: Q, K, V projections; per head (12 heads of 32) ``softmax(Q K^T / sqrt(32) + mask) V``;
  output projection, residual, LayerNorm; feed-forward 384 -> 1536, exact erf-GELU, 1536 -> 384, residual,
  LayerNorm;
- mean of the last hidden states over the real (unpadded) tokens, then L2 normalisation.

GEMM layer names (``ops`` sees each once per forward): ``layer.{i}.attention.{query,key,value}``,
``layer.{i}.attention.qk`` (Q K^T, both operands activations), ``layer.{i}.attention.pv`` (probabilities x V),
``layer.{i}.attention.output``, ``layer.{i}.intermediate``, ``layer.{i}.output``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import NetworkInputError, WeightFileError
from .functional import gelu, layer_norm, softmax
from .ops import ACTIVATION, WEIGHT, Float32Ops, GemmOps
from .safetensors import read_safetensors
from .wordpiece import TokenBatch, WordPieceTokenizer


@dataclass(frozen=True)
class BertConfig:
    """The hyper-parameters of a BERT encoder (``config.json``) plus the sentence encoder's ``max_seq_length``."""

    vocab_size: int = 30522
    type_vocab_size: int = 2
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    layer_norm_eps: float = 1e-12
    hidden_act: str = "gelu"
    max_seq_length: int = 256

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @classmethod
    def from_model_dir(cls, folder: Path) -> BertConfig:
        """Read ``config.json`` and ``sentence_bert_config.json``; absent keys keep MiniLM-L6's values."""
        values = {}
        for file_name in ("config.json", "sentence_bert_config.json"):
            path = folder / file_name
            if not path.is_file():
                continue
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise WeightFileError(path, f"is not valid JSON ({exc})") from None
            values.update({k: loaded[k] for k in cls.__dataclass_fields__ if k in loaded})
        config = cls(**values)
        if config.hidden_act != "gelu":
            raise WeightFileError(folder / "config.json", f"hidden_act {config.hidden_act!r} is not supported "
                                                          "(only the exact erf GELU, 'gelu')", fix="")
        if config.hidden_size % config.num_attention_heads:
            raise WeightFileError(folder / "config.json", "hidden_size is not a multiple of num_attention_heads",
                                  fix="")
        return config


@dataclass(frozen=True)
class _EncoderLayer:
    query: tuple[np.ndarray, np.ndarray]  # (weight [in, out], bias [out])
    key: tuple[np.ndarray, np.ndarray]
    value: tuple[np.ndarray, np.ndarray]
    attention_output: tuple[np.ndarray, np.ndarray]
    attention_norm: tuple[np.ndarray, np.ndarray]  # (gamma, beta)
    intermediate: tuple[np.ndarray, np.ndarray]
    output: tuple[np.ndarray, np.ndarray]
    output_norm: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _BertWeights:
    """The weights in one float dtype, linear weights transposed once to the GEMM's ``[K, N]`` layout."""

    word: np.ndarray
    position: np.ndarray
    token_type: np.ndarray
    embedding_norm: tuple[np.ndarray, np.ndarray]
    layers: tuple[_EncoderLayer, ...]


def _prepare(tensors: Mapping[str, np.ndarray], config: BertConfig, dtype: np.dtype, source: str) -> _BertWeights:
    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        if name not in tensors:
            raise WeightFileError(source, f"has no tensor {name!r}; not a BERT encoder checkpoint")
        value = tensors[name]
        if value.shape != shape:
            raise WeightFileError(source, f"tensor {name!r} has shape {value.shape}, config says {shape}")
        return value.astype(dtype)

    def linear(prefix: str, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
        # torch stores [out, in]; the GEMM wants b = [K=in, N=out], contiguous.
        return np.ascontiguousarray(get(prefix + ".weight", (n_out, n_in)).T), get(prefix + ".bias", (n_out,))

    def norm(prefix: str) -> tuple[np.ndarray, np.ndarray]:
        return get(prefix + ".weight", (hidden,)), get(prefix + ".bias", (hidden,))

    hidden, inner = config.hidden_size, config.intermediate_size
    layers = []
    for i in range(config.num_hidden_layers):
        p = f"encoder.layer.{i}."
        layers.append(_EncoderLayer(
            query=linear(p + "attention.self.query", hidden, hidden),
            key=linear(p + "attention.self.key", hidden, hidden),
            value=linear(p + "attention.self.value", hidden, hidden),
            attention_output=linear(p + "attention.output.dense", hidden, hidden),
            attention_norm=norm(p + "attention.output.LayerNorm"),
            intermediate=linear(p + "intermediate.dense", hidden, inner),
            output=linear(p + "output.dense", inner, hidden),
            output_norm=norm(p + "output.LayerNorm"),
        ))
    return _BertWeights(
        word=get("embeddings.word_embeddings.weight", (config.vocab_size, hidden)),
        position=get("embeddings.position_embeddings.weight", (config.max_position_embeddings, hidden)),
        token_type=get("embeddings.token_type_embeddings.weight", (config.type_vocab_size, hidden)),
        embedding_norm=norm("embeddings.LayerNorm"),
        layers=tuple(layers),
    )


class MiniLM:
    """A BERT sentence encoder: tokenizer, weights and the forward; ``embed`` gives unit-length embeddings."""

    def __init__(self, tensors: Mapping[str, np.ndarray], tokenizer: WordPieceTokenizer,
                 config: BertConfig = BertConfig(), source: str = "weights"):
        self.config = config
        self.tokenizer = tokenizer
        self.source = source
        self._tensors = tensors
        self._by_dtype: dict[np.dtype, _BertWeights] = {}
        if config.max_seq_length > config.max_position_embeddings:
            raise WeightFileError(source, f"max_seq_length {config.max_seq_length} exceeds the "
                                          f"{config.max_position_embeddings} position embeddings", fix="")
        if len(tokenizer) > config.vocab_size:
            raise WeightFileError(source, f"the vocabulary has {len(tokenizer)} tokens but the model only "
                                          f"{config.vocab_size} embeddings", fix="")
        self._weights(np.dtype(np.float32))  # validate names and shapes now, not at the first forward

    @classmethod
    def from_dir(cls, folder: str | Path) -> MiniLM:
        """Load ``model.safetensors``, ``vocab.txt`` and the configs of a sentence-transformers model folder."""
        folder = Path(folder)
        tensors = read_safetensors(folder / "model.safetensors")
        tokenizer = WordPieceTokenizer.from_vocab_file(folder / "vocab.txt")
        return cls(tensors, tokenizer, BertConfig.from_model_dir(folder), source=str(folder / "model.safetensors"))

    def _weights(self, dtype: np.dtype) -> _BertWeights:
        if dtype not in self._by_dtype:
            self._by_dtype[dtype] = _prepare(self._tensors, self.config, dtype, self.source)
        return self._by_dtype[dtype]

    def tokenize(self, sentences: Sequence[str]) -> TokenBatch:
        """Token ids and attention mask of ``sentences``, truncated to ``max_seq_length`` and right-padded."""
        return self.tokenizer.batch(sentences, self.config.max_seq_length)

    def forward(self, batch: TokenBatch, ops: GemmOps | None = None) -> np.ndarray:
        """Last hidden states ``[B, T, hidden]`` of a token batch (in ``ops.float_dtype``)."""
        ops = ops if ops is not None else Float32Ops()
        ids, mask = np.asarray(batch.input_ids), np.asarray(batch.attention_mask)
        if ids.ndim != 2 or ids.shape != mask.shape or ids.shape[1] > self.config.max_position_embeddings:
            raise NetworkInputError(f"token batch must be [B, T<={self.config.max_position_embeddings}] ids with "
                                    f"a mask of the same shape, got {ids.shape} and {mask.shape}")
        weights = self._weights(np.dtype(ops.float_dtype))
        if ids.min() < 0 or ids.max() >= weights.word.shape[0]:
            raise NetworkInputError(f"token ids must lie in [0, {weights.word.shape[0]}) for this vocabulary")
        dtype = weights.word.dtype
        cfg = self.config
        n_batch, n_tokens = ids.shape
        n_heads, head_size = cfg.num_attention_heads, cfg.head_size

        # (word + type) + position: torch's order of the two additions.
        x = (weights.word[ids] + weights.token_type[0]) + weights.position[:n_tokens]
        x = layer_norm(x, *weights.embedding_norm, cfg.layer_norm_eps)
        # Masked keys get the most negative finite score, so exp() gives exactly 0 for them (as in HF BERT).
        key_bias = ((1 - mask).astype(dtype) * np.finfo(dtype).min)[:, None, None, :]
        scale = dtype.type(1.0 / math.sqrt(head_size))

        def linear(name: str, inputs: np.ndarray, params: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
            weight, bias = params
            return ops.matmul(name, inputs, weight, ACTIVATION, WEIGHT) + bias

        def split_heads(t: np.ndarray) -> np.ndarray:  # [B, T, H] -> [B, heads, T, head_size]
            return t.reshape(n_batch, n_tokens, n_heads, head_size).transpose(0, 2, 1, 3)

        for i, layer in enumerate(weights.layers):
            name = f"layer.{i}"
            q = split_heads(linear(f"{name}.attention.query", x, layer.query))
            k = split_heads(linear(f"{name}.attention.key", x, layer.key))
            v = split_heads(linear(f"{name}.attention.value", x, layer.value))
            scores = ops.matmul(f"{name}.attention.qk", q, k.transpose(0, 1, 3, 2), ACTIVATION, ACTIVATION)
            probabilities = softmax(scores * scale + key_bias)
            context = ops.matmul(f"{name}.attention.pv", probabilities, v, ACTIVATION, ACTIVATION)
            context = context.transpose(0, 2, 1, 3).reshape(n_batch, n_tokens, cfg.hidden_size)
            attended = linear(f"{name}.attention.output", context, layer.attention_output)
            x = layer_norm(attended + x, *layer.attention_norm, cfg.layer_norm_eps)
            hidden = gelu(linear(f"{name}.intermediate", x, layer.intermediate))
            x = layer_norm(linear(f"{name}.output", hidden, layer.output) + x, *layer.output_norm,
                           cfg.layer_norm_eps)
        return x

    def pool(self, hidden_states: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Mean over real tokens, then L2 normalisation (sentence-transformers' Pooling + Normalize)."""
        weights = attention_mask.astype(hidden_states.dtype)[:, :, None]
        summed = (hidden_states * weights).sum(axis=1)
        mean = summed / np.maximum(weights.sum(axis=1), 1e-9)
        norm = np.linalg.norm(mean, axis=1, keepdims=True)
        return mean / np.maximum(norm, 1e-12)

    def embed(self, sentences: Sequence[str], ops: GemmOps | None = None, batch_size: int = 16) -> np.ndarray:
        """Unit-length sentence embeddings ``[len(sentences), hidden]``.

        Sentences are run ``batch_size`` at a time, each batch padded to its longest sentence; padding does not
        change a sentence's embedding (masked keys get zero attention, padded tokens are left out of the mean).
        """
        if isinstance(sentences, str) or len(sentences) == 0:
            raise NetworkInputError("embed wants a non-empty list of sentences (wrap a single one in a list)")
        if batch_size < 1:
            raise NetworkInputError(f"batch_size must be at least 1, got {batch_size}")
        ops = ops if ops is not None else Float32Ops()
        pieces = []
        for start in range(0, len(sentences), batch_size):
            batch = self.tokenize(sentences[start:start + batch_size])
            pieces.append(self.pool(self.forward(batch, ops), batch.attention_mask))
        return np.concatenate(pieces, axis=0)
