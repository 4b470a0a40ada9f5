"""Export a training step in ASTRA-sim's text workload format (data parallel), and read that format back.

The format (ASTRA-sim 1.0; ASTRA-sim 2.0 reads it through Chakra's ``text_converter``, which turns it into
execution traces): whitespace-separated fields.

    line 1      the parallelism policy: DATA
    line 2      the number of layers L
    L lines     name  reserved  fwd_compute fwd_comm_type fwd_comm_size
                      ig_compute  ig_comm_type  ig_comm_size
                      wg_compute  wg_comm_type  wg_comm_size  update_time

Compute and update times are cycles, sizes bytes; a comm type is NONE, ALLREDUCE, ALLGATHER, REDUCESCATTER,
ALLTOALL or ALLREDUCEALLTOALL; the reserved field is -1 in every published example.  Under DATA only the
weight-gradient collective is issued on the network (ASTRA-sim 1.0 gives forward and input-gradient
collectives no dimension; Chakra's converter reads only the weight-gradient one).

hfp8sim writes one line per profile layer, its cycles rounded to integers:

- all-reduce protocols: ``wg`` = ALLREDUCE of the layer's gradient bytes, update = the layer's update cycles;
- HFP8: ``wg`` = REDUCESCATTER of the gradient bytes, update = the shard's update cycles (update / N), and
  the FP8 weight all-gather in the ``fwd`` column (ALLGATHER of the FP8 weight bytes), where the step needs
  it; DATA does not put forward collectives on the network, so ASTRA-sim times only the reduce-scatter.

Layers without parameters communicate nothing (NONE 0).  See docs/distributed.md.
"""

from __future__ import annotations

import dataclasses

from ..errors import DistributedError
from .profile import Protocol, StepProfile

POLICY = "DATA"
COMM_TYPES = ("NONE", "ALLREDUCE", "ALLGATHER", "REDUCESCATTER", "ALLTOALL", "ALLREDUCEALLTOALL")
FIELDS_PER_LAYER = 12


@dataclasses.dataclass(frozen=True)
class AstraLayer:
    name: str
    reserved: int
    fwd_compute: int
    fwd_comm: tuple[str, int]
    ig_compute: int
    ig_comm: tuple[str, int]
    wg_compute: int
    wg_comm: tuple[str, int]
    update: int

    def line(self) -> str:
        fields = (self.name, self.reserved, self.fwd_compute, *self.fwd_comm, self.ig_compute, *self.ig_comm,
                  self.wg_compute, *self.wg_comm, self.update)
        return "\t".join(str(f) for f in fields)


def astra_layers(profile: StepProfile, protocol: Protocol, chips: int) -> tuple[AstraLayer, ...]:
    layers = []
    for layer in profile.layers:
        params = layer.param_elements
        gradient = ("NONE", 0)
        gather = ("NONE", 0)
        update = layer.update_cycles
        if params:
            gradient = ("REDUCESCATTER" if protocol.sharded else "ALLREDUCE", params * protocol.gradient_bytes)
            if protocol.sharded:
                gather = ("ALLGATHER", params * protocol.weight_bytes)
                update = layer.update_cycles / chips
        name = "".join(ch if ch.isprintable() and not ch.isspace() else "_" for ch in layer.name) or "layer"
        layers.append(AstraLayer(name, -1, round(layer.forward_cycles), gather, round(layer.backward_data_cycles),
                                 ("NONE", 0), round(layer.backward_weight_cycles), gradient, round(update)))
    return tuple(layers)


def astra_workload_text(profile: StepProfile, protocol: Protocol, chips: int) -> str:
    layers = astra_layers(profile, protocol, chips)
    return "\n".join([POLICY, str(len(layers)), *(layer.line() for layer in layers)]) + "\n"


def _int_field(text: str, what: str, where: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise DistributedError(f"{where}: {what} {text!r} is not an integer") from None
    if value < low:
        raise DistributedError(f"{where}: {what} {value} is below {low}")
    return value


def _comm(kind: str, size: str, what: str, where: str) -> tuple[str, int]:
    if kind not in COMM_TYPES:
        raise DistributedError(f"{where}: {what} type {kind!r}; known: {', '.join(COMM_TYPES)}")
    return kind, _int_field(size, f"{what} size", where, 0)


def _layer(line: str, where: str) -> AstraLayer:
    fields = line.split()
    if len(fields) != FIELDS_PER_LAYER:
        raise DistributedError(f"{where}: {len(fields)} fields; a DATA layer line has {FIELDS_PER_LAYER}")
    return AstraLayer(fields[0], _int_field(fields[1], "reserved", where, -1),
                      _int_field(fields[2], "forward compute", where, 0), _comm(fields[3], fields[4], "forward comm", where),
                      _int_field(fields[5], "input-grad compute", where, 0),
                      _comm(fields[6], fields[7], "input-grad comm", where),
                      _int_field(fields[8], "weight-grad compute", where, 0),
                      _comm(fields[9], fields[10], "weight-grad comm", where),
                      _int_field(fields[11], "update time", where, 0))


def parse_astra_workload(text: str, source: str = "workload") -> tuple[AstraLayer, ...]:
    """The layers of a DATA workload file, checked line by line against the format (both readers' rules:
    ASTRA-sim 1.0's token stream and Chakra's one layer per line, so no blank lines among the layers)."""
    lines = text.splitlines()
    if len(lines) < 2 or not lines[0].split() or lines[0].split()[0] != POLICY:
        raise DistributedError(f"{source}: line 1 must start with the policy {POLICY}")
    count = _int_field(lines[1].strip(), "layer count", f"{source}: line 2", 1)
    body = lines[2:]
    if len(body) != count:
        raise DistributedError(f"{source}: line 2 says {count} layers, the file has {len(body)} layer lines")
    return tuple(_layer(line, f"{source}: line {number}") for number, line in enumerate(body, start=3))
