"""Topologies of a data-parallel system: chips on rings, one ring per dimension.

Every topology here is a product of **dimensions**; a dimension of size ``k`` is a unidirectional ring of ``k``
chips with one outgoing link per chip, of a given bandwidth and latency.  Collectives run the ring algorithm
on each dimension in turn (``collectives.py``), so three topologies cover the issue's cases:

- ``ring``: one dimension of N chips.
- ``torus2d``: two dimensions X x Y = N (by default the most nearly square factorisation, X <= Y), the same
  link figures on both.  A prime N gives 1 x N, a ring.
- ``hierarchical``: chips on a fast intra-node ring (dimension 1, ``chips_per_node`` chips), nodes on a switch
  (dimension 2, N / chips_per_node nodes).  The switch is non-blocking and a chip's port to it is its outgoing
  link of dimension 2: in a ring over the switch each chip sends to one chip and receives from one, so the
  ports are the only shared resource (the latency is port to port).

Chips are numbered with the first dimension varying fastest.
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import DistributedError

TOPOLOGIES = ("ring", "torus2d", "hierarchical")
MIN_CHIPS = 2
MAX_CHIPS = 4096
"""Chips of one system.  The issue asks for 2 to 1,024; the reduced model's events grow with the ring
lengths (2 (k - 1) steps per chunk and dimension), so a ring of 4,096 is still seconds."""


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One ring of the topology: ``size`` chips, each with one outgoing link to the next."""

    name: str
    size: int
    gb_per_s: float  # one link, one direction, 1 GB = 1e9 bytes
    latency_us: float  # from the end of a message's serialisation to its arrival at the next chip

    @property
    def bytes_per_s(self) -> float:
        return self.gb_per_s * 1e9

    @property
    def latency_s(self) -> float:
        return self.latency_us * 1e-6


@dataclasses.dataclass(frozen=True)
class Topology:
    kind: str
    dimensions: tuple[Dimension, ...]

    @property
    def chips(self) -> int:
        return math.prod(d.size for d in self.dimensions)

    def coordinates(self, chip: int) -> tuple[int, ...]:
        coords = []
        for dim in self.dimensions:
            chip, position = divmod(chip, dim.size)
            coords.append(position)
        return tuple(coords)

    def chip_at(self, coords: tuple[int, ...]) -> int:
        chip = 0
        for dim, position in zip(reversed(self.dimensions), reversed(coords)):
            chip = chip * dim.size + position
        return chip

    def successor(self, chip: int, dimension: int) -> int:
        """The chip that ``chip``'s link of ``dimension`` sends to."""
        coords = list(self.coordinates(chip))
        coords[dimension] = (coords[dimension] + 1) % self.dimensions[dimension].size
        return self.chip_at(tuple(coords))

    def describe(self) -> str:
        dims = " x ".join(f"{d.name} {d.size} ({d.gb_per_s:g} GB/s, {d.latency_us:g} us)" for d in self.dimensions)
        return f"{self.kind}: {dims}"


def check_link(what: str, gb_per_s: float, latency_us: float) -> None:
    """A link needs a positive finite bandwidth and a non-negative finite latency."""
    if not (isinstance(gb_per_s, (int, float)) and 0 < gb_per_s < math.inf):
        raise DistributedError(f"{what} bandwidth: {gb_per_s!r} GB/s; a link needs a positive finite bandwidth")
    if not (isinstance(latency_us, (int, float)) and 0 <= latency_us < math.inf):
        raise DistributedError(f"{what} latency: {latency_us!r} us; a link needs a finite latency >= 0")


def square_factors(chips: int) -> tuple[int, int]:
    """(X, Y) with X * Y = chips, X <= Y, X as large as possible: the most nearly square 2-D torus."""
    x = max(d for d in range(1, math.isqrt(chips) + 1) if chips % d == 0)
    return x, chips // x


def build_topology(kind: str, chips: int, *, gb_per_s: float, latency_us: float,
                   torus_dims: tuple[int, int] | None = None, chips_per_node: int = 8,
                   inter_gb_per_s: float | None = None, inter_latency_us: float | None = None) -> Topology:
    """The topology ``kind`` of ``chips`` chips.  ``gb_per_s`` / ``latency_us``: the links of a ring or torus, or
    the intra-node ring of ``hierarchical``, whose switch ports are ``inter_gb_per_s`` / ``inter_latency_us``."""
    if kind not in TOPOLOGIES:
        raise DistributedError(f"unknown topology {kind!r}; known: {', '.join(TOPOLOGIES)}")
    if not (isinstance(chips, int) and MIN_CHIPS <= chips <= MAX_CHIPS):
        raise DistributedError(f"chips: {chips!r}; a data-parallel system has {MIN_CHIPS} to {MAX_CHIPS} chips")
    check_link(f"{kind} link" if kind != "hierarchical" else "intra-node link", gb_per_s, latency_us)
    if kind == "ring":
        return Topology(kind, (Dimension("ring", chips, gb_per_s, latency_us),))
    if kind == "torus2d":
        x, y = torus_dims if torus_dims is not None else square_factors(chips)
        if x < 1 or y < 1 or x * y != chips:
            raise DistributedError(f"torus dimensions {x}x{y} do not make {chips} chips; give X x Y = chips")
        return Topology(kind, (Dimension("x", x, gb_per_s, latency_us), Dimension("y", y, gb_per_s, latency_us)))
    inter_gb = gb_per_s if inter_gb_per_s is None else inter_gb_per_s
    inter_lat = latency_us if inter_latency_us is None else inter_latency_us
    check_link("inter-node (switch port)", inter_gb, inter_lat)
    if not (isinstance(chips_per_node, int) and 1 <= chips_per_node <= chips and chips % chips_per_node == 0):
        raise DistributedError(f"chips per node: {chips_per_node!r} does not divide {chips} chips into whole nodes")
    return Topology(kind, (Dimension("node", chips_per_node, gb_per_s, latency_us),
                           Dimension("switch", chips // chips_per_node, inter_gb, inter_lat)))
