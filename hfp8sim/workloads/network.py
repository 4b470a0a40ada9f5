"""A network: an ordered list of layers whose connections are checked when it is built."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field

from .. import limits
from ..errors import WorkloadError
from .layers import Conv2d, Layer, MatMul, Norm


@dataclass(frozen=True)
class Network:
    """An ordered, validated list of layers.

    Building one checks that layer names are unique, that every input names an *earlier* layer (so the
    order is a valid execution order), that each layer gets as many inputs as it has operands, and that
    connected shapes agree (a conv's C equals its producer's channels, spatial sizes match, a linear
    layer's K equals its input's features ...).  A failure raises :class:`~hfp8sim.errors.WorkloadError`
    naming ``file`` (the file the network came from) and the layer as ``layers[i] (name)``.

    ``source`` says where the shapes come from (a model definition, a paper); ``notes`` records modelling
    choices (what is folded, which variant); ``file`` is the file it was read from, used in error messages.

    ``fold_batch_norms`` (the default): every batch norm that :func:`folds_batch_norm` allows is marked
    ``folded`` (its scale and shift live in the producing conv's weights and bias; no vector work); False
    keeps every batch norm on the vector unit, for comparison.
    """

    name: str
    layers: tuple[Layer, ...]
    source: str = ""
    notes: str = ""
    file: str = ""
    fold_batch_norms: bool = True
    _index: dict[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        if not isinstance(self.name, str) or not self.name:
            raise WorkloadError(f"a network needs a non-empty name, got {self.name!r}", file=self.file or None)
        if not self.layers:
            raise WorkloadError("a network needs at least one layer", file=self.file or None)
        if len(self.layers) > limits.MAX_LAYERS:
            raise WorkloadError(f"{len(self.layers):,} layers, more than the limit of {limits.MAX_LAYERS:,} layers "
                                "per network (hfp8sim.limits.MAX_LAYERS)", file=self.file or None)
        index: dict[str, int] = {}
        for i, layer in enumerate(self.layers):
            where = f"layers[{i}] ({getattr(layer, 'name', '?')})"
            if not isinstance(layer, Layer):
                raise WorkloadError(f"not a layer: {layer!r}", file=self.file or None, key_path=where)
            if layer.name in index:
                raise WorkloadError(
                    f"duplicate layer name (also layers[{index[layer.name]}])",
                    file=self.file or None,
                    key_path=where,
                )
            self._check_inputs(i, layer, index)
            self._check_size(i, layer)
            index[layer.name] = i
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "layers", self._batch_norms_folded())

    def _batch_norms_folded(self) -> tuple[Layer, ...]:
        """The layers with each batch norm's ``folded`` set as :func:`folds_batch_norm` (and
        ``fold_batch_norms``) decide; a batch norm marked folded that cannot fold is an error."""
        training = any(layer.pass_ != "forward" for layer in self.layers)
        readers: dict[str, int] = {}
        for layer in self.layers:
            for producer in set(layer.producers):
                readers[producer] = readers.get(producer, 0) + 1
        layers = list(self.layers)
        for i, layer in enumerate(layers):
            if not (isinstance(layer, Norm) and layer.kind == "batchnorm"):
                continue
            producer = self.layers[self._index[layer.producers[0]]] if layer.producers else None
            can_fold = producer is not None and folds_batch_norm(layer, producer, readers[producer.name], training)
            if layer.folded and not can_fold:
                raise WorkloadError("marked folded, but a batch norm folds only into a forward conv2d or linear "
                                    "matmul whose output it alone reads, in a network without backward passes",
                                    file=self.file or None, key_path=f"layers[{i}] ({layer.name})")
            if layer.folded != (can_fold and self.fold_batch_norms):
                layers[i] = dataclasses.replace(layer, folded=can_fold and self.fold_batch_norms)
        return tuple(layers)

    def _check_size(self, i: int, layer: Layer) -> None:
        """A GEMM larger than ``limits.MAX_GEMM_MACS`` is refused here, where every importer's network passes,
        before any plan or tensor of it exists."""
        if layer.is_gemm and layer.macs > limits.MAX_GEMM_MACS:
            g = layer.gemm()
            raise WorkloadError(f"GEMM of {layer.macs:.3g} MACs (batch {g.batch} x M {g.M} x N {g.N} x K {g.K}), "
                                f"more than the limit of {limits.MAX_GEMM_MACS:.3g} MACs per layer "
                                "(hfp8sim.limits.MAX_GEMM_MACS)", file=self.file or None,
                                key_path=f"layers[{i}] ({layer.name})")

    def _check_inputs(self, i: int, layer: Layer, index: dict[str, int]) -> None:
        where = f"layers[{i}] ({layer.name})"
        problem = layer.check_input_count()
        if problem:
            raise WorkloadError(problem, file=self.file or None, key_path=where)
        for k, producer in enumerate(layer.inputs):
            if producer is None:
                continue
            if producer not in index:
                later = any(other.name == producer for other in self.layers[i + 1 :])
                problem = (
                    f"input {producer!r} is defined later; layers must come after the layers they use"
                    if later
                    else f"input {producer!r} is not a layer of this network"
                )
                raise WorkloadError(problem, file=self.file or None, key_path=where)
            problem = layer.check_input(k, producer, self.layers[index[producer]].output_shape)
            if problem:
                raise WorkloadError(problem, file=self.file or None, key_path=where)

    # -------------------------------------------------------------------------------------- lookups

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def __getitem__(self, key: int | str) -> Layer:
        """A layer by position or by name."""
        if isinstance(key, str):
            return self.layer(key)
        return self.layers[key]

    def layer(self, name: str) -> Layer:
        """The layer called ``name``; a WorkloadError (with close names) if there is none."""
        try:
            return self.layers[self._index[name]]
        except KeyError:
            import difflib

            close = difflib.get_close_matches(name, list(self._index), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise WorkloadError(
                f"network {self.name!r} has no layer {name!r}{hint}", file=self.file or None
            ) from None

    def index_of(self, name: str) -> int:
        self.layer(name)
        return self._index[name]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers)

    def producers(self, name: str) -> tuple[Layer, ...]:
        """The layers feeding ``name``, in operand order."""
        return tuple(self.layer(p) for p in self.layer(name).producers)

    def consumers(self, name: str) -> tuple[Layer, ...]:
        """The layers that read the output of ``name``, in network order."""
        self.layer(name)
        return tuple(layer for layer in self.layers if name in layer.producers)

    # ---------------------------------------------------------------------------------------- totals

    def gemm_layers(self) -> tuple[Conv2d | MatMul, ...]:
        """The layers that run on the array (convolutions and matmuls), in order."""
        return tuple(layer for layer in self.layers if layer.is_gemm)  # type: ignore[misc]

    def vector_layers(self) -> tuple[Layer, ...]:
        """The layers that run on the vector unit, in order."""
        return tuple(layer for layer in self.layers if not layer.is_gemm)

    @property
    def macs(self) -> int:
        """Total multiply-accumulates of the GEMM layers."""
        return sum(layer.macs for layer in self.layers)

    @property
    def weight_elements(self) -> int:
        return sum(layer.weight_elements for layer in self.layers)

    def count_by_op(self) -> dict[str, int]:
        """How many layers of each op (``conv2d``, ``matmul``, ``relu``, ``layernorm`` ...)."""
        counts: dict[str, int] = {}
        for layer in self.layers:
            key = layer.op_name
            counts[key] = counts.get(key, 0) + 1
        return counts

    def summary(self) -> str:
        """A few lines for humans: name, layer counts, MACs."""
        ops = ", ".join(f"{k} {v}" for k, v in sorted(self.count_by_op().items()))
        return (
            f"{self.name}: {len(self.layers)} layers ({len(self.gemm_layers())} on the array), "
            f"{self.macs:,} MACs ({self.macs / 1e9:.3f} G)\n  {ops}"
        )


def folds_batch_norm(norm: Layer, producer: Layer, producer_readers: int, training: bool) -> bool:
    """Whether an inference batch norm folds into its producer's weights and bias at load, as deployment
    toolchains do (``w' = w * gamma / sqrt(var + eps)`` per output channel, ``b' = (b - mean) * gamma /
    sqrt(var + eps) + beta``): a forward ``batchnorm`` fed by a forward conv2d or a linear matmul (its B
    operand a weight, one GEMM), whose output nothing else reads (``producer_readers`` == 1: the
    unnormalised output would be lost), in a network with no backward pass (``training``: training
    normalises with each batch's own statistics, which no load-time constant can hold)."""
    if training or not (isinstance(norm, Norm) and norm.kind == "batchnorm" and norm.pass_ == "forward"):
        return False
    if producer.pass_ != "forward" or producer_readers != 1:
        return False
    if isinstance(producer, Conv2d):
        return True
    return isinstance(producer, MatMul) and producer.b_role == "weight" and producer.a_role != "weight" \
        and producer.batch == 1


def layer_op_name(layer: Layer) -> str:
    """The YAML ``op`` of a layer (:attr:`Layer.op_name <hfp8sim.workloads.layers.Layer.op_name>`)."""
    return layer.op_name


def keep_first_last(network: Network, precision: str = "fp16") -> Network:
    """``network`` with its first and last weight-bearing GEMM layers (a network's input and classifier layers:
    a ResNet's stem conv and its fc) in ``precision``, the exceptions IBM's HFP8 training keeps in FP16 (Sun et
    al., NeurIPS 2019).  Layers that already name a precision keep theirs; a network with one such layer
    gets it once."""
    weighted = [layer.name for layer in network.layers if layer.is_gemm and layer.param_elements]
    if not weighted:
        raise WorkloadError(f"{network.name}: no GEMM layer with weights to keep in {precision}",
                            file=network.file or None)
    chosen = {weighted[0], weighted[-1]}
    layers = tuple(dataclasses.replace(layer, precision=precision)
                   if layer.name in chosen and not layer.precision else layer for layer in network.layers)
    return dataclasses.replace(network, layers=layers,
                               notes=f"{network.notes} First and last layers in {precision}.".strip())
