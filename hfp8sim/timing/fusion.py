"""Which non-GEMM layers run in a GEMM's output stage, and where every layer's tensors come from and go.

Decided once per network, before anything is timed, from the layers' producers and vector work:

* A **fused group** is a GEMM followed, in execution order, by the layers its output stage applies to the
  output tile while the tile is on chip: element-wise work the layer marks ``fusable`` (ReLU/ReLU6, bias,
  scale, residual add, inference batch norm's scale and shift) and zero-work layers (a view, a folded batch
  norm).  A layer joins the group open just before it when the group's current value (its *tile operand*,
  the last member's output) is one of its producers and its output has the tile's elements.  Its other
  producers are *residual operands*, read once from DRAM through the channel.
* A member's tile operand that some other layer also needs is written to DRAM from the output stage
  (``spill_tile_operand``); the group's last value leaves through the GEMM's own stores.
* A layer that does not fuse runs alone on the vector unit: it reads its producers from DRAM, except the
  previous layer's output when both layers' tensors fit the output scratchpad (it is still there), and
  writes its output to DRAM unless its only consumer is the next layer and that layer reads it on chip.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from ..workloads.layers import VectorWork


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where a non-GEMM layer runs and how its tensors move."""

    fused_into: str | None = None
    """The GEMM whose output stage applies the layer (None: it runs alone on the vector unit)."""
    tile_operand: str | None = None
    """(fused) The producer whose value is the output tile the layer works on."""
    tile_elements: float = 0.0
    """(fused) Elements of the tile operand: the layer reads the rest of its inputs from DRAM."""
    spill_tile_operand: bool = False
    """(fused) The tile operand is needed after the group too: the output stage writes it to DRAM."""
    on_chip_input: str | None = None
    """(alone) The producer read from the output scratchpad instead of DRAM."""
    on_chip_elements: float = 0.0
    """(alone) Elements of that producer's output."""
    writes_output: bool = True
    """(alone) The output goes to DRAM (another layer reads it from there, or it is the network's)."""


def _is_view(work: VectorWork) -> bool:
    """A layer with no work and no tensor of its own (a reshape, a folded batch norm): it moves nothing."""
    return work.lane_ops == 0 and work.in_elements == 0 and work.out_elements == 0


def _output_elements(layer, work: VectorWork | None) -> float:
    if layer.is_gemm:
        g = layer.gemm()
        return float(g.batch * g.M * g.N)
    return work.out_elements


def _joins(layer, work: VectorWork, tail: str | None, tail_elements: float) -> bool:
    if tail is None or tail not in layer.producers:
        return False
    if _is_view(work):
        return layer.producers == (tail,)
    return (work.fusable or work.lane_ops == 0) and work.out_elements == tail_elements


def plan_placements(layers: Sequence, *, fuse: bool, fits_on_chip: Callable[[VectorWork], bool]
                    ) -> dict[str, Placement]:
    """The :class:`Placement` of every non-GEMM layer of ``layers`` (in execution order).

    ``fuse``: the vector unit may fuse element-wise work into the GEMM output stage; ``fits_on_chip(work)``:
    a layer's input and output tensors fit the output scratchpad together."""
    consumers: dict[str, list[str]] = {}
    for layer in layers:
        for producer in layer.producers:
            consumers.setdefault(producer, []).append(layer.name)
    placements: dict[str, Placement] = {}
    elements: dict[str, float] = {}  # output elements of each layer seen so far
    group = tail = None  # the open fused group's GEMM and its current value
    tail_elements, previous, previous_on_chip = 0.0, None, False
    for layer in layers:
        work = None if layer.is_gemm else layer.vector_work()
        elements[layer.name] = _output_elements(layer, work)
        if layer.is_gemm:
            group, tail, tail_elements, previous_on_chip = layer.name, layer.name, elements[layer.name], True
        elif fuse and _joins(layer, work, tail, tail_elements):
            spill = any(c != layer.name for c in consumers.get(tail, ()))
            placements[layer.name] = Placement(fused_into=group, tile_operand=tail, tile_elements=tail_elements,
                                               spill_tile_operand=spill)
            tail = layer.name
        else:
            group = tail = None
            fits = fits_on_chip(work) and not _is_view(work)
            on_chip = previous if (previous in layer.producers and previous_on_chip and fits) else None
            placements[layer.name] = Placement(on_chip_input=on_chip,
                                               on_chip_elements=elements[on_chip] if on_chip else 0.0)
            previous_on_chip = fits
        previous = layer.name
    return _mark_outputs_kept_on_chip(layers, placements, consumers)


def _mark_outputs_kept_on_chip(layers: Sequence, placements: dict[str, Placement],
                               consumers: dict[str, list[str]]) -> dict[str, Placement]:
    """A layer running alone keeps its output on chip (no DRAM write) when its only consumer is the next
    layer and that layer reads it from the output scratchpad."""
    for layer, following in zip(layers, [*layers[1:], None]):
        placement = placements.get(layer.name)
        if placement is None or placement.fused_into is not None or following is None:
            continue
        after = placements.get(following.name)
        if consumers.get(layer.name) == [following.name] and after is not None and \
                after.on_chip_input == layer.name:
            placements[layer.name] = dataclasses.replace(placement, writes_output=False)
    return placements
