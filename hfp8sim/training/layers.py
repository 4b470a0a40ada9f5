"""Layers with forward and backward passes over :class:`~hfp8sim.training.ops.TrainingOps` (numpy, no torch).

Every GEMM-like op of every pass goes through ``ops`` (so through the datapath, with its layer name, pass and
operand roles); everything else (bias, batch and layer norm, activations, pooling, softmax, embedding lookup
and its scatter-add) runs in numpy in ``ops.float_dtype`` (float32; float64 under
:class:`~hfp8sim.training.ops.Float64Ops`, the reference for gradient checks).  Softmax inputs may be
rounded to float16 first (``softmax_input="float16"``), as IBM's HFP8 keeps the softmax input in FP16.

A module's ``forward(x, ops, train=True)`` keeps what its backward needs; ``backward(dy, ops)`` returns the
gradient with respect to its input and adds its parameters' gradients to ``Parameter.grad``.  GEMMs read
``Parameter.compute_value`` (the copy an update rule keeps), the optimizer updates ``Parameter.value``.

Layouts: Linear weights are stored ``[in, out]`` (forward ``X W``; backward_weight ``X^T dY`` is the
gradient in the stored layout), convolution weights ``[K, C/groups, R, S]``, images NCHW, sequences
``[B, T, D]``.  Initial values come from ``seed`` (numpy's PCG64), so a model is the same for the same seeds.
"""

from __future__ import annotations

import math

import numpy as np

from ..vocabulary import Pass, Role
from .ops import TrainingOps
from .tensors import Parameter, TrainingError

SOFTMAX_INPUTS = ("float32", "float16")
_GELU_C = math.sqrt(2 / math.pi)


class Module:
    """Base class: a named piece of a network with a forward and a backward pass."""

    name = ""

    def forward(self, x, ops: TrainingOps, train: bool = True):
        raise NotImplementedError

    def backward(self, dy, ops: TrainingOps):
        raise NotImplementedError

    def parameters(self) -> list[Parameter]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def _cached(self, attribute: str):
        value = getattr(self, attribute, None)
        if value is None:
            raise TrainingError(f"layer {self.name or type(self).__name__}: backward before a forward with "
                                "train=True")
        return value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _dtype(ops: TrainingOps) -> np.dtype:
    return ops.float_dtype


# ---- GEMM layers -----------------------------------------------------------------------------------------


class Linear(Module):
    """``y = x W + b`` over the last axis of ``x``; W ``[in, out]`` uniform in +-1/sqrt(in)."""

    def __init__(self, name: str, in_features: int, out_features: int, bias: bool = True, seed=0):
        rng = _rng(seed)
        bound = 1 / math.sqrt(in_features)
        self.name = name
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(f"{name}.weight", rng.uniform(-bound, bound, (in_features, out_features)))
        self.bias = Parameter(f"{name}.bias", np.zeros(out_features), "bias") if bias else None
        self._x = self._w = self._lead = None

    def parameters(self) -> list[Parameter]:
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def forward(self, x, ops, train=True):
        dt = _dtype(ops)
        x = np.asarray(x, dtype=dt)
        if x.shape[-1] != self.in_features:
            raise TrainingError(f"layer {self.name}: input has {x.shape[-1]} features, the layer takes "
                                f"{self.in_features}")
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        w = np.asarray(self.weight.compute_value, dtype=dt)
        y = ops.matmul(self.name, Pass.FORWARD, x2, w, Role.ACTIVATION, Role.WEIGHT).astype(dt)
        if self.bias is not None:
            y = y + np.asarray(self.bias.compute_value, dtype=dt)
        if train:
            self._x, self._w, self._lead = x2, w, lead
        return y.reshape(*lead, self.out_features)

    def backward(self, dy, ops):
        x2, w = self._cached("_x"), self._w
        dt = _dtype(ops)
        dy2 = np.asarray(dy, dtype=dt).reshape(-1, self.out_features)
        dx = ops.matmul(self.name, Pass.BACKWARD_DATA, dy2, w.T, Role.GRADIENT, Role.WEIGHT)
        dw = ops.matmul(self.name, Pass.BACKWARD_WEIGHT, x2.T, dy2, Role.ACTIVATION, Role.GRADIENT)
        self.weight.add_grad(dw)
        if self.bias is not None:
            self.bias.add_grad(dy2.sum(axis=0))
        return dx.astype(dt).reshape(*self._lead, self.in_features)


class Conv2d(Module):
    """2-D convolution, NCHW, weights ``[K, C/groups, R, S]`` uniform in +-1/sqrt(fan in); ``groups=C=K`` is
    depthwise.  All three passes are GEMMs on the datapath (see :mod:`hfp8sim.training.ops`)."""

    def __init__(self, name: str, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1, bias: bool = True, seed=0):
        if in_channels % groups or out_channels % groups:
            raise TrainingError(f"layer {name}: groups={groups} must divide in_channels={in_channels} and "
                                f"out_channels={out_channels}")
        rng = _rng(seed)
        fan_in = in_channels // groups * kernel_size * kernel_size
        bound = 1 / math.sqrt(fan_in)
        self.name = name
        self.stride, self.padding, self.groups = stride, padding, groups
        self.weight = Parameter(f"{name}.weight", rng.uniform(
            -bound, bound, (out_channels, in_channels // groups, kernel_size, kernel_size)))
        self.bias = Parameter(f"{name}.bias", np.zeros(out_channels), "bias") if bias else None
        self._x = self._w = None

    def parameters(self) -> list[Parameter]:
        return [self.weight] + ([self.bias] if self.bias is not None else [])

    def forward(self, x, ops, train=True):
        dt = _dtype(ops)
        x = np.asarray(x, dtype=dt)
        w = np.asarray(self.weight.compute_value, dtype=dt)
        y = ops.conv2d(self.name, x, w, self.stride, self.padding, self.groups).astype(dt)
        if self.bias is not None:
            y = y + np.asarray(self.bias.compute_value, dtype=dt)[None, :, None, None]
        if train:
            self._x, self._w = x, w
        return y

    def backward(self, dy, ops):
        x, w = self._cached("_x"), self._w
        dt = _dtype(ops)
        dy = np.asarray(dy, dtype=dt)
        dx = ops.conv2d_backward_data(self.name, dy, w, x.shape, self.stride, self.padding, self.groups)
        dw = ops.conv2d_backward_weight(self.name, x, dy, w.shape, self.stride, self.padding, self.groups)
        self.weight.add_grad(dw)
        if self.bias is not None:
            self.bias.add_grad(dy.sum(axis=(0, 2, 3)))
        return dx.astype(dt)


# ---- normalisation ----------------------------------------------------------------------------------------


def _normalize_backward(dxhat, xhat, inv_std, axes):
    """d/dx of xhat = (x - mean) * inv_std with mean and variance over ``axes`` (biased variance)."""
    count = math.prod(dxhat.shape[a] for a in axes)
    sum_d = dxhat.sum(axis=axes, keepdims=True)
    sum_dx = (dxhat * xhat).sum(axis=axes, keepdims=True)
    return inv_std / count * (count * dxhat - sum_d - xhat * sum_dx)


class BatchNorm(Module):
    """Batch normalisation over every axis but 1 (``[N, C]`` or ``[N, C, H, W]``).  Training uses the batch's
    mean and biased variance and updates the running statistics (unbiased variance, ``momentum`` weight of
    the new batch, as PyTorch does); inference uses the running statistics."""

    def __init__(self, name: str, channels: int, momentum: float = 0.1, eps: float = 1e-5):
        self.name = name
        self.channels, self.momentum, self.eps = channels, momentum, eps
        self.gamma = Parameter(f"{name}.gamma", np.ones(channels), "norm")
        self.beta = Parameter(f"{name}.beta", np.zeros(channels), "norm")
        self.running_mean = np.zeros(channels, np.float32)
        self.running_var = np.ones(channels, np.float32)
        self._cache = None

    def parameters(self) -> list[Parameter]:
        return [self.gamma, self.beta]

    def _shape(self, x):
        if x.ndim < 2 or x.shape[1] != self.channels:
            raise TrainingError(f"layer {self.name}: input of shape {x.shape} does not have {self.channels} "
                                "channels on axis 1")
        return (0, *range(2, x.ndim)), (1, self.channels) + (1,) * (x.ndim - 2)

    def forward(self, x, ops, train=True):
        dt = _dtype(ops)
        x = np.asarray(x, dtype=dt)
        axes, bshape = self._shape(x)
        gamma = np.asarray(self.gamma.compute_value, dt).reshape(bshape)
        beta = np.asarray(self.beta.compute_value, dt).reshape(bshape)
        if train:
            mean = x.mean(axis=axes, keepdims=True)
            var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
            count = x.size // self.channels
            unbiased = var.reshape(-1) * (count / max(count - 1, 1))
            self.running_mean = ((1 - self.momentum) * self.running_mean
                                 + self.momentum * mean.reshape(-1)).astype(np.float32)
            self.running_var = ((1 - self.momentum) * self.running_var + self.momentum * unbiased).astype(np.float32)
        else:
            mean = self.running_mean.astype(dt).reshape(bshape)
            var = self.running_var.astype(dt).reshape(bshape)
        inv_std = 1 / np.sqrt(var + dt.type(self.eps))
        xhat = (x - mean) * inv_std
        self._cache = (xhat, inv_std, gamma, axes, train)
        return gamma * xhat + beta

    def backward(self, dy, ops):
        xhat, inv_std, gamma, axes, train = self._cached("_cache")
        dy = np.asarray(dy, dtype=_dtype(ops))
        self.gamma.add_grad((dy * xhat).sum(axis=axes))
        self.beta.add_grad(dy.sum(axis=axes))
        if not train:  # running statistics are constants
            return dy * gamma * inv_std
        return _normalize_backward(dy * gamma, xhat, inv_std, axes)


class LayerNorm(Module):
    """Layer normalisation over the last axis, with a gain and a bias."""

    def __init__(self, name: str, features: int, eps: float = 1e-5):
        self.name = name
        self.features, self.eps = features, eps
        self.gamma = Parameter(f"{name}.gamma", np.ones(features), "norm")
        self.beta = Parameter(f"{name}.beta", np.zeros(features), "norm")
        self._cache = None

    def parameters(self) -> list[Parameter]:
        return [self.gamma, self.beta]

    def forward(self, x, ops, train=True):
        dt = _dtype(ops)
        x = np.asarray(x, dtype=dt)
        if x.shape[-1] != self.features:
            raise TrainingError(f"layer {self.name}: input has {x.shape[-1]} features, the layer takes "
                                f"{self.features}")
        mean = x.mean(axis=-1, keepdims=True)
        var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
        inv_std = 1 / np.sqrt(var + dt.type(self.eps))
        xhat = (x - mean) * inv_std
        gamma = np.asarray(self.gamma.compute_value, dt)
        self._cache = (xhat, inv_std, gamma)
        return gamma * xhat + np.asarray(self.beta.compute_value, dt)

    def backward(self, dy, ops):
        xhat, inv_std, gamma = self._cached("_cache")
        dy = np.asarray(dy, dtype=_dtype(ops))
        lead = tuple(range(dy.ndim - 1))
        self.gamma.add_grad((dy * xhat).sum(axis=lead))
        self.beta.add_grad(dy.sum(axis=lead))
        return _normalize_backward(dy * gamma, xhat, inv_std, (dy.ndim - 1,))


# ---- elementwise activations ------------------------------------------------------------------------------


class _Elementwise(Module):
    def __init__(self, name: str = ""):
        self.name = name
        self._x = None

    def forward(self, x, ops, train=True):
        x = np.asarray(x, dtype=_dtype(ops))
        if train:
            self._x = x
        return self._f(x)

    def backward(self, dy, ops):
        return np.asarray(dy, dtype=_dtype(ops)) * self._df(self._cached("_x"))


class ReLU(_Elementwise):
    def _f(self, x):
        return np.maximum(x, 0)

    def _df(self, x):
        return (x > 0).astype(x.dtype)


class ReLU6(_Elementwise):
    def _f(self, x):
        return np.clip(x, 0, 6)

    def _df(self, x):
        return ((x > 0) & (x < 6)).astype(x.dtype)


class GELU(_Elementwise):
    """GELU, tanh approximation: ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``."""

    def _f(self, x):
        return 0.5 * x * (1 + np.tanh(x.dtype.type(_GELU_C) * (x + x.dtype.type(0.044715) * x**3)))

    def _df(self, x):
        c, a = x.dtype.type(_GELU_C), x.dtype.type(0.044715)
        t = np.tanh(c * (x + a * x**3))
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * a * x * x)


# ---- pooling and reshaping --------------------------------------------------------------------------------


def _windows(x, kernel: int, stride: int):
    """The kernel*kernel strided views of x [N, C, H, W] (no padding) and the output size (P, Q)."""
    _, _, h, w = x.shape
    if kernel > h or kernel > w:
        raise TrainingError(f"pooling window {kernel} is larger than the {h}x{w} input")
    p, q = (h - kernel) // stride + 1, (w - kernel) // stride + 1
    views = [(r, s, x[:, :, r:r + stride * (p - 1) + 1:stride, s:s + stride * (q - 1) + 1:stride])
             for r in range(kernel) for s in range(kernel)]
    return views, p, q


def _scatter_to_windows(dx, kernel: int, stride: int, contribution):
    """Add ``contribution(i)`` (``[N, C, P, Q]``) into the positions of ``dx`` that window offset ``i`` read:
    the backward pass of a pooling over ``_windows``.  Returns ``dx``."""
    views, p, q = _windows(dx, kernel, stride)
    for i, (r, s, _) in enumerate(views):
        dx[:, :, r:r + stride * (p - 1) + 1:stride, s:s + stride * (q - 1) + 1:stride] += contribution(i)
    return dx


class MaxPool2d(Module):
    """Max pooling without padding; the gradient goes to the first maximum of each window."""

    def __init__(self, kernel: int, stride: int | None = None, name: str = ""):
        self.name, self.kernel, self.stride = name, kernel, stride or kernel
        self._cache = None

    def forward(self, x, ops, train=True):
        x = np.asarray(x, dtype=_dtype(ops))
        views, p, q = _windows(x, self.kernel, self.stride)
        stack = np.stack([v for _, _, v in views])
        index = stack.argmax(axis=0)
        if train:
            self._cache = (x.shape, index)
        return np.take_along_axis(stack, index[None], axis=0)[0]

    def backward(self, dy, ops):
        shape, index = self._cached("_cache")
        dy = np.asarray(dy, dtype=_dtype(ops))
        dx = np.zeros(shape, dy.dtype)
        return _scatter_to_windows(dx, self.kernel, self.stride, lambda i: np.where(index == i, dy, 0))


class AvgPool2d(Module):
    """Average pooling without padding."""

    def __init__(self, kernel: int, stride: int | None = None, name: str = ""):
        self.name, self.kernel, self.stride = name, kernel, stride or kernel
        self._shape = None

    def forward(self, x, ops, train=True):
        x = np.asarray(x, dtype=_dtype(ops))
        views, p, q = _windows(x, self.kernel, self.stride)
        if train:
            self._shape = x.shape
        return sum(v for _, _, v in views) / x.dtype.type(self.kernel * self.kernel)

    def backward(self, dy, ops):
        shape = self._cached("_shape")
        dy = np.asarray(dy, dtype=_dtype(ops)) / _dtype(ops).type(self.kernel * self.kernel)
        dx = np.zeros(shape, dy.dtype)
        return _scatter_to_windows(dx, self.kernel, self.stride, lambda i: dy)


class GlobalAvgPool(Module):
    """``[N, C, H, W] -> [N, C]``: the mean over the spatial axes."""

    def __init__(self, name: str = ""):
        self.name = name
        self._shape = None

    def forward(self, x, ops, train=True):
        x = np.asarray(x, dtype=_dtype(ops))
        if train:
            self._shape = x.shape
        return x.mean(axis=(2, 3))

    def backward(self, dy, ops):
        n, c, h, w = self._cached("_shape")
        dy = np.asarray(dy, dtype=_dtype(ops)) / _dtype(ops).type(h * w)
        return np.broadcast_to(dy[:, :, None, None], (n, c, h, w)).copy()


class Flatten(Module):
    """``[N, ...] -> [N, prod(...)]``."""

    def __init__(self, name: str = ""):
        self.name = name
        self._shape = None

    def forward(self, x, ops, train=True):
        x = np.asarray(x, dtype=_dtype(ops))
        if train:
            self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, ops):
        return np.asarray(dy, dtype=_dtype(ops)).reshape(self._cached("_shape"))


# ---- embedding and attention ------------------------------------------------------------------------------


class Embedding(Module):
    """Token ids ``[B, T]`` -> vectors ``[B, T, D]`` by lookup; the backward pass scatter-adds the gradient into
    the table's rows (no input gradient: ids are not differentiable, ``backward`` returns None)."""

    def __init__(self, name: str, vocab: int, dim: int, seed=0):
        self.name = name
        self.vocab, self.dim = vocab, dim
        self.weight = Parameter(f"{name}.weight", _rng(seed).standard_normal((vocab, dim)))
        self._ids = None

    def parameters(self) -> list[Parameter]:
        return [self.weight]

    def forward(self, ids, ops, train=True):
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu" or (ids.size and (ids.min() < 0 or ids.max() >= self.vocab)):
            raise TrainingError(f"layer {self.name}: token ids must be integers in 0..{self.vocab - 1}")
        if train:
            self._ids = ids
        return np.asarray(self.weight.compute_value, dtype=_dtype(ops))[ids]

    def backward(self, dy, ops):
        ids = self._cached("_ids")
        grad = np.zeros((self.vocab, self.dim), _dtype(ops))
        np.add.at(grad, ids.reshape(-1), np.asarray(dy, dtype=_dtype(ops)).reshape(-1, self.dim))
        self.weight.add_grad(grad)
        return None


def _softmax_input(x, precision: str):
    """The softmax input as the precision says: float32 as computed, or rounded to float16 first."""
    return x.astype(np.float16).astype(x.dtype) if precision == "float16" else x


def _softmax(x):
    shifted = x - x.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def _check_softmax_input(value: str) -> str:
    if value not in SOFTMAX_INPUTS:
        raise TrainingError(f"softmax input precision {value!r} is not one of {', '.join(SOFTMAX_INPUTS)}")
    return value


class MultiHeadAttention(Module):
    """Multi-head self-attention over ``[B, T, D]``, causal by default.  Its six GEMM-like ops go through the
    ops: the projections as Linear layers ``{name}.q``, ``.k``, ``.v``, ``.out``; ``{name}.scores``
    (``Q K^T``, activation x activation) and ``{name}.context`` (``P V``), each with its backward_data
    (gradient with respect to the left operand) and backward_weight (the right operand) passes."""

    def __init__(self, name: str, dim: int, heads: int, causal: bool = True, softmax_input: str = "float32",
                 seed=0):
        if dim % heads:
            raise TrainingError(f"layer {name}: {heads} heads do not divide dimension {dim}")
        rng = _rng(seed)
        self.name, self.dim, self.heads, self.causal = name, dim, heads, causal
        self.softmax_input = _check_softmax_input(softmax_input)
        self.q, self.k, self.v, self.out = (Linear(f"{name}.{part}", dim, dim, seed=rng)
                                            for part in ("q", "k", "v", "out"))
        self._cache = None

    def parameters(self) -> list[Parameter]:
        return [p for m in (self.q, self.k, self.v, self.out) for p in m.parameters()]

    def _split(self, x, b, t):
        """[B, T, D] -> [B*H, T, D/H]."""
        return x.reshape(b, t, self.heads, -1).transpose(0, 2, 1, 3).reshape(b * self.heads, t, -1)

    def _merge(self, x, b, t):
        return x.reshape(b, self.heads, t, -1).transpose(0, 2, 1, 3).reshape(b, t, self.dim)

    def forward(self, x, ops, train=True):
        dt = _dtype(ops)
        x = np.asarray(x, dtype=dt)
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise TrainingError(f"layer {self.name}: takes [B, T, {self.dim}], got {x.shape}")
        b, t, _ = x.shape
        q = np.ascontiguousarray(self._split(self.q.forward(x, ops, train), b, t))
        k = np.ascontiguousarray(self._split(self.k.forward(x, ops, train), b, t))
        v = np.ascontiguousarray(self._split(self.v.forward(x, ops, train), b, t))
        scale = dt.type(1 / math.sqrt(self.dim // self.heads))
        scores = ops.matmul(f"{self.name}.scores", Pass.FORWARD, q, k.transpose(0, 2, 1), Role.ACTIVATION,
                            Role.ACTIVATION).astype(dt) * scale
        if self.causal:
            scores = np.where(np.triu(np.ones((t, t), bool), 1), dt.type(-np.inf), scores)
        p = _softmax(_softmax_input(scores, self.softmax_input))
        context = ops.matmul(f"{self.name}.context", Pass.FORWARD, p, v, Role.ACTIVATION, Role.ACTIVATION)
        if train:
            self._cache = (q, k, v, p, scale, b, t)
        return self.out.forward(self._merge(context.astype(dt), b, t), ops, train)

    def backward(self, dy, ops):
        q, k, v, p, scale, b, t = self._cached("_cache")
        dt = _dtype(ops)
        dcontext = np.ascontiguousarray(self._split(self.out.backward(dy, ops), b, t))
        ctx, sc = f"{self.name}.context", f"{self.name}.scores"
        dp = ops.matmul(ctx, Pass.BACKWARD_DATA, dcontext, v.transpose(0, 2, 1), Role.GRADIENT,
                        Role.ACTIVATION).astype(dt)
        dv = ops.matmul(ctx, Pass.BACKWARD_WEIGHT, p.transpose(0, 2, 1), dcontext, Role.ACTIVATION,
                        Role.GRADIENT).astype(dt)
        dscores = p * (dp - (dp * p).sum(axis=-1, keepdims=True)) * scale
        dq = ops.matmul(sc, Pass.BACKWARD_DATA, dscores, k, Role.GRADIENT, Role.ACTIVATION).astype(dt)
        dk_t = ops.matmul(sc, Pass.BACKWARD_WEIGHT, q.transpose(0, 2, 1), dscores, Role.ACTIVATION,
                          Role.GRADIENT).astype(dt)
        dx = self.q.backward(self._merge(dq, b, t), ops)
        dx = dx + self.k.backward(self._merge(dk_t.transpose(0, 2, 1), b, t), ops)
        return dx + self.v.backward(self._merge(dv, b, t), ops)


# ---- containers -------------------------------------------------------------------------------------------


class Sequential(Module):
    """Modules applied in order; backward in reverse."""

    def __init__(self, *modules: Module, name: str = ""):
        self.name = name
        self.modules = list(modules)

    def parameters(self) -> list[Parameter]:
        return [p for m in self.modules for p in m.parameters()]

    def forward(self, x, ops, train=True):
        for module in self.modules:
            x = module.forward(x, ops, train)
        return x

    def backward(self, dy, ops):
        for module in reversed(self.modules):
            dy = module.backward(dy, ops)
        return dy


class Residual(Module):
    """``y = x + f(x)`` (the residual add of ResNets and transformers)."""

    def __init__(self, body: Module, name: str = ""):
        self.name = name
        self.body = body

    def parameters(self) -> list[Parameter]:
        return self.body.parameters()

    def forward(self, x, ops, train=True):
        x = np.asarray(x, dtype=_dtype(ops))
        return x + self.body.forward(x, ops, train)

    def backward(self, dy, ops):
        dy = np.asarray(dy, dtype=_dtype(ops))
        return dy + self.body.backward(dy, ops)


# ---- loss -------------------------------------------------------------------------------------------------


class SoftmaxCrossEntropy:
    """Mean softmax cross-entropy of logits ``[..., classes]`` against integer labels ``[...]``.

    ``input_precision``: the softmax input as computed (float32) or rounded to float16 first (IBM's choice).
    ``backward(loss_scale)`` returns ``loss_scale * dLoss/dlogits`` (loss scaling multiplies the gradient that
    starts the backward pass)."""

    def __init__(self, input_precision: str = "float32"):
        self.input_precision = _check_softmax_input(input_precision)
        self._cache = None

    def forward(self, logits, labels, ops: TrainingOps) -> float:
        dt = _dtype(ops)
        logits = np.asarray(logits, dtype=dt)
        labels = np.asarray(labels)
        classes = logits.shape[-1]
        if labels.shape != logits.shape[:-1] or labels.dtype.kind not in "iu":
            raise TrainingError(f"loss: labels must be integers of shape {logits.shape[:-1]}, got {labels.dtype} "
                                f"{labels.shape}")
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise TrainingError(f"loss: labels must be in 0..{classes - 1}")
        z = _softmax_input(logits, self.input_precision).reshape(-1, classes)
        flat = labels.reshape(-1)
        shifted = z - z.max(axis=-1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=-1))
        losses = log_norm - shifted[np.arange(flat.size), flat]
        self._cache = (np.exp(shifted - log_norm[:, None]), flat, logits.shape)
        return float(losses.mean())

    def backward(self, loss_scale: float = 1.0, ops: TrainingOps | None = None):
        probs, flat, shape = self._cache if self._cache is not None else (None, None, None)
        if probs is None:
            raise TrainingError("loss: backward before forward")
        grad = probs.copy()
        grad[np.arange(flat.size), flat] -= 1
        grad *= probs.dtype.type(loss_scale / flat.size)
        return grad.reshape(shape)


__all__ = ["AvgPool2d", "BatchNorm", "Conv2d", "Embedding", "Flatten", "GELU", "GlobalAvgPool", "LayerNorm",
           "Linear", "MaxPool2d", "Module", "MultiHeadAttention", "ReLU", "ReLU6", "Residual", "SOFTMAX_INPUTS",
           "Sequential", "SoftmaxCrossEntropy"]
