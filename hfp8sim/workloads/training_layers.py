"""The layer types only a training step has: the vector-unit half of the backward pass and the optimizer step.

A training step (:func:`~hfp8sim.workloads.training_step.derive_training_step`) reuses the GEMM layer types
for its data and weight gradients (``Conv2d`` and ``MatMul`` with ``pass_`` set); what the forward layer
types cannot say is written here:

* :class:`GradientOp`: one non-GEMM operation of the backward pass (a ReLU mask, batch norm's backward, a
  col2im scatter-add, the softmax-cross-entropy gradient, a sum of gradient contributions ...), with the lane
  work the derivation computed for it from the forward layer's shapes;
* :class:`OptimizerUpdate`: the update of one parameter tensor by an optimizer under a weight-update rule,
  whose bytes include tensors in fixed formats (FP32 master weights and optimizer states, an FP16 round-off
  residual) beside the gradient read and the weight copy written in the scheme's formats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .layers import Shape, ShapedLayer, VectorLayer, VectorWork, YamlField, _fail

OPTIMIZERS = ("sgd", "momentum", "adam")
"""Optimizers: plain SGD, SGD with momentum (one state), Adam (two states)."""
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}

UPDATE_RULES = ("fp32_master", "round_off_residual")
"""How weights are kept between steps: ``fp32_master`` (an FP32 master copy, the GEMMs read a copy in the
forward format written by each update; mixed-precision training's rule), ``round_off_residual`` (IBM HFP8:
weights held in the forward format plus an FP16 residual of what the last rounding dropped)."""

STATE_BYTES = 4.0  # optimizer states (momentum, Adam's two moments) in FP32 under both rules
MASTER_BYTES = 4.0  # an FP32 master weight
RESIDUAL_BYTES = 2.0  # IBM's round-off residual in FP16

# lane-ops per parameter element: the optimizer's arithmetic (elementwise, special) ...
_OPTIMIZER_OPS = {
    "sgd": (2.0, 0.0),  # lr * g, w - that
    "momentum": (4.0, 0.0),  # v = mu * v + g (2), w -= lr * v (2)
    "adam": (9.0, 1.0),  # m (2), v (3: g*g, scale, add), step (3: bias corrections, eps), w -= (1); one rsqrt
}
# ... and the rule's own: round the FP32 master to the forward format (1); add the residual, round to the
# forward format, take the new residual and round it to FP16 (3)
_RULE_OPS = {"fp32_master": 1.0, "round_off_residual": 3.0}


@dataclass(frozen=True, kw_only=True)
class GradientOp(ShapedLayer):
    """A non-GEMM operation of the backward pass, producing a gradient tensor of ``shape``.

    ``kind`` names what it does (``relu_mask``, ``batchnorm_grad``, ``col2im``, ``softmax_ce_grad`` ...);
    ``elementwise``, ``special`` and ``reduction`` are its lane-ops, ``reads`` the tensor elements it reads
    (the output gradient and whatever it needs from the forward pass, stashed in DRAM), ``extra_outputs``
    elements it writes besides ``shape`` (a norm's scale and shift gradients).  ``fusable`` element-wise
    work may ride on the output stage of the GEMM that produced its first input.  A op with no work and no
    reads is a view (the slice of a concat's gradient that belongs to one input).
    """

    op: ClassVar[str] = "gradient"

    kind: str
    elementwise: float = 0.0
    special: float = 0.0
    reduction: float = 0.0
    reads: float = 0.0
    extra_outputs: float = 0.0
    fusable: bool = False

    def _check_fields(self) -> None:
        if not isinstance(self.kind, str) or not self.kind:
            raise _fail(self.name, f"a gradient op needs a kind, got {self.kind!r}")
        if self.pass_ != "backward_data":
            raise _fail(self.name, f"a gradient op belongs to pass backward_data, not {self.pass_}")

    @property
    def op_name(self) -> str:
        return f"{self.kind}"

    def vector_work(self) -> VectorWork:
        if self.elementwise + self.special + self.reduction == 0 and self.reads == 0:
            return VectorWork()  # a view of its input
        return VectorWork(elementwise=self.elementwise, special=self.special, reduction=self.reduction,
                          in_elements=self.reads, out_elements=float(self.elements) + self.extra_outputs,
                          fusable=self.fusable)

    def default_inputs(self, previous: str | None) -> tuple[str | None, ...] | None:
        return None

    def yaml_fields(self) -> tuple[YamlField, ...]:
        return (YamlField("shape", list(self.shape)),)


@dataclass(frozen=True, kw_only=True)
class OptimizerUpdate(VectorLayer):
    """The optimizer step of one parameter tensor of ``params`` elements on the vector unit (FP32 lanes).

    It reads the tensor's gradient (the scheme's gradient format) and writes the weight copy the next
    forward pass reads (forward format); ``fp32_master`` also reads and writes the FP32 master,
    ``round_off_residual`` reads the forward-format weight and reads and writes its FP16 residual; each
    optimizer state is read and written in FP32 under both rules.
    """

    op: ClassVar[str] = "update"
    sizes: ClassVar[tuple[str, ...]] = ("params",)
    single_input: ClassVar[bool] = True

    params: int
    optimizer: str = "momentum"
    rule: str = "fp32_master"

    def _check_fields(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise _fail(self.name, f"unknown optimizer {self.optimizer!r}; known: {', '.join(OPTIMIZERS)}")
        if self.rule not in UPDATE_RULES:
            raise _fail(self.name, f"unknown weight-update rule {self.rule!r}; known: {', '.join(UPDATE_RULES)}")
        if self.pass_ != "update":
            raise _fail(self.name, f"an optimizer update belongs to pass update, not {self.pass_}")

    @property
    def output_shape(self) -> Shape:
        return (self.params,)

    @property
    def operand_roles(self) -> tuple[tuple[str, str], ...]:
        return (("gradient", "gradient"),)

    @property
    def output_role(self) -> str:
        return "weight"

    def fixed_format_bytes(self) -> tuple[float, float]:
        """(read, written) bytes per parameter element of the tensors whose format the rule fixes."""
        states = OPTIMIZER_STATES[self.optimizer] * STATE_BYTES
        kept = MASTER_BYTES if self.rule == "fp32_master" else RESIDUAL_BYTES
        return kept + states, kept + states

    def vector_work(self) -> VectorWork:
        p = float(self.params)
        elementwise, special = _OPTIMIZER_OPS[self.optimizer]
        read, written = self.fixed_format_bytes()
        # the gradient, and under the residual rule the forward-format weight itself, in the scheme's sizes
        reads = p * (2 if self.rule == "round_off_residual" else 1)
        return VectorWork(elementwise=p * (elementwise + _RULE_OPS[self.rule]), special=p * special,
                          in_elements=reads, out_elements=p, extra_read_bytes=p * read,
                          extra_write_bytes=p * written, fp32=True)

    def default_inputs(self, previous: str | None) -> tuple[str | None, ...] | None:
        return None

    def yaml_fields(self) -> tuple[YamlField, ...]:
        return (YamlField("params", self.params), YamlField("optimizer", self.optimizer),
                YamlField("rule", self.rule))


__all__ = ["OPTIMIZERS", "OPTIMIZER_STATES", "UPDATE_RULES", "GradientOp", "OptimizerUpdate"]
