"""The networks the training study trains: small, real, and each chosen to show one property of a scheme.

* :func:`mlp`: a two-layer perceptron (784-256-10 for Fashion-MNIST, 64-128-10 for the digits), the
  baseline every FP8 scheme should match.
* :func:`small_cnn`: a stem convolution, a depthwise-separable block (depthwise 3x3 + pointwise 1x1, the
  MobileNet building block on which single-format (1,5,2) FP8 is reported to lose accuracy), pooling and a
  classifier, with batch norm.
* :func:`char_transformer`: a decoder-only character language model (token + learned position embeddings,
  pre-norm blocks of causal multi-head attention and a GELU MLP), the transformer case.

Each builder names its first and last GEMM layers (:data:`FIRST_LAYER`, :data:`LAST_LAYER`) so that the
precision policy can keep them in FP16 as IBM's HFP8 recipe does (``first_last_fp16_overrides``).
"""

from __future__ import annotations

import numpy as np

from .layers import (
    GELU, BatchNorm, Conv2d, Embedding, Flatten, GlobalAvgPool, LayerNorm, Linear, MaxPool2d, Module,
    MultiHeadAttention, ReLU, ReLU6, Residual, Sequential,
)
from .ops import TrainingOps
from .tensors import Parameter, TrainingError

FIRST_LAYER = "first"
LAST_LAYER = "last"


def first_last_fp16_overrides(format_name: str = "float16") -> dict[str, str]:
    """Operand-format overrides (fnmatch patterns on GEMM layer names) that keep the first and last GEMM layers
    of these models in FP16; ``first.*`` covers the projections of an attention layer named ``first``."""
    return {FIRST_LAYER: format_name, f"{FIRST_LAYER}.*": format_name, LAST_LAYER: format_name}


def mlp(in_features: int, hidden: int, classes: int, *, seed: int = 0) -> Sequential:
    """Flatten, Linear, ReLU, Linear."""
    return Sequential(Flatten(), Linear(FIRST_LAYER, in_features, hidden, seed=seed), ReLU(),
                      Linear(LAST_LAYER, hidden, classes, seed=seed + 1), name="mlp")


def small_cnn(in_channels: int, classes: int, *, width: int = 16, seed: int = 0) -> Sequential:
    """Conv 3x3 (stem) - BN - ReLU - MaxPool 2 - depthwise 3x3 - BN - ReLU6 - pointwise 1x1 (2x width) - BN -
    ReLU - MaxPool 2 - global average pool - Linear.  For 28x28 images: 784 -> 196 -> 49 positions."""
    wide = 2 * width
    return Sequential(
        Conv2d(FIRST_LAYER, in_channels, width, 3, padding=1, seed=seed), BatchNorm("stem.bn", width), ReLU(),
        MaxPool2d(2),
        Conv2d("block.depthwise", width, width, 3, padding=1, groups=width, seed=seed + 1),
        BatchNorm("block.depthwise.bn", width), ReLU6(),
        Conv2d("block.pointwise", width, wide, 1, seed=seed + 2), BatchNorm("block.pointwise.bn", wide), ReLU(),
        MaxPool2d(2), GlobalAvgPool(), Linear(LAST_LAYER, wide, classes, seed=seed + 3), name="small_cnn")


class TokenAndPosition(Module):
    """Token embedding plus a learned position embedding: ids ``[B, T]`` -> ``[B, T, D]`` (T <= context)."""

    def __init__(self, vocab: int, dim: int, context: int, *, seed: int = 0):
        self.name = "embed"
        self.tokens = Embedding("embed.tokens", vocab, dim, seed=seed)
        # small position vectors so that the tokens dominate at the start of training
        self.position = Parameter("embed.position", 0.02 * np.random.default_rng(seed + 1).standard_normal(
            (context, dim)))
        self.context = context
        self._length = None

    def parameters(self) -> list[Parameter]:
        return [*self.tokens.parameters(), self.position]

    def forward(self, ids, ops: TrainingOps, train: bool = True):
        length = np.asarray(ids).shape[-1]
        if length > self.context:
            raise TrainingError(f"layer {self.name}: sequence of {length} tokens, the context is {self.context}")
        x = self.tokens.forward(ids, ops, train)
        if train:
            self._length = length
        return x + np.asarray(self.position.compute_value[:length], dtype=x.dtype)

    def backward(self, dy, ops: TrainingOps):
        length = self._cached("_length")
        dy = np.asarray(dy)
        grad = np.zeros(self.position.shape, dy.dtype)
        grad[:length] = dy.reshape(-1, length, dy.shape[-1]).sum(axis=0)
        self.position.add_grad(grad)
        self.tokens.backward(dy, ops)
        return None


def char_transformer(vocab: int, *, dim: int = 64, heads: int = 4, blocks: int = 2, context: int = 64,
                     softmax_input: str = "float32", seed: int = 0) -> Sequential:
    """A decoder-only character model: embeddings, ``blocks`` pre-norm transformer blocks (causal attention and
    a 4x GELU MLP, each residual), a final layer norm and the projection to the vocabulary.  The first GEMM
    layer is the first block's attention input projections (``first.q/.k/.v``)."""
    layers: list[Module] = [TokenAndPosition(vocab, dim, context, seed=seed)]
    for b in range(blocks):
        attention_name = FIRST_LAYER if b == 0 else f"block{b}.attention"
        layers.append(Residual(Sequential(
            LayerNorm(f"block{b}.ln1", dim),
            MultiHeadAttention(attention_name, dim, heads, causal=True, softmax_input=softmax_input,
                               seed=seed + 10 * b + 1))))
        layers.append(Residual(Sequential(
            LayerNorm(f"block{b}.ln2", dim), Linear(f"block{b}.mlp.up", dim, 4 * dim, seed=seed + 10 * b + 2),
            GELU(), Linear(f"block{b}.mlp.down", 4 * dim, dim, seed=seed + 10 * b + 3))))
    layers += [LayerNorm("final.ln", dim), Linear(LAST_LAYER, dim, vocab, seed=seed + 99)]
    return Sequential(*layers, name="char_transformer")


__all__ = ["FIRST_LAYER", "LAST_LAYER", "TokenAndPosition", "char_transformer", "first_last_fp16_overrides",
           "mlp", "small_cnn"]
