"""Data-parallel numerics: N simulated workers, a ring reduce-scatter of gradients, sharded updates, all-gather.

One step of :class:`DataParallel` on a global batch:

1. The batch is cut into N equal shards along its first axis; worker ``w`` computes its gradients on shard
   ``w`` with the caller's ``grads_of(w, shard)`` (reading the parameters' ``compute_value``: every worker
   holds the same gathered weights) and divides them by N in float32, so the reduced sum is the global mean.
2. Ring reduce-scatter (:func:`ring_reduce_scatter`): the parameters, flattened into one vector, are cut into
   N chunks; in N-1 hops every worker sends one chunk to its right-hand neighbour, which adds it to its own
   copy.  Gradients are held in the reduction format (float32, float16 or bfloat16) and every partial sum is
   rounded to it at every hop, as a ring all-reduce in that format does.  Chunk ``c`` ends on worker ``c``,
   summed in the order ``g[c+1], g[c+2], ..., g[c+N-1], g[c]`` (indices mod N).
3. Optional loss scaling: the reduced chunks are unscaled; an inf/NaN anywhere skips the step on all workers.
4. Worker ``w`` updates its chunk of the weights (a ZeRO-style shard) with the optimizer and the update rule;
   optimizer and rule state is kept per shard (names ``worker0`` ...).
5. All-gather: every worker receives every chunk.  Weights (``kind == "weight"``) travel in the gather format
   (HFP8's protocol: the forward FP8 format; or float16/float32), rounded to nearest with saturation;
   biases and norm parameters travel in float32 (they are added on the vector unit and are a negligible share
   of the bytes).  ``param.compute_value`` is what arrived, ``param.value`` the float32 master (or the rule's
   effective weight).

With float32 reductions and a float32 gather, N workers follow one worker on the global batch up to the
order of the float32 sums; with an FP8 gather, ``compute_value`` is bit for bit the local quantization of the
updated master weights.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from hfp8sim.errors import TrainingError
from hfp8sim.formats import FormatSpec, get_format, quantize

from .loss_scaling import LossScaler
from .optim import Optimizer, UpdateRule

REDUCE_FORMATS = ("float32", "float16", "bfloat16")
MAX_WORKERS = 8

GradsOf = Callable[[int, tuple[np.ndarray, ...]], Sequence[np.ndarray]]


def chunk_bounds(length: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous chunks of ``range(length)``, sizes differing by at most one (larger ones first)."""
    base, extra = divmod(length, parts)
    bounds, start = [], 0
    for index in range(parts):
        stop = start + base + (1 if index < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _check_reduce_format(fmt: str) -> str:
    if fmt not in REDUCE_FORMATS:
        raise TrainingError(f"unknown gradient reduction format {fmt!r}; allowed: {', '.join(REDUCE_FORMATS)}")
    return fmt


def _to_format(values: np.ndarray, fmt: str) -> np.ndarray:
    """Values rounded to the reduction format (nearest even); an overflow becomes inf, as the hardware's adder
    gives it, so loss scaling sees it.  float32 values come back as they are."""
    if fmt == "float32":
        return np.asarray(values, np.float32)
    return quantize(np.asarray(values, np.float64), fmt, overflow="nonsaturating").astype(np.float32)


def _add_in_format(a: np.ndarray, b: np.ndarray, fmt: str) -> np.ndarray:
    if fmt == "float32":
        return a + b
    # float64 holds the sum of two float32 values of the narrow formats well enough that rounding it once more
    # to float16/bfloat16 is the correctly rounded sum (53 >= 2p + 2 bits for p <= 24)
    return _to_format(a.astype(np.float64) + b.astype(np.float64), fmt)


def ring_reduce_scatter(gradients: Sequence[np.ndarray], fmt: str = "float32") -> list[np.ndarray]:
    """Ring reduce-scatter of N equal-length float32 vectors; element ``w`` of the result is chunk ``w`` of the
    sum (see :func:`chunk_bounds`), as held by worker ``w`` at the end, in float32 holding ``fmt`` values."""
    _check_reduce_format(fmt)
    workers = len(gradients)
    if workers < 1:
        raise TrainingError("ring reduce-scatter needs at least one worker")
    length = len(gradients[0])
    if any(g.ndim != 1 or len(g) != length for g in gradients):
        raise TrainingError(f"ring reduce-scatter: every worker must hold a vector of {length} gradients, got "
                            f"shapes {[g.shape for g in gradients]}")
    bounds = chunk_bounds(length, workers)
    buffers = [_to_format(g, fmt).copy() for g in gradients]
    for hop in range(workers - 1):
        # all sends of a hop happen at once: take every payload before any worker adds
        sends = [(w, (w - hop - 1) % workers) for w in range(workers)]
        payloads = [buffers[w][slice(*bounds[c])].copy() for w, c in sends]
        for (w, c), payload in zip(sends, payloads):
            receiver = buffers[(w + 1) % workers]
            chunk = slice(*bounds[c])
            receiver[chunk] = _add_in_format(receiver[chunk], payload, fmt)
    return [buffers[w][slice(*bounds[w])].copy() for w in range(workers)]


class _Shard:
    """One worker's slice of the flattened parameters, shaped like a Parameter for the optimizer and rule."""

    kind = "shard"

    def __init__(self, name: str, value: np.ndarray):
        self.name = name
        self.value = value
        self.grad: np.ndarray | None = None
        self.compute_value = value


class DataParallel:
    """N workers training one set of parameters on shards of each batch (see the module docstring)."""

    def __init__(self, params: Sequence, grads_of: GradsOf, optimizer: Optimizer, rule: UpdateRule, *,
                 workers: int, reduce_format: str = "float32", gather_format: str | FormatSpec = "float32",
                 loss_scaler: LossScaler | None = None):
        if not isinstance(workers, (int, np.integer)) or isinstance(workers, bool) or not 1 <= workers <= MAX_WORKERS:
            raise TrainingError(f"data parallel: workers must be an integer from 1 to {MAX_WORKERS}, got {workers!r}")
        self.params = list(params)
        if not self.params:
            raise TrainingError("data parallel: no parameters to train")
        self.grads_of = grads_of
        self.optimizer = optimizer
        self.rule = rule
        self.workers = int(workers)
        self.reduce_format = _check_reduce_format(reduce_format)
        self.gather_spec = get_format(gather_format)  # a spec: a scheme's unregistered format works too
        self.gather_format = self.gather_spec.name
        self.loss_scaler = loss_scaler
        sizes = [int(p.value.size) for p in self.params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        master = np.concatenate([np.asarray(p.value, np.float32).reshape(-1) for p in self.params])
        self.bounds = chunk_bounds(master.size, self.workers)
        self.shards = [_Shard(f"worker{w}", master[start:stop].copy()) for w, (start, stop) in enumerate(self.bounds)]
        for w, shard in enumerate(self.shards):
            rule.prepare(w, shard)
        self.steps = 0
        self._all_gather()

    def _split_batch(self, batch: tuple[np.ndarray, ...]) -> list[tuple[np.ndarray, ...]]:
        size = len(batch[0])
        if any(len(part) != size for part in batch):
            raise TrainingError(f"data parallel: the batch's arrays differ in length: {[len(p) for p in batch]}")
        if size % self.workers:
            raise TrainingError(f"data parallel: a batch of {size} examples does not split into {self.workers} "
                                f"equal shards")
        step = size // self.workers
        return [tuple(part[w * step:(w + 1) * step] for part in batch) for w in range(self.workers)]

    def _flat_gradients(self, worker: int, grads: Sequence[np.ndarray]) -> np.ndarray:
        if len(grads) != len(self.params):
            raise TrainingError(f"data parallel: grads_of returned {len(grads)} gradients for "
                                f"{len(self.params)} parameters (worker {worker})")
        for param, grad in zip(self.params, grads):
            if np.shape(grad) != param.value.shape:
                raise TrainingError(f"data parallel: worker {worker}: gradient of {param.name} has shape "
                                    f"{np.shape(grad)}, the parameter {param.value.shape}")
        return np.concatenate([np.asarray(g, np.float32).reshape(-1) for g in grads])

    def step(self, batch: tuple[np.ndarray, ...] | np.ndarray) -> bool:
        """One data-parallel step on a global batch (a tuple of arrays split along axis 0); True if skipped."""
        batch = batch if isinstance(batch, tuple) else (batch,)
        share = np.float32(1.0 / self.workers)
        local = [self._flat_gradients(w, self.grads_of(w, shard)) * share
                 for w, shard in enumerate(self._split_batch(batch))]
        reduced = ring_reduce_scatter(local, self.reduce_format)
        if self.loss_scaler is not None:
            found_inf = self.loss_scaler.unscale(reduced)
            if self.loss_scaler.update(found_inf):
                return True
        for w, shard in enumerate(self.shards):
            shard.grad = reduced[w]
            self.rule.apply(w, shard, self.optimizer.update(shard))
        self._all_gather()
        self.steps += 1
        return False

    def _all_gather(self) -> None:
        master = np.concatenate([shard.value for shard in self.shards]).astype(np.float32, copy=False)
        sent = np.concatenate([shard.compute_value for shard in self.shards]).astype(np.float32, copy=False)
        for index, param in enumerate(self.params):
            segment = slice(self.offsets[index], self.offsets[index + 1])
            param.value = master[segment].reshape(param.value.shape).copy()
            if getattr(param, "kind", "weight") == "weight":
                arrived = sent[segment]
                if self.gather_format != "float32":
                    arrived = quantize(arrived, self.gather_spec, overflow="saturate")
            else:
                arrived = master[segment]
            param.compute_value = arrived.reshape(param.value.shape).copy()
