"""Seeded synthetic operands for the GEMM layers of a workload that has no real weights or inputs.

Each GEMM layer gets its own generator, ``numpy.random.default_rng([seed, layer index])``, so a layer's
tensors do not depend on which other layers are traced.  Values are float32:

- **weights**: normal with fan-in scaling, standard deviation ``1 / sqrt(K)`` (K the GEMM's reduction);
- **activations**: shaped by the layer that produces them, found by walking back through layers that only
  move data (reshape, concat, max pooling, format conversion, scaling):

  ===================================  =========================================================
  producer                             values
  ===================================  =========================================================
  relu, relu6, clip (and maxpool)      ``max(z, 0)`` - half of them exactly zero
  avgpool, global_avgpool of a ReLU    ``|z|`` (half-normal: averages of rectified values)
  softmax                              ``softmax(z)`` along the row (attention probabilities)
  gelu, silu, sigmoid, tanh            that function of ``z``
  anything else, or the network input  ``z``
  ===================================  =========================================================

  with ``z`` standard normal;
- **gradients** (backward passes): normal with standard deviation 1e-3.
"""

from __future__ import annotations

import math

import numpy as np

from ..networks.functional import gelu, softmax
from ..workloads.layers import Conv2d, Layer, MatMul
from ..workloads.network import Network, layer_op_name

GRADIENT_STD = 1e-3
_RECTIFIERS = ("relu", "relu6", "clip")
_DATA_MOVEMENT = ("reshape", "concat", "maxpool", "convert", "scale")
_AVERAGES = ("avgpool", "global_avgpool")
_FUNCTIONS = ("softmax", "gelu", "silu", "sigmoid", "tanh")


def producer_distribution(network: Network, producer: str | None) -> str:
    """The kind of values the layer ``producer`` outputs: ``relu``, ``half_normal``, ``softmax``, ``gelu``,
    ``silu``, ``sigmoid``, ``tanh`` or ``normal`` (see the module docstring)."""
    averaged = False
    name = producer
    while name is not None:
        layer = network.layer(name)
        op = layer_op_name(layer)
        if op in _RECTIFIERS:
            return "half_normal" if averaged else "relu"
        if op in _FUNCTIONS:
            return op
        if op in _AVERAGES:
            averaged = True
        elif op not in _DATA_MOVEMENT:
            return "normal"
        name = layer.producers[0] if layer.producers else None
    return "normal"


def sample(rng: np.random.Generator, shape: tuple[int, ...], distribution: str) -> np.ndarray:
    """float32 values of ``shape`` drawn as ``distribution`` says."""
    z = rng.standard_normal(shape, dtype=np.float32)
    if distribution == "normal":
        return z
    if distribution == "relu":
        return np.maximum(z, np.float32(0))
    if distribution == "half_normal":
        return np.abs(z)
    if distribution == "softmax":
        return softmax(z, axis=-1)
    if distribution == "gelu":
        return gelu(z)
    if distribution == "silu":
        return z / (np.float32(1) + np.exp(-z))
    if distribution == "sigmoid":
        return np.float32(1) / (np.float32(1) + np.exp(-z))
    if distribution == "tanh":
        return np.tanh(z)
    if distribution == "gradient":
        return z * np.float32(GRADIENT_STD)
    # internal invariant, not a user mistake: the distribution names come from producer_distribution and
    # operand_distributions in this module, never from a user; reaching this is a bug here
    raise ValueError(f"unknown distribution {distribution!r}")


def operand_distributions(network: Network, layer: Layer) -> tuple[str, str]:
    """Distributions of the layer's GEMM operands A and B (``weight`` for weights)."""
    gemm = layer.gemm()  # type: ignore[attr-defined]
    if layer.is_conv and layer.pass_ == "forward":
        producer = layer.inputs[0] if layer.inputs else None
        return producer_distribution(network, producer), "weight"
    data = [i for i in layer.inputs]  # producers of the non-weight operands, in operand order
    result = []
    for role in (gemm.a_role, gemm.b_role):
        if role == "weight":
            result.append("weight")
        elif role == "gradient":
            result.append("gradient")
        else:
            producer = data.pop(0) if data else None
            result.append(producer_distribution(network, producer))
    return result[0], result[1]


def layer_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def weights(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(1 / math.sqrt(max(fan_in, 1)))


def conv_operands(network: Network, layer: Conv2d, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Input ``[N, C, H, W]`` and weights ``[K, C/groups, R, S]`` of a forward convolution."""
    x_kind, _ = operand_distributions(network, layer)
    x = sample(rng, layer.input_shape, x_kind)
    w = weights(rng, layer.weight_shape, layer.weight_shape[1] * layer.R * layer.S)
    return x, w


def gemm_operands(network: Network, layer: Conv2d | MatMul,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A ``[batch, M, K]`` and B ``[batch, K, N]`` (the batch axis dropped when it is 1) of the layer's GEMM."""
    g = layer.gemm()
    a_kind, b_kind = operand_distributions(network, layer)
    lead = (g.batch,) if g.batch > 1 else ()

    def make(kind: str, shape: tuple[int, ...]) -> np.ndarray:
        return weights(rng, shape, g.K) if kind == "weight" else sample(rng, shape, kind)

    return make(a_kind, (*lead, g.M, g.K)), make(b_kind, (*lead, g.K, g.N))
