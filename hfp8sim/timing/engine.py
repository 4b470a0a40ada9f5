"""SimPy event model of one core executing a layer schedule, at tile/transaction granularity.

Components (each a small object holding SimPy resources and its own counters):

* ``DramChannel``: one shared channel; a transfer of B bytes holds it for ``ceil(B / bw)`` whole cycles (so
  concurrent transfers queue and share the bandwidth, and a transfer's last, partly filled beat still takes
  its cycle) after a fixed access latency (whole cycles too) that overlaps with other transfers.
* DMA engines: at most ``dma_engines`` transfers in flight.
* The array: executes one tile at a time; a tile takes the closed-form cycles of its folds (proven against
  the cycle-stepped reference in ``fold_latency``), stretched to ``ceil(bytes / port width)`` of its busiest
  port if the scratchpads or the interconnect to the array edges cannot deliver the tile's operand and
  partial-sum bytes in that time (the stretch is counted as ``port_stall_cycles``).

Every duration is a whole number of cycles, so simulated time (``env.now``) and every cycle count are ints.
* Buffers: the input/weight scratchpads hold one tile (two when double-buffered, so the next tile loads while
  this one computes); the output scratchpad holds the accumulating output tile until its last k-tile is done,
  then a store process writes it back to DRAM (overlapping the next tiles when double-buffered).

The array waits (a stall) whenever the next tile's operands have not arrived; the layer ends when its last
output tile is in DRAM.  No events per PE or per cycle: a layer costs a handful of events per tile.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import simpy

from ..schedule.mapper import LayerSchedule, Tile
from ..schedule.tile_cycles import TileCyclesFn
from ..core.cycles import whole_cycles
from ..core.model import CoreTiming
from . import steady as steady_state
from .steady import SteadyStats


@dataclasses.dataclass
class LayerTiming:
    """Counted results of one layer (additive over layers)."""

    cycles: int = 0
    compute_cycles: int = 0  # cycles the array spent on folds (including edge-bandwidth stretch)
    fold_cycles: int = 0  # the closed-form fold cycles alone
    port_stall_cycles: int = 0  # compute_cycles - fold_cycles: folds stretched by scratchpad ports/interconnect
    stall_cycles: int = 0  # cycles the array waited for data
    macs: int = 0
    pe_slots: float = 0.0  # sum over folds of rows*cols*steps offered
    used_pe_slots: float = 0.0  # of those, the ones doing work
    folds: int = 0
    tiles: int = 0
    dram_read_bytes: float = 0.0
    dram_write_bytes: float = 0.0
    sram_input_read_bytes: float = 0.0
    sram_weight_read_bytes: float = 0.0
    sram_output_read_bytes: float = 0.0
    sram_output_write_bytes: float = 0.0
    sram_input_fill_bytes: float = 0.0  # DRAM -> input scratchpad writes
    sram_weight_fill_bytes: float = 0.0  # DRAM -> weight scratchpad writes
    interconnect_bytes: float = 0.0
    tile_finish_order: list[int] = dataclasses.field(default_factory=list)
    events: list[tuple[str, str, float, float, str]] = dataclasses.field(default_factory=list)
    """(name, track, start cycle, duration, detail) of every DMA transfer, tile computation and store, when
    the layer was simulated with ``record=True`` (for timeline export)."""

    def __add__(self, other: LayerTiming) -> LayerTiming:
        """Counters added (the cores of a chip, or layers); ``cycles`` of a sum of concurrent cores is not the
        layer's time, which the chip model reports itself.  Finish orders and events are concatenated."""
        fields = {f.name: getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self)}
        return LayerTiming(**fields)


class DramChannel:
    def __init__(self, env: simpy.Environment, bytes_per_cycle: float, latency: int, dma_engines: int):
        self.env = env
        self.bytes_per_cycle = bytes_per_cycle
        self.latency = latency
        self.bus = simpy.Resource(env, capacity=1)
        self.dma = simpy.Resource(env, capacity=dma_engines)
        self.bytes_moved = 0.0

    def transfer(self, nbytes: float, events: list | None = None, label: str = "dma"):
        """A DMA transfer of ``nbytes`` (generator): waits for an engine, the latency, then the bus."""
        if nbytes <= 0:
            return
        with self.dma.request() as engine:
            yield engine
            if math.isinf(self.bytes_per_cycle):
                self.bytes_moved += nbytes
                return
            if self.latency:
                yield self.env.timeout(self.latency)
            with self.bus.request() as bus:
                yield bus
                start = self.env.now
                yield self.env.timeout(whole_cycles(nbytes, self.bytes_per_cycle))
                if events is not None:
                    events.append((label, "dram", start, self.env.now - start, f"{nbytes:.0f} B"))
            self.bytes_moved += nbytes


TileCycles = TileCyclesFn  # (mt, nt, kt) -> TileCycles of one tile (see hfp8sim.schedule.tile_cycles)


def _edge_bytes(tile: Tile, schedule: LayerSchedule, core: CoreTiming) -> tuple[float, float, float, float]:
    """Scratchpad reads/writes a tile needs at the array edges: (input, weight, psum read, psum write)."""
    p = schedule.problem
    mt, nt, kt = tile.dims
    rows_k = core.rows * (2 if core.pair else 1)
    if core.dataflow == "ws":  # inputs streamed once per column fold, weights once, psums per row fold
        input_reads = mt * kt * p.a_bytes * math.ceil(nt / core.cols)
        weight_reads = kt * nt * p.b_bytes
        k_folds = math.ceil(kt / rows_k)
    elif core.dataflow == "is":
        input_reads = mt * kt * p.a_bytes
        weight_reads = kt * nt * p.b_bytes * math.ceil(mt / core.cols)
        k_folds = math.ceil(kt / rows_k)
    else:  # os: both operands streamed once per fold row/column; outputs leave once
        input_reads = mt * kt * p.a_bytes * math.ceil(nt / core.cols)
        weight_reads = kt * nt * p.b_bytes * math.ceil(mt / core.rows)
        k_folds = 1
    out_elems = mt * nt
    psum_writes = out_elems * p.psum_bytes * k_folds if core.dataflow != "os" else out_elems * p.psum_bytes
    first = 0 if tile.first_k else 1  # the first fold of a fresh output tile writes, later ones read-modify-write
    psum_reads = out_elems * p.psum_bytes * (k_folds - 1 + first) if core.dataflow != "os" else 0.0
    return input_reads, weight_reads, psum_reads, psum_writes


def tile_busy_cycles(tile: Tile, schedule: LayerSchedule, core: CoreTiming, fold_cycles: int) -> int:
    """Cycles the array is busy with a tile: its fold cycles, stretched when the scratchpads or the
    interconnect cannot move the tile's edge traffic in that time (each port busy whole cycles)."""
    input_b, weight_b, psum_r, psum_w = _edge_bytes(tile, schedule, core)
    edge_limit = max(
        whole_cycles(input_b + weight_b + psum_r + psum_w, core.interconnect_bytes_per_cycle),
        whole_cycles(input_b, core.input_read_bytes_per_cycle),
        whole_cycles(weight_b, core.weight_read_bytes_per_cycle),
        whole_cycles(psum_r, core.output_read_bytes_per_cycle),
        whole_cycles(psum_w, core.output_write_bytes_per_cycle),
    )
    return max(int(fold_cycles), edge_limit)


@dataclasses.dataclass
class SharedOperand:
    """An operand block loaded from DRAM by one core and multicast to the others over the on-chip network
    (weights when a layer is split by rows, activations when it is split by output channels)."""

    which: str  # "a" or "b"
    owner: int
    arrivals: dict[int, simpy.Event]  # tile index -> the multicast reached every other core
    multicast: Callable  # (nbytes) -> generator that moves the bytes from the owner to all cores


@dataclasses.dataclass
class CorePipeline:
    """One core's running layer: its SimPy processes and stores, and where it is in the tile order.

    Processes refer to tiles by *logical* index, real index = logical + ``offset``, and look a tile up again
    after every wait, so steady-state extrapolation (:mod:`hfp8sim.timing.steady`) can move the whole
    pipeline forward by whole periods by raising ``offset`` alone.  ``loading``: the logical index of the
    tile the loader works on; ``computed``: the array's tiles begun; ``armed``: the array just started a
    tile (the extrapolation looks at the state then)."""

    dram: DramChannel
    in_slots: simpy.Container
    out_slots: simpy.Container
    ready: simpy.Store
    offset: int = 0
    loading: int = 0
    computed: int = 0
    armed: bool = False
    loader: simpy.Process | None = None
    compute: simpy.Process | None = None


def start_core_processes(env: simpy.Environment, dram: DramChannel, schedule: LayerSchedule, core: CoreTiming,
                         tile_cycles: TileCycles, result: LayerTiming, events: list | None, *, index: int = 0,
                         shared: SharedOperand | None = None, keep_outputs: bool = False
                         ) -> tuple[CorePipeline, list]:
    """Create one core's loader/compute/store processes on ``env``; returns (its pipeline, store list).

    The building block of both a single-core layer (:func:`simulate_layer`) and a chip layer
    (:func:`hfp8sim.timing.chip.simulate_chip_layer`, one call per core on a shared ``env`` and ``dram``).
    The caller runs ``env`` until the compute process (``pipeline.compute``) and every store event have
    finished; ``result`` accumulates the core's bytes and busy cycles as the processes run.

    ``index``: the core's number (event labels, and which core owns a ``shared`` operand).  ``shared``: an
    operand block fetched once by its owner and multicast to the other cores.  ``keep_outputs``: the outputs
    stay on chip (partial sums for a cross-core reduction): no stores.

    Long because its four SimPy processes (shared load, loader, compute, store) are closures over one core's
    state (the buffer-slot containers, the ready queue, the pending stores and the counters in ``result``)
    that they hand to each other as simulated time runs; as separate functions each would take all of it."""
    slots_in = 2 if core.double_buffered_inputs else 1
    slots_out = 2 if core.double_buffered_output else 1
    pipe = CorePipeline(dram, simpy.Container(env, capacity=slots_in, init=slots_in),
                        simpy.Container(env, capacity=slots_out, init=slots_out), simpy.Store(env))
    stores_done: list = []
    p = schedule.problem
    tiles = schedule.tiles
    prefix = f"core {index} " if shared is not None or keep_outputs else ""

    def shared_load(tile: Tile, nbytes: float):
        """The owner fetches the shared block and multicasts it; the others wait for it to arrive."""
        if index == shared.owner:
            yield env.process(dram.transfer(nbytes, events, f"{prefix}load {shared.which.upper()} tile {tile.index}"))
            result.dram_read_bytes += nbytes
            yield env.process(shared.multicast(nbytes))
            shared.arrivals[tile.index].succeed()
        else:
            yield shared.arrivals[tile.index]

    def loader():
        while pipe.loading + pipe.offset < len(tiles):
            logical = pipe.loading
            yield pipe.in_slots.get(1)
            tile = tiles[logical + pipe.offset]
            loads = []
            for which, n in (("a", tile.load_a_bytes), ("b", tile.load_b_bytes)):
                if n <= 0:
                    continue
                if shared is not None and which == shared.which:
                    loads.append(env.process(shared_load(tile, n)))
                else:
                    loads.append(env.process(dram.transfer(n, events, f"{prefix}load {which.upper()} tile {tile.index}")))
                    loads[-1].steady_key = (which, logical)
                    result.dram_read_bytes += n
            if loads:
                yield simpy.AllOf(env, loads)
            tile = tiles[logical + pipe.offset]  # the same class of tile; its index moves with a jump
            result.sram_input_fill_bytes += tile.load_a_bytes
            result.sram_weight_fill_bytes += tile.load_b_bytes
            yield pipe.ready.put(logical)
            pipe.loading = logical + 1

    def store(logical: int):
        tile = tiles[logical + pipe.offset]
        transfer = env.process(dram.transfer(tile.store_bytes, events, f"{prefix}store tile {tile.index}"))
        transfer.steady_key = ("s", logical)
        yield transfer
        result.dram_write_bytes += tile.store_bytes
        result.sram_output_read_bytes += tile.store_bytes
        yield pipe.out_slots.put(1)

    def compute():
        while pipe.computed + pipe.offset < len(tiles):
            pipe.computed += 1
            logical = yield pipe.ready.get()
            if tiles[logical + pipe.offset].first_k:
                yield pipe.out_slots.get(1)
            tile = tiles[logical + pipe.offset]
            mt, nt, kt = tile.dims
            cycles, folds, offered, used = tile_cycles(mt, nt, kt)
            input_b, weight_b, psum_r, psum_w = _edge_bytes(tile, schedule, core)
            busy = tile_busy_cycles(tile, schedule, core, cycles)
            if events is not None:
                events.append((f"{prefix}tile {tile.index}", f"array{index}" if prefix else "array", env.now, busy,
                               f"{mt}x{nt}x{kt}, {folds} folds"))
            pipe.armed = True
            yield env.timeout(busy)
            tile = tiles[logical + pipe.offset]
            result.compute_cycles += busy
            result.fold_cycles += cycles
            result.port_stall_cycles += busy - cycles
            result.folds += folds
            result.pe_slots += offered
            result.used_pe_slots += used
            result.macs += mt * nt * kt
            result.sram_input_read_bytes += input_b
            result.sram_weight_read_bytes += weight_b
            result.sram_output_read_bytes += psum_r
            result.sram_output_write_bytes += psum_w
            result.interconnect_bytes += input_b + weight_b + psum_r + psum_w
            result.tile_finish_order.append(tile.index)
            yield pipe.in_slots.put(1)
            if tile.k[1] == p.K:  # last reduction tile: the output tile is final
                if keep_outputs:
                    yield pipe.out_slots.put(1)
                else:
                    stores_done.append(env.process(store(logical)))

    pipe.loader = env.process(loader())
    pipe.compute = env.process(compute())
    return pipe, stores_done


def tile_increments(tile: Tile, schedule: LayerSchedule, core: CoreTiming, tile_cycles: TileCycles
                    ) -> tuple[float, ...]:
    """Every amount the processes add to a float counter of :class:`LayerTiming` for ``tile`` (the
    steady-state extrapolation checks that their sums are exact)."""
    edges = _edge_bytes(tile, schedule, core)
    _, _, offered, used = tile_cycles(*tile.dims)
    return (tile.load_a_bytes, tile.load_b_bytes, tile.store_bytes, offered, used, sum(edges)) + tuple(edges)


EXTRAPOLATE_STEADY_STATE = True
"""Whether :func:`simulate_layer` skips steady-state periods unless told (benchmarks switch it off to compare)."""


def simulate_layer(schedule: LayerSchedule, core: CoreTiming, tile_cycles: TileCycles, *,
                   give_up_after: float | None = None, record: bool = False, extrapolate: bool | None = None,
                   stats: SteadyStats | None = None) -> LayerTiming | None:
    """Run the SimPy model of one layer on one core and return its counters.

    ``give_up_after``: stop and return None once simulated time passes it (a mapper searching for the fastest
    schedule abandons a candidate that is already slower than the best one found).  ``extrapolate``: skip
    the periods of a steady state (:mod:`hfp8sim.timing.steady`; the counters are exactly the full run's);
    a recorded run (``record``, every event for a timeline) is always simulated in full.  ``stats``: filled
    with what the extrapolation skipped."""
    env = simpy.Environment()
    dram = DramChannel(env, core.dram_bytes_per_cycle, core.dram_latency_cycles, core.dma_engines)
    result = LayerTiming(tiles=len(schedule.tiles))
    pipe, stores_done = start_core_processes(env, dram, schedule, core, tile_cycles, result,
                                             result.events if record else None)
    deadline = env.timeout(give_up_after) if give_up_after is not None else None
    steady = None
    if extrapolate is None:
        extrapolate = EXTRAPOLATE_STEADY_STATE
    if extrapolate and not record and steady_state.supported(env):
        steady = steady_state.SteadyState(
            env, schedule.tiles, schedule.problem.K, pipe, result,
            lambda tile: tile_increments(tile, schedule, core, tile_cycles),
            (deadline, give_up_after) if deadline is not None else None, stats)
    run = steady.run_until if steady is not None else (lambda until: env.run(until=until))
    if deadline is not None:
        run(simpy.AnyOf(env, [pipe.compute, deadline]))
        if not pipe.compute.triggered:
            return None
    else:
        run(pipe.compute)
    if stores_done:
        env.run(until=simpy.AllOf(env, stores_done))
        if give_up_after is not None and env.now > give_up_after:
            return None
    result.cycles = env.now
    # every cycle the array was not computing it waited: for operands, for an output buffer, or for the
    # last store to reach DRAM
    result.stall_cycles = result.cycles - result.compute_cycles
    return result
