"""Trainable tensors: a float32 master copy the optimizer updates, the copy forward GEMMs read, and a gradient.

An update rule that keeps weights in low precision (FP16 with stochastic rounding, IBM's FP8 weights with a
round-off residual) sets :attr:`Parameter.compute_value`; otherwise the GEMMs read the master copy itself.
"""

from __future__ import annotations

import numpy as np

from ..errors import TrainingError

PARAMETER_KINDS = ("weight", "bias", "norm")


class Parameter:
    """One trainable tensor of a layer.

    ``value``: the master copy (float32), what the optimizer updates; ``grad``: the gradient of the loss with
    respect to it (float32, None until a backward pass writes it; backward passes add to it, so a parameter
    used twice collects both contributions); ``kind``: ``"weight"`` (read by GEMMs), ``"bias"`` or ``"norm"``
    (vector-unit parameters, which optimizers may treat differently, e.g. no weight decay);
    ``compute_value``: what the forward GEMMs read (the master copy unless an update rule set another).
    """

    __slots__ = ("name", "value", "grad", "kind", "_compute")

    def __init__(self, name: str, value, kind: str = "weight"):
        if kind not in PARAMETER_KINDS:
            raise TrainingError(f"parameter {name}: kind {kind!r} is not one of {', '.join(PARAMETER_KINDS)}")
        self.name = name
        self.value = np.array(value, dtype=np.float32)
        self.grad: np.ndarray | None = None
        self.kind = kind
        self._compute: np.ndarray | None = None

    @property
    def compute_value(self) -> np.ndarray:
        return self.value if self._compute is None else self._compute

    @compute_value.setter
    def compute_value(self, values) -> None:
        """Set the copy GEMMs read (None: read the master copy again)."""
        if values is None:
            self._compute = None
            return
        values = np.asarray(values)
        if values.shape != self.value.shape:
            raise TrainingError(f"parameter {self.name}: compute copy has shape {values.shape}, the parameter "
                                f"{self.value.shape}")
        self._compute = values

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    def zero_grad(self) -> None:
        self.grad = None

    def add_grad(self, grad: np.ndarray) -> None:
        """Add a gradient contribution, checking its shape.  It is kept in the master copy's dtype (float32;
        float64 only where a test puts float64 values in a parameter to check gradients by finite differences)."""
        grad = np.asarray(grad, dtype=self.value.dtype)
        if grad.shape != self.value.shape:
            raise TrainingError(f"parameter {self.name}: gradient of shape {grad.shape} for a parameter of shape "
                                f"{self.value.shape}")
        self.grad = grad.copy() if self.grad is None else self.grad + grad

    def __repr__(self) -> str:
        return f"Parameter({self.name!r}, shape={self.value.shape}, kind={self.kind!r})"


__all__ = ["PARAMETER_KINDS", "Parameter", "TrainingError"]
