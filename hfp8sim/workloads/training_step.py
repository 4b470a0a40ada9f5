"""A training step derived from any forward network: forward, backward (data and weight gradients) and update.

:func:`derive_training_step` takes a forward :class:`~hfp8sim.workloads.network.Network` (from YAML, ONNX or a
SCALE-Sim CSV) and returns one network holding, in execution order:

1. the **forward pass**, batch norms normalising with batch statistics (training never folds them);
2. the **loss gradient**: the softmax-cross-entropy gradient of the last layer's output (``Y - onehot`` when
   the network already ends with a softmax);
3. the **backward pass**, forward layers in reverse: for each GEMM its data gradient (``pass_``
   ``backward_data``; none when its input comes from outside the network, as for the first layer) and its
   weight gradient (``backward_weight``), with their true lowered shapes (a conv's data gradient in col2im
   form followed by the col2im scatter-add); attention's products of two activations get a data gradient
   per operand.  Each non-GEMM layer gets its backward op on the vector unit (:class:`GradientOp`): ReLU
   masks, batch norm and layer norm backward, softmax backward, GELU', pooling scatters; where a tensor feeds
   several layers, the contributions are summed.  Backward ops read what they need of the forward pass
   (inputs, outputs) as the forward layer's output: the fusion model (``timing.fusion``) then keeps it in
   DRAM from the forward pass (a tensor another layer still needs is written out) and reads it back;
4. the **update**: an :class:`OptimizerUpdate` per parameter tensor, in the order its gradient is ready.

Every derived layer names its forward layer in ``source_layer``, and a GEMM of the backward pass keeps its
forward layer's ``precision`` (IBM's FP16 first and last layers stay FP16 in every pass).  The MACs of a step
are three times the forward MACs less the data gradients not computed (the layers whose input comes from
outside).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..errors import WorkloadError
from .layers import (
    Concat, Conv2d, Elementwise, Embedding, GlobalAvgPool, ImageLayer, Layer, MatMul, Norm, Pool, Reshape,
    ShapedLayer, Softmax, shape_elements,
)  # fmt: skip
from .network import Network
from .training_layers import OPTIMIZERS, UPDATE_RULES, GradientOp, OptimizerUpdate

GRADIENT = "gradient"
WEIGHT = "weight"


# ------------------------------------------------------------------------------------------------ batch


def forward_batch(network: Network) -> int:
    """The batch a forward network was written for: the N of its image layers (equal in every shipped
    CNN), else 1 (token workloads describe one sequence; a GEMM's rows are that sequence's tokens)."""
    sizes = {layer.N for layer in network.layers if isinstance(layer, ImageLayer)}
    if len(sizes) > 1:
        raise WorkloadError(f"its image layers have different batches {sorted(sizes)}; --batch cannot rescale "
                            "it", file=network.file or None)
    return sizes.pop() if sizes else 1


def _scaled(layer: Layer, factor: int) -> Layer:
    """``layer`` with its batch dimension ``factor`` times larger."""
    if isinstance(layer, ImageLayer):
        return dataclasses.replace(layer, N=layer.N * factor)
    if isinstance(layer, MatMul):
        if layer.b_role == WEIGHT:  # a linear layer: rows are the samples' tokens
            return dataclasses.replace(layer, M=layer.M * factor)
        if layer.a_role == WEIGHT:
            return dataclasses.replace(layer, N=layer.N * factor)
        return dataclasses.replace(layer, batch=layer.batch * factor)  # attention: heads of every sample
    if isinstance(layer, Softmax):
        return dataclasses.replace(layer, rows=layer.rows * factor)
    if isinstance(layer, Embedding):
        return dataclasses.replace(layer, lookups=layer.lookups * factor)
    if isinstance(layer, ShapedLayer):
        return dataclasses.replace(layer, shape=(layer.shape[0] * factor, *layer.shape[1:]))
    raise WorkloadError(f"no rule to rescale the batch of a {layer.op_name} layer", key_path=f"layer {layer.name!r}")


def rescale_batch(network: Network, batch: int) -> Network:
    """``network`` at ``batch`` samples: images' N, linear layers' rows, attention's batch of heads, the
    leading axis of every other tensor, multiplied by ``batch`` / :func:`forward_batch`."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise WorkloadError(f"--batch must be a positive integer, got {batch!r}")
    current = forward_batch(network)
    if batch % current:
        raise WorkloadError(f"--batch {batch} is not a multiple of the workload's own batch {current}",
                            file=network.file or None)
    factor = batch // current
    if factor == 1:
        return network
    try:
        layers = tuple(_scaled(layer, factor) for layer in network.layers)
        return Network(network.name, layers, network.source, f"{network.notes} Batch {batch}.".strip(),
                       network.file, network.fold_batch_norms)
    except WorkloadError as exc:
        raise WorkloadError(f"cannot rescale {network.name} to batch {batch}: {exc}") from None


def per_chip_batch(batch: int, chips: int) -> int:
    """The samples each of ``chips`` data-parallel chips runs of a global ``batch``; the batch must divide."""
    if isinstance(chips, bool) or not isinstance(chips, int) or chips < 1:
        raise WorkloadError(f"the chip count must be a positive integer, got {chips!r}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1 or batch % chips:
        raise WorkloadError(f"batch {batch!r} does not divide across {chips} chips; give a batch that is a "
                            f"multiple of {chips}")
    return batch // chips


# ---------------------------------------------------------------------------------------- the derivation


class _Backward:
    """The backward layers of a forward network, built in reverse layer order."""

    def __init__(self, forward: tuple[Layer, ...]):
        self.forward = {layer.name: layer for layer in forward}
        self.order = forward
        self.contributions: dict[str, list[str]] = {}  # forward layer -> gradient layers of its output
        self.layers: list[Layer] = []
        self.shapes: dict[str, tuple[int, ...]] = {layer.name: layer.output_shape for layer in forward}
        self.param_gradients: list[tuple[Layer, str]] = []  # (forward layer, layer producing its gradient)

    def add(self, layer: Layer, contributes_to: str | None = None) -> str:
        self.layers.append(layer)
        self.shapes[layer.name] = layer.output_shape
        if contributes_to is not None:
            self.contribute(contributes_to, layer.name)
        return layer.name

    def contribute(self, forward_name: str | None, gradient: str) -> None:
        if forward_name is not None:
            self.contributions.setdefault(forward_name, []).append(gradient)

    def op(self, source: Layer, suffix: str, shape, inputs, **work) -> GradientOp:
        return GradientOp(name=f"{source.name}.{suffix}", kind=suffix.split(".")[0], shape=tuple(shape),
                          inputs=tuple(inputs), pass_="backward_data", source_layer=source.name, **work)

    def output_gradient(self, layer: Layer) -> str | None:
        """The layer holding d(loss)/d(output of ``layer``): the one contribution, or their sum."""
        parts = self.contributions.get(layer.name)
        if not parts:
            return None
        n = float(shape_elements(layer.output_shape))
        sizes = [float(shape_elements(self.shapes[part])) for part in parts]
        if len(parts) == 1 and sizes[0] == n:
            return parts[0]
        whole = all(size == n for size in sizes)  # else some parts are slices of it (a fused QKV's Q)
        return self.add(self.op(layer, "grad_sum", layer.output_shape, parts,
                                elementwise=n * (len(parts) - 1) if whole else n, reads=sum(sizes),
                                fusable=whole))

    def seed_loss(self, last: Layer) -> None:
        """The loss gradient at the network's output: softmax cross-entropy over the last axis."""
        n = float(shape_elements(last.output_shape))
        if isinstance(last, Softmax):  # Y - onehot, straight to the softmax's input
            self.add(self.op(last, "softmax_ce_grad", last.output_shape, (last.name,), elementwise=n, reads=n,
                             fusable=True), last.producers[0] if last.producers else None)
            return
        rows = n / last.output_shape[-1]
        self.add(self.op(last, "softmax_ce_grad", last.output_shape, (last.name,), elementwise=3 * n,
                         special=n + rows, reduction=2 * n, reads=n), last.name)


def _conv_backward(b: _Backward, layer: Conv2d, dy: str) -> None:
    """The weight gradient first, so the data gradient's output stage can apply the next backward op (a
    ReLU mask) while its tiles are on chip."""
    x = layer.inputs[0] if layer.inputs else None
    dw = b.add(dataclasses.replace(layer, name=f"{layer.name}.dW", inputs=(dy, x), pass_="backward_weight",
                                   source_layer=layer.name))
    b.param_gradients.append((layer, dw))
    if x is not None:
        dx = b.add(dataclasses.replace(layer, name=f"{layer.name}.dX", inputs=(dy,), pass_="backward_data",
                                       source_layer=layer.name))
        if not layer.lowering_is_identity:  # dX_col -> dX: every column element added into its input pixel
            cols = float(shape_elements(b.shapes[dx]))
            dx = b.add(b.op(layer, "col2im", layer.input_shape, (dx,), elementwise=cols, reads=cols))
        b.contribute(x, dx)


def _matmul_backward(b: _Backward, layer: MatMul, dy: str) -> None:
    """C[M,N] = A[M,K] B[K,N]: dA = dC B^T (M x K, reduction N), dB = A^T dC (K x N, reduction M)."""
    data = [o for o, role in (("a", layer.a_role), ("b", layer.b_role)) if role != WEIGHT]
    producers = dict(zip(data, layer.inputs)) if layer.inputs else dict.fromkeys(data)
    names = {"a": "dA", "b": "dB"} if len(data) == 2 else {o: "dX" for o in data}
    common = dict(batch=layer.batch, convention=layer.convention, source_layer=layer.name)
    # the weight gradient first (see _conv_backward)
    for operand in sorted(("a", "b"), key=lambda o: o in data):
        is_weight = operand not in data
        if not is_weight and producers[operand] is None:
            continue  # from outside the network: no gradient needed
        pass_ = "backward_weight" if is_weight else "backward_data"
        name = f"{layer.name}.{'dW' if is_weight else names[operand]}"
        if operand == "a":
            other = None if layer.b_role == WEIGHT else producers["b"]
            grad = MatMul(name=name, M=layer.M, N=layer.K, K=layer.N, a_role=GRADIENT, b_role=layer.b_role,
                          inputs=(dy,) if layer.b_role == WEIGHT else (dy, other), pass_=pass_, **common)
        else:
            other = None if layer.a_role == WEIGHT else producers["a"]
            grad = MatMul(name=name, M=layer.K, N=layer.N, K=layer.M, a_role=layer.a_role, b_role=GRADIENT,
                          inputs=(dy,) if layer.a_role == WEIGHT else (other, dy), pass_=pass_, **common)
        b.add(grad)
        if is_weight:
            b.param_gradients.append((layer, grad.name))
        else:
            b.contribute(producers[operand], grad.name)


def _elementwise_backward(b: _Backward, layer: Elementwise, dy: str) -> None:
    n = float(layer.elements)
    kind = layer.kind
    if kind in ("relu", "relu6", "clip"):  # the mask from the stashed output
        b.add(b.op(layer, "relu_mask", layer.shape, (dy, layer.name), elementwise=n, reads=2 * n, fusable=True),
              layer.producers[0] if layer.producers else None)
    elif kind in ("gelu", "silu", "sigmoid", "tanh"):  # f'(x) from the stashed input (erf, exp ...)
        source = layer.producers[0] if layer.producers else None
        b.add(b.op(layer, f"{kind}_grad", layer.shape, (dy, source) if source else (dy,), elementwise=4 * n,
                   special=n, reads=2 * n if source else n), source)
    elif kind in ("scale", "convert") or (kind in ("mul", "div") and len(layer.producers) < 2):
        b.add(b.op(layer, f"{kind}_grad", layer.shape, (dy,), elementwise=n, reads=n, fusable=True),
              layer.producers[0] if layer.producers else None)
    elif kind in ("add", "sub"):
        for index, producer in enumerate(layer.producers):
            _pass_through(b, layer, dy, producer, negate=kind == "sub" and index > 0)
    else:  # mul, div of tensors: each operand's gradient is dY times (a function of) the others
        for producer in layer.producers:
            size = float(shape_elements(b.shapes[producer]))
            others = tuple(p for p in layer.producers if p != producer)
            b.add(b.op(layer, f"{kind}_grad.{producer}", b.shapes[producer], (dy, *others),
                       elementwise=n * len(others), special=n if kind == "div" else 0.0,
                       reduction=n if size < n else 0.0, reads=n * (1 + len(others))), producer)


def _pass_through(b: _Backward, layer: Layer, dy: str, producer: str, negate: bool = False) -> None:
    """An add's gradient is its output gradient, for each operand; a broadcast operand sums it over the
    broadcast axes; a subtracted operand takes its negation."""
    n = float(shape_elements(layer.output_shape))
    size = float(shape_elements(b.shapes[producer]))
    if size < n or negate:
        b.add(b.op(layer, f"grad.{producer}", b.shapes[producer], (dy,), elementwise=n if negate else 0.0,
                   reduction=n if size < n else 0.0, reads=n, fusable=size == n), producer)
    else:
        b.contribute(producer, dy)


def _norm_backward(b: _Backward, layer: Norm, dy: str) -> None:
    n, source = float(layer.elements), layer.producers[0] if layer.producers else None
    inputs = (dy, source) if source else (dy,)
    if layer.kind == "batchnorm":  # sums of dY and dY*x_hat per channel, then the apply pass: both read dY, x
        work = dict(elementwise=4 * n, reduction=2 * n, reads=4 * n, extra_outputs=2.0 * layer.channels)
    elif layer.kind == "layernorm":  # a row fits the scratchpad: one pass
        work = dict(elementwise=4 * n, reduction=2 * n, reads=2 * n, extra_outputs=2.0 * layer.channels)
    else:  # lrn: the window sums again
        work = dict(elementwise=float(layer.ops) + 2 * n, special=n, reads=2 * n)
    name = b.add(b.op(layer, f"{layer.kind}_grad", layer.shape, inputs, **work), source)
    if layer.param_elements:
        b.param_gradients.append((layer, name))


def _softmax_backward(b: _Backward, layer: Softmax, dy: str) -> None:
    n = float(layer.elements)  # dX = Y * (dY - sum(dY * Y)) per row, from the stashed output
    b.add(b.op(layer, "softmax_grad", layer.output_shape, (dy, layer.name), elementwise=3 * n, reduction=n,
               reads=2 * n), layer.producers[0] if layer.producers else None)


def _pool_backward(b: _Backward, layer: Pool | GlobalAvgPool, dy: str) -> None:
    source = layer.producers[0] if layer.producers else None
    taps = float(layer.ops)  # one scatter (and for max, one compare) per window tap
    inputs = float(shape_elements(layer.input_shape))
    if isinstance(layer, Pool) and layer.kind == "maxpool":  # the argmax from the stashed input
        work = dict(elementwise=2 * taps, reads=layer.elements + inputs)
        operands = (dy, source) if source else (dy,)
    else:
        work = dict(elementwise=taps if isinstance(layer, Pool) else inputs, reads=float(layer.elements))
        operands = (dy,)
    b.add(b.op(layer, f"{layer.op_name}_grad", layer.input_shape, operands, **work), source)


def _embedding_backward(b: _Backward, layer: Embedding, dy: str) -> None:
    n = float(layer.elements)  # the looked-up rows' gradients scatter-added into the table's gradient
    name = b.add(b.op(layer, "embedding_grad", layer.output_shape, (dy,), elementwise=n, reads=n))
    b.param_gradients.append((layer, name))


def _concat_backward(b: _Backward, layer: Concat, dy: str) -> None:
    for producer in layer.producers:  # each input's slice of dY: a view
        b.add(b.op(layer, f"split.{producer}", b.shapes[producer], (dy,)), producer)


def _reshape_backward(b: _Backward, layer: Reshape, dy: str) -> None:
    for producer in layer.producers:
        b.contribute(producer, dy)


_RULES: tuple[tuple[type, Callable], ...] = (
    (Conv2d, _conv_backward), (MatMul, _matmul_backward), (Elementwise, _elementwise_backward),
    (Norm, _norm_backward), (Softmax, _softmax_backward), (Pool, _pool_backward),
    (GlobalAvgPool, _pool_backward), (Embedding, _embedding_backward), (Concat, _concat_backward),
    (Reshape, _reshape_backward),
)  # fmt: skip


def _backward_rule(layer: Layer) -> Callable:
    for kind, rule in _RULES:
        if isinstance(layer, kind):
            return rule
    raise WorkloadError(f"no backward rule for a {layer.op_name} layer", key_path=f"layer {layer.name!r}")


def derive_training_step(network: Network, *, batch: int | None = None, optimizer: str = "momentum",
                         update_rule: str = "fp32_master") -> Network:
    """One training step of ``network`` (a forward network) at ``batch`` samples (None: the workload's own):
    forward, loss gradient, backward, and the ``optimizer``'s update of every parameter tensor under
    ``update_rule`` (see the module docstring)."""
    if optimizer not in OPTIMIZERS:
        raise WorkloadError(f"unknown optimizer {optimizer!r}; known: {', '.join(OPTIMIZERS)}")
    if update_rule not in UPDATE_RULES:
        raise WorkloadError(f"unknown weight-update rule {update_rule!r}; known: {', '.join(UPDATE_RULES)}")
    already = [layer.name for layer in network.layers if layer.pass_ != "forward"]
    if already:
        raise WorkloadError(f"{network.name} already holds a training step (layer {already[0]!r} is in pass "
                            "backward or update); derive a training step from a forward network",
                            file=network.file or None)
    if batch is not None:
        network = rescale_batch(network, batch)
    forward = tuple(dataclasses.replace(layer, batch_statistics=True, folded=False)
                    if isinstance(layer, Norm) and layer.kind == "batchnorm" else layer for layer in network.layers)
    b = _Backward(forward)
    b.seed_loss(forward[-1])
    for layer in reversed(forward):
        if isinstance(layer, Softmax) and layer is forward[-1]:
            continue  # its gradient is the loss's
        dy = b.output_gradient(layer)
        if dy is not None:
            _backward_rule(layer)(b, layer, dy)
    updates = tuple(OptimizerUpdate(name=f"{layer.name}.update", params=layer.param_elements, inputs=(gradient,),
                                    optimizer=optimizer, rule=update_rule, pass_="update",
                                    source_layer=layer.name)
                    for layer, gradient in b.param_gradients)
    notes = (f"{network.notes} Training step: {optimizer}, {update_rule} weights, batch "
             f"{batch or forward_batch(network)}.").strip()
    precision = {layer.name: layer.precision for layer in forward if layer.precision}
    backward = tuple(dataclasses.replace(layer, precision=precision[layer.source_layer])
                     if layer.is_gemm and layer.source_layer in precision else layer for layer in b.layers)
    return Network(f"{network.name}.train", (*forward, *backward, *updates), network.source, notes, network.file,
                   fold_batch_norms=False)


__all__ = ["derive_training_step", "forward_batch", "per_chip_batch", "rescale_batch"]
