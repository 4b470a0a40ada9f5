"""The closed sets of names that cross layers: dataflow, operand role, pass, multi-core partition and the
mapper's objective.

They are ``StrEnum`` members, so they compare equal to (and print as) the plain strings used in YAML files,
result tables and traces: ``Dataflow("ws") == "ws"``.  Parse user text with :func:`parse`, which raises the
typed error every layer raises for the same mistake.
"""

from __future__ import annotations

import enum

from .errors import ConfigError


class Dataflow(enum.StrEnum):
    """What stays in the PEs: outputs (os), weights (ws) or inputs (is)."""

    OUTPUT_STATIONARY = "os"
    WEIGHT_STATIONARY = "ws"
    INPUT_STATIONARY = "is"


class Role(enum.StrEnum):
    """What an operand of a GEMM is; the scheme gives each role its number format."""

    ACTIVATION = "activation"
    WEIGHT = "weight"
    GRADIENT = "gradient"


class Pass(enum.StrEnum):
    """Which pass of a training step a layer belongs to (inference runs the forward pass only)."""

    FORWARD = "forward"
    BACKWARD_DATA = "backward_data"  # dX = dY x W^T
    BACKWARD_WEIGHT = "backward_weight"  # dW = X^T x dY
    UPDATE = "update"  # the optimizer step on the vector unit: master weights, optimizer states, weight copy


class Partition(enum.StrEnum):
    """How one GEMM layer is split over the cores of a chip."""

    OUTPUT_CHANNELS = "output_channels"  # N split, activations multicast
    ROWS = "rows"  # M split, weights multicast
    REDUCTION = "reduction"  # K split, partial sums reduce-scattered over the ring


class Objective(enum.StrEnum):
    """What the mapper minimises when it chooses a layer's tiling (and, on a chip, its partition)."""

    TIME = "time"  # cycles
    ENERGY = "energy"  # total picojoules, priced by the arch's energy section
    EDP = "edp"  # energy x delay: picojoules x cycles


def parse(kind: type[enum.StrEnum], value: object, what: str | None = None):
    """``value`` as a member of ``kind``, or :class:`ConfigError` naming what is allowed."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ConfigError(f"unknown {what or kind.__name__.lower()} {value!r}; allowed: {allowed}") from None
