"""``hfp8sim distributed [ARCH] [WORKLOAD] --chips N --topology ring|torus2d|hierarchical``: one chip's training
step on N chips, data parallel, under each gradient protocol; optionally the ASTRA-sim workload file."""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from .args import add_formats_option, load_format_files, name_list, positive_float, positive_int


def register(sub) -> None:
    p = sub.add_parser("distributed", help="data-parallel training step on N chips (ring, 2-D torus, hierarchical)",
                       description="Simulates one chip's training step of WORKLOAD on ARCH, then N chips "
                                   "training data parallel in SimPy: bucketed gradient collectives overlapped "
                                   "with the backward pass, per protocol (HFP8: reduce-scatter FP16 gradients, "
                                   "shard update, all-gather FP8 weights; or FP16 / FP32 ring all-reduce). "
                                   "See docs/distributed.md.")
    p.add_argument("arch", nargs="?", help="arch config file or shipped name (default: the default core)")
    p.add_argument("workload", nargs="?", help="workload file or shipped name (default: resnet50)")
    p.add_argument("--scheme", help="precision scheme of the chip (default: the arch config's)")
    p.add_argument("--chips", type=positive_int, default=64, help="chips N (2 to 4096; default 64)")
    p.add_argument("--topology", default="ring", help="ring, torus2d or hierarchical (default ring)")
    p.add_argument("--link-gb-per-s", type=float, default=25.0,
                   help="link bandwidth per direction, GB/s (ring, torus, or the intra-node ring; default 25)")
    p.add_argument("--link-latency-us", type=float, default=1.0, help="link latency, us (default 1)")
    p.add_argument("--torus-dims", help="XxY for torus2d (default: the most nearly square X x Y = N)")
    p.add_argument("--chips-per-node", type=positive_int, default=8, help="hierarchical: chips per node (default 8)")
    p.add_argument("--inter-gb-per-s", type=float, default=12.5,
                   help="hierarchical: a chip's switch port, GB/s (default 12.5, 100 Gb/s)")
    p.add_argument("--inter-latency-us", type=float, default=2.0, help="hierarchical: switch latency, us (default 2)")
    p.add_argument("--protocol", type=name_list, default=["hfp8", "fp16_allreduce", "fp32_allreduce"],
                   help="comma-separated protocols: hfp8, fp16_allreduce, fp32_allreduce (default: all three)")
    p.add_argument("--bucket-mb", type=positive_float, default=25.0, help="gradient bucket, MiB (default 25)")
    p.add_argument("--chunks", type=positive_int, default=4, help="chunks per collective (default 4)")
    p.add_argument("--model", default="reduced", help="reduced (one chip stands for all) or full (N <= 64)")
    p.add_argument("--csv", help="write the results (one row per protocol) to this CSV file")
    p.add_argument("--astra-out", help="write the first protocol's ASTRA-sim DATA workload file here")
    add_step_options(p)
    add_formats_option(p)
    p.set_defaults(func=run_distributed)


def add_step_options(p) -> None:
    """``--batch`` (global), ``--optimizer``, ``--update-rule``, ``--first-last-fp16``: what one chip's training
    step is."""
    from ..workloads.training_layers import OPTIMIZERS, UPDATE_RULES
    from .run import add_first_last_option

    p.add_argument("--batch", type=positive_int, default=None,
                   help="GLOBAL batch: samples per step over all chips, split evenly (it must divide by --chips); "
                        "default 32 per chip x chips (e.g. 2048 on 64 chips)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="momentum",
                   help="the optimizer whose states the update reads and writes (default momentum)")
    add_first_last_option(p)
    p.add_argument("--update-rule", choices=UPDATE_RULES, default=None,
                   help="the chip's weight update for every protocol (default: each protocol's own: hfp8 "
                        "round_off_residual, IBM's FP8 weights + FP16 residual; the all-reduces fp32_master); "
                        "one training step is simulated per distinct rule")


def _topology(args: argparse.Namespace):
    from ..distributed.topology import build_topology
    from ..errors import DistributedError

    dims = None
    if args.torus_dims:
        try:
            dims = tuple(int(part) for part in args.torus_dims.lower().split("x"))
        except ValueError:
            dims = ()
        if len(dims) != 2:
            raise DistributedError(f"--torus-dims {args.torus_dims!r}; give X x Y, e.g. 8x8")
    return build_topology(args.topology, args.chips, gb_per_s=args.link_gb_per_s, latency_us=args.link_latency_us,
                          torus_dims=dims, chips_per_node=args.chips_per_node,
                          inter_gb_per_s=args.inter_gb_per_s, inter_latency_us=args.inter_latency_us)


def run_distributed(args: argparse.Namespace) -> int:
    from ..distributed.astra import astra_workload_text
    from ..distributed.profile import protocol_named
    from ..distributed.step import simulate_step
    from ..errors import DistributedError

    from ..io.outputs import check_output_file, write_file_atomically

    load_format_files(args.formats)
    topology = _topology(args)  # every bad network figure fails here, before the chip is simulated
    for option, target in (("--csv", args.csv), ("--astra-out", args.astra_out)):
        if target:
            check_output_file(target, option)  # and so does an output path that cannot be written
    protocols = [protocol_named(name) for name in args.protocol]
    if args.model not in ("reduced", "full"):
        raise DistributedError(f"--model {args.model!r}; known: reduced, full")
    profiles = _profiles(args)
    results = [simulate_step(profiles.for_protocol(protocol, args.update_rule), topology, protocol,
                             bucket_bytes=args.bucket_mb * 2**20, chunks=args.chunks, model=args.model)
               for protocol in protocols]
    for rule, profile in profiles.by_rule.items():
        print(f"{profile.workload} ({rule}): {len(profile.layers)} layers, {profile.param_elements:,} parameters, "
              f"one chip's step {profile.seconds(sum(l.cycles for l in profile.layers)) * 1e3:.3f} ms at batch "
              f"{profile.per_chip_batch} (global {args.batch}); {topology.describe()}", file=sys.stderr)
    _print_results(results)
    if args.csv:
        _write_csv(Path(args.csv), [r.row() for r in results])
    if args.astra_out:
        profile = profiles.for_protocol(protocols[0], args.update_rule)
        text = astra_workload_text(profile, protocols[0], topology.chips)
        write_file_atomically(args.astra_out, lambda path: path.write_text(text))
        print(f"wrote {args.astra_out} (ASTRA-sim 1.0 DATA workload, {protocols[0].name}, cycles at "
              f"{profile.clock_hz / 1e9:g} GHz)")
    return 0


def _profiles(args: argparse.Namespace):
    """One chip's training step at the per-chip batch, simulated once per update rule the protocols need."""
    from ..config.arch import resolve_arch
    from ..step_profiles import DEFAULT_PER_CHIP_BATCH, StepProfiles
    from ..workloads import keep_first_last, load_workload_file, workload_file_kind
    from ..workloads.training_step import per_chip_batch

    if args.batch is None:
        args.batch = DEFAULT_PER_CHIP_BATCH * args.chips
    per_chip = per_chip_batch(args.batch, args.chips)  # a batch that does not divide fails here, in one line
    arch = resolve_arch(args.arch)
    scheme = arch.resolve_scheme(args.scheme).name if args.scheme else None
    path, _kind = workload_file_kind(args.workload or "resnet50")

    def announce(rule: str) -> None:
        print(f"  simulating one chip's training step ({rule}, batch {per_chip})", file=sys.stderr)

    network = load_workload_file(path)
    if args.first_last_fp16:
        network = keep_first_last(network, "fp16")
    return StepProfiles(arch, network, per_chip, optimizer=args.optimizer, scheme=scheme, on_simulate=announce)


def _print_results(results) -> None:
    print(f"{'protocol':<16}{'step ms':>10}{'compute':>10}{'exposed':>10}{'overlap':>10}{'B/param':>9}")
    for r in results:
        print(f"{r.protocol:<16}{r.step_seconds * 1e3:>10.3f}{r.compute_seconds * 1e3:>10.3f}"
              f"{r.exposed_comm_seconds * 1e3:>10.3f}{r.overlapped_comm_seconds * 1e3:>10.3f}"
              f"{r.wire_bytes_per_param:>9.3f}")


def _write_csv(path: Path, rows: list[dict]) -> None:
    from ..io.outputs import write_file_atomically

    def write(target: Path) -> None:
        with target.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    write_file_atomically(path, write)
    print(f"wrote {path}")
