"""The non-GEMM operations of the real networks, in plain numpy at the caller's float dtype.

These never go through an ops object: the FP8 datapath computes GEMMs, the vector unit around it computes
these in higher precision.
"""

from __future__ import annotations

import functools
import math

import numpy as np

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


def _gelu_scalar(x):
    # numpy has no erf, so numba vectorises math.erf.  The float64 constant promotes the float32 case to a
    # double evaluation rounded once at the end: the correctly rounded float32 GELU, up to erf's own error.
    return 0.5 * x * (1.0 + math.erf(x * _INV_SQRT2))


@functools.cache
def _gelu_ufunc():
    # Built on first use, so importing the package does not pay for numba (or its cache lookup).
    import numba

    return numba.vectorize(["float32(float32)", "float64(float64)"], cache=True)(_gelu_scalar)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact GELU, ``x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2))`` (BERT's ``hidden_act="gelu"``, not the tanh form)."""
    return _gelu_ufunc()(x)


def layer_norm(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float) -> np.ndarray:
    """LayerNorm over the last axis with the biased variance, as torch computes it."""
    mean = x.mean(axis=-1, keepdims=True)
    centred = x - mean
    variance = np.mean(centred * centred, axis=-1, keepdims=True)
    return centred / np.sqrt(variance + x.dtype.type(eps)) * gamma + beta


def softmax(scores: np.ndarray, axis: int = -1) -> np.ndarray:
    """Softmax with the maximum subtracted first, so exp never overflows."""
    shifted = scores - scores.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=axis, keepdims=True)


def relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 6)


def batch_norm_affine(gamma: np.ndarray, beta: np.ndarray, running_mean: np.ndarray, running_var: np.ndarray,
                      eps: float, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Inference batch norm as a per-channel ``scale, shift`` (computed in float64, then cast to ``dtype``)."""
    scale = gamma.astype(np.float64) / np.sqrt(running_var.astype(np.float64) + eps)
    shift = beta.astype(np.float64) - running_mean.astype(np.float64) * scale
    return scale.astype(dtype), shift.astype(dtype)


def fold_batch_norm(weight: np.ndarray, bias: np.ndarray | None, gamma: np.ndarray, beta: np.ndarray,
                    running_mean: np.ndarray, running_var: np.ndarray, eps: float,
                    dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """An inference batch norm folded into the conv (or linear) before it, as deployment toolchains fold it
    at load, before the weights are quantized: with ``s = gamma / sqrt(var + eps)`` per output channel,
    ``w' = w * s`` (axis 0 of the KCRS or ``[out, in]`` weight) and ``b' = (b - mean) * s + beta`` (``b`` 0
    when the layer has no bias).  Computed in float64 and rounded once to ``dtype``, so every folded value is
    the correctly rounded fold of the trained float32 values."""
    scale = gamma.astype(np.float64) / np.sqrt(running_var.astype(np.float64) + eps)
    conv_bias = np.zeros(weight.shape[0]) if bias is None else bias.astype(np.float64)
    folded_weight = weight.astype(np.float64) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    folded_bias = (conv_bias - running_mean.astype(np.float64)) * scale + beta.astype(np.float64)
    return folded_weight.astype(dtype), folded_bias.astype(dtype)


def channel_affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """``x * scale + shift`` per channel of an NCHW tensor."""
    return x * scale[None, :, None, None] + shift[None, :, None, None]
