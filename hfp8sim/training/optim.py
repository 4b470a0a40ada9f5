"""Optimizers (what the update is) and weight-update rules (how the updated weight is stored).

Both run on the vector unit, in float32, separately from the GEMMs:

* An :class:`Optimizer` turns a parameter's float32 gradient into a float32 update ``delta`` (new weight =
  weight + delta), keeping its own state (momentum, Adam moments) per parameter name: :class:`SGD` (momentum,
  L2 weight decay, as PyTorch's ``torch.optim.SGD``) and :class:`Adam` (bias-corrected, as ``torch.optim.Adam``).
* An :class:`UpdateRule` adds ``delta`` to the stored weight and sets ``param.compute_value``, what the forward
  GEMMs read:

  - :class:`Fp32Master`: float32 master weights; the compute copy is the master.
  - :class:`Fp16StochasticRounding`: weights kept in float16, each update rounded stochastically (round up
    with probability equal to the discarded fraction), so small updates survive in expectation.  The random
    bits come from the codec's SplitMix64 stream with a seed derived from ``(seed, step, parameter index)``:
    the same seed gives the same bits, and each step draws fresh bits (one fixed draw per element would round
    every step the same way and bring the bias back).
  - :class:`RoundOffResidual`: IBM's HFP8 update: weights in the forward FP8 format plus a float16 residual
    holding what rounding the weight to FP8 dropped; the residual is added back before the next rounding, so
    ``weight + residual`` follows the exact sum of the updates.
  - :class:`Fp16Nearest`: float16 weights, round to nearest: an update below half a float16 ulp of the
    weight is lost (the known failure, kept for comparison).

The parameter objects are duck-typed (``training.tensors.Parameter``: ``name``, ``value`` float32, ``grad``
float32 or None, ``compute_value``); ``value`` always holds the rule's effective weight in float32.
:class:`Updater` ties parameters, an optimizer and a rule into ``step()``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hfp8sim.errors import TrainingError
from hfp8sim.formats import FormatSpec, get_format, quantize

OPTIMIZERS = ("sgd", "adam")
UPDATE_RULES = ("fp32_master", "fp16_stochastic", "round_off_residual", "fp16_nearest")

# HFP8's forward format: the round-off-residual rule keeps weights in it unless told otherwise.
HFP8_WEIGHT_FORMAT = "float8_e4m3b11fnuz"


def _check_number(what: str, value, *, low: float = 0.0, low_inclusive: bool = True, high: float | None = None):
    if not isinstance(value, (int, float, np.floating, np.integer)) or isinstance(value, bool):
        raise TrainingError(f"{what} must be a number, got {value!r}")
    value = float(value)
    too_low = value < low if low_inclusive else value <= low
    if not np.isfinite(value) or too_low or (high is not None and value >= high):
        allowed = f"{'>=' if low_inclusive else '>'} {low:g}" + (f" and < {high:g}" if high is not None else "")
        raise TrainingError(f"{what} must be a finite number {allowed}, got {value!r}")
    return value


def _gradient_of(param) -> np.ndarray:
    grad = param.grad
    if grad is None:
        raise TrainingError(f"parameter {param.name}: no gradient (run backward before the optimizer step)")
    if grad.shape != param.value.shape:
        raise TrainingError(f"parameter {param.name}: gradient shape {grad.shape} does not match the weight's "
                            f"{param.value.shape}")
    return np.asarray(grad, np.float32)


# ---- optimizers ----------------------------------------------------------------------------------------


class Optimizer:
    """Computes each parameter's float32 update from its gradient; state is kept per parameter name."""

    name = "optimizer"

    def __init__(self, lr: float, weight_decay: float = 0.0):
        self.lr = np.float32(_check_number(f"{self.name}: lr", lr, low=0.0, low_inclusive=False))
        self.weight_decay = np.float32(_check_number(f"{self.name}: weight_decay", weight_decay))
        self.state: dict[str, dict[str, np.ndarray | int]] = {}

    def _decayed_gradient(self, param) -> np.ndarray:
        grad = _gradient_of(param)
        if self.weight_decay:
            # L2 weight decay folded into the gradient, as torch.optim does (not AdamW's decoupled decay).
            grad = grad + self.weight_decay * param.value
        return grad

    def update(self, param) -> np.ndarray:
        """The float32 update ``delta`` for this step (new weight = weight + delta)."""
        raise NotImplementedError


class SGD(Optimizer):
    """``buf = momentum * buf + g`` (``buf = g`` on the first step), ``delta = -lr * buf``; g includes L2 decay."""

    name = "sgd"

    def __init__(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.momentum = np.float32(_check_number("sgd: momentum", momentum, high=1.0))

    def update(self, param) -> np.ndarray:
        grad = self._decayed_gradient(param)
        if self.momentum:
            state = self.state.get(param.name)
            if state is None:
                buf = grad.astype(np.float32, copy=True)
                self.state[param.name] = {"momentum_buffer": buf}
            else:
                buf = state["momentum_buffer"]
                buf *= self.momentum
                buf += grad
            grad = buf
        return (-self.lr * grad).astype(np.float32, copy=False)


class Adam(Optimizer):
    """Adam with bias correction: ``delta = -lr * m_hat / (sqrt(v_hat) + eps)``, moments in float32."""

    name = "adam"

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TrainingError(f"adam: betas must be a pair of numbers in [0, 1), got {betas!r}")
        self.beta1 = np.float32(_check_number("adam: betas[0]", betas[0], high=1.0))
        self.beta2 = np.float32(_check_number("adam: betas[1]", betas[1], high=1.0))
        self.eps = np.float32(_check_number("adam: eps", eps, low=0.0, low_inclusive=False))

    def update(self, param) -> np.ndarray:
        grad = self._decayed_gradient(param)
        state = self.state.setdefault(param.name, {"step": 0, "m": np.zeros_like(grad, np.float32),
                                                   "v": np.zeros_like(grad, np.float32)})
        state["step"] += 1
        t = state["step"]
        m, v = state["m"], state["v"]
        m *= self.beta1
        m += (np.float32(1) - self.beta1) * grad
        v *= self.beta2
        v += (np.float32(1) - self.beta2) * grad * grad
        # the bias corrections are scalars: computed once in float64, then used in float32 like everything else
        correction1 = np.float32(1.0 - float(self.beta1) ** t)
        correction2 = np.float32(1.0 - float(self.beta2) ** t)
        m_hat = m / correction1
        v_hat = v / correction2
        return (-self.lr * m_hat / (np.sqrt(v_hat) + self.eps)).astype(np.float32, copy=False)


def make_optimizer(name: str, lr: float, **options) -> Optimizer:
    """An optimizer by name (``sgd``: momentum, weight_decay; ``adam``: betas, eps, weight_decay)."""
    classes = {"sgd": SGD, "adam": Adam}
    if name not in classes:
        raise TrainingError(f"unknown optimizer {name!r}; allowed: {', '.join(OPTIMIZERS)}")
    try:
        return classes[name](lr, **options)
    except TypeError as error:  # an option the optimizer does not have
        raise TrainingError(f"optimizer {name}: {error}") from None


# ---- update rules --------------------------------------------------------------------------------------


class UpdateRule:
    """Stores ``weight + delta`` in the rule's format; ``index`` is the parameter's position in its list."""

    name = "rule"

    def prepare(self, index: int, param) -> None:
        """Bring a freshly initialised parameter into the rule's storage format (before the first forward)."""
        param.compute_value = param.value

    def apply(self, index: int, param, delta: np.ndarray) -> None:
        raise NotImplementedError


class Fp32Master(UpdateRule):
    """float32 master weights: ``value = value + delta`` in float32; the compute copy is the master."""

    name = "fp32_master"

    def prepare(self, index: int, param) -> None:
        param.value = np.asarray(param.value, np.float32)
        param.compute_value = param.value

    def apply(self, index: int, param, delta: np.ndarray) -> None:
        param.value = (param.value + np.asarray(delta, np.float32)).astype(np.float32, copy=False)
        param.compute_value = param.value


class Fp16Nearest(UpdateRule):
    """float16 weights, round to nearest even: updates below half an ulp of the weight vanish."""

    name = "fp16_nearest"

    def _round(self, index: int, param, exact: np.ndarray) -> np.ndarray:
        return quantize(exact, "float16", overflow="saturate")

    def prepare(self, index: int, param) -> None:
        param.value = quantize(np.asarray(param.value, np.float32), "float16")
        param.compute_value = param.value

    def apply(self, index: int, param, delta: np.ndarray) -> None:
        # weight + delta exactly (float64 holds the sum of a float16 and a float32 for any realistic gap), so
        # the only rounding is the one into float16
        exact = param.value.astype(np.float64) + np.asarray(delta, np.float32).astype(np.float64)
        param.value = self._round(index, param, exact).astype(np.float32)
        param.compute_value = param.value


class Fp16StochasticRounding(Fp16Nearest):
    """float16 weights, each update rounded stochastically with fresh, seeded random bits every step."""

    name = "fp16_stochastic"

    def __init__(self, seed: int = 0):
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
            raise TrainingError(f"fp16_stochastic: seed must be an integer >= 0, got {seed!r}")
        self.seed = int(seed)
        self.steps: dict[str, int] = {}  # updates applied so far, per parameter name

    def _round(self, index: int, param, exact: np.ndarray) -> np.ndarray:
        step = self.steps.get(param.name, 0)
        self.steps[param.name] = step + 1
        stream = int(np.random.SeedSequence((self.seed, step, index)).generate_state(1, np.uint64)[0])
        return quantize(exact, "float16", rounding="stochastic", overflow="saturate", seed=stream)


class RoundOffResidual(UpdateRule):
    """IBM's round-off-residual update: FP8 weights (what the GEMMs read) plus a float16 residual.

    Each step: ``full = w8 + residual + delta`` (exact, float64); ``w8 = Q_fp8(full)`` (nearest);
    ``residual = Q_fp16(full - w8)``.  Only the residual's own rounding is lost, so an update far below the
    FP8 ulp accumulates in the residual until it moves the FP8 weight.  ``param.value`` is
    ``float32(w8 + residual)`` (what weight decay and reports see); the rule keeps the pair itself.
    """

    name = "round_off_residual"

    def __init__(self, weight_format: str | FormatSpec = HFP8_WEIGHT_FORMAT,
                 residual_format: str | FormatSpec = "float16"):
        # specs are kept (not only names) so a scheme's unregistered custom format works too
        self.weight_spec, self.residual_spec = get_format(weight_format), get_format(residual_format)
        self.weight_format, self.residual_format = self.weight_spec.name, self.residual_spec.name
        self.stored: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # name -> (FP8 weight, residual), float32

    def _store(self, param, full: np.ndarray) -> None:
        weight = quantize(full, self.weight_spec, overflow="saturate")
        residual = quantize(full - weight, self.residual_spec, overflow="saturate")
        weight, residual = weight.astype(np.float32), residual.astype(np.float32)
        self.stored[param.name] = (weight, residual)
        param.value = (weight + residual).astype(np.float32)
        param.compute_value = weight

    def prepare(self, index: int, param) -> None:
        self._store(param, np.asarray(param.value, np.float32).astype(np.float64))

    def weight_and_residual(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self.stored[name]

    def apply(self, index: int, param, delta: np.ndarray) -> None:
        if param.name not in self.stored:
            self.prepare(index, param)
        weight, residual = self.stored[param.name]
        full = weight.astype(np.float64) + residual.astype(np.float64) + np.asarray(delta, np.float64)
        self._store(param, full)


def make_update_rule(name: str, *, weight_format: str | FormatSpec = HFP8_WEIGHT_FORMAT, seed: int = 0) -> UpdateRule:
    """An update rule by name; ``weight_format`` is the FP8 format of ``round_off_residual`` (the scheme's
    forward format), ``seed`` the stream of ``fp16_stochastic``."""
    if name == "fp32_master":
        return Fp32Master()
    if name == "fp16_stochastic":
        return Fp16StochasticRounding(seed)
    if name == "round_off_residual":
        return RoundOffResidual(weight_format)
    if name == "fp16_nearest":
        return Fp16Nearest()
    raise TrainingError(f"unknown weight-update rule {name!r}; allowed: {', '.join(UPDATE_RULES)}")


class Updater:
    """One optimizer step over a list of parameters: ``delta = optimizer.update(p)``, ``rule.apply(...)``.

    ``non_weight_rule``, when given, stores the parameters whose ``kind`` is not ``"weight"`` (biases, norm
    scales): low-precision storage is meant for the GEMM weights, and these are used on the vector unit.
    """

    def __init__(self, params: Sequence, optimizer: Optimizer, rule: UpdateRule,
                 non_weight_rule: UpdateRule | None = None):
        names = [p.name for p in params]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise TrainingError(f"parameter names must be unique (optimizer state is kept by name): "
                                f"{', '.join(duplicates)}")
        self.params = list(params)
        self.optimizer = optimizer
        self.rule = rule
        self.non_weight_rule = non_weight_rule
        self.steps = 0
        for index, param in enumerate(self.params):
            self.rule_for(param).prepare(index, param)

    def rule_for(self, param) -> UpdateRule:
        if self.non_weight_rule is not None and getattr(param, "kind", "weight") != "weight":
            return self.non_weight_rule
        return self.rule

    def step(self, loss_scaler=None) -> bool:
        """Update every parameter that has a gradient (a frozen or unused one keeps its weight); True if skipped.

        With a :class:`~hfp8sim.training.loss_scaling.LossScaler` the gradients are first unscaled in place,
        and a step whose gradients hold an inf or NaN is skipped (the scaler logs it and adapts its scale).
        """
        if loss_scaler is not None:
            found_inf = loss_scaler.unscale([param.grad for param in self.params])
            if loss_scaler.update(found_inf):
                return True
        for index, param in enumerate(self.params):
            if param.grad is None:
                continue
            self.rule_for(param).apply(index, param, self.optimizer.update(param))
        self.steps += 1
        return False

    def zero_grad(self) -> None:
        for param in self.params:
            param.zero_grad()
