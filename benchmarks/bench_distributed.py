"""The multi-chip model's cost: 1,024 chips x one ResNet-50 training step in the reduced SimPy model, CPU seconds,
and the full model (every chip simulated) against the reduced one at 16 chips, measured in the same run.

    python benchmarks/bench_distributed.py [--chips 1024] [--check-chips 16] [--repeats 3]

Target (issue 14): 1,024 chips x ResNet-50 step <= 10 s of CPU, for every topology and protocol.  The step
profile is the ResNet-50 training step of ``hfp8sim distributed`` on the default core at 32 samples per chip
(one training-step run per update rule, simulated before the clock starts).  CPU time (time.process_time), the best of ``--repeats``; the machine is shared,
so the full-vs-reduced figure is a ratio of two measurements taken in turns.
"""

from __future__ import annotations

import argparse
import time

from hfp8sim.config.arch import resolve_arch
from hfp8sim.distributed.profile import PROTOCOLS, protocol_named
from hfp8sim.distributed.step import simulate_step
from hfp8sim.distributed.topology import TOPOLOGIES, build_topology
from hfp8sim.step_profiles import StepProfiles
from hfp8sim.workloads import load_workload_file, workload_file_kind

TARGET_CPU_S = 10.0


def _profiles() -> StepProfiles:
    network = load_workload_file(workload_file_kind("resnet50")[0])
    profiles = StepProfiles(resolve_arch(None), network, 32)
    for name in PROTOCOLS:
        profiles.for_protocol(protocol_named(name))
    return profiles


def _topology(kind: str, chips: int):
    return build_topology(kind, chips, gb_per_s=25.0, latency_us=1.0, chips_per_node=min(8, chips),
                          inter_gb_per_s=12.5, inter_latency_us=2.0)


def _cpu(profile, topology, protocol, model: str, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.process_time()
        result = simulate_step(profile, topology, protocol, model=model)
        best = min(best, time.process_time() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=1024)
    parser.add_argument("--check-chips", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    profiles = _profiles()
    profile = profiles.for_protocol(protocol_named("hfp8"))
    print(f"ResNet-50 step profile: {len(profile.layers)} layers, {profile.param_elements:,} parameters")
    worst = 0.0
    for kind in TOPOLOGIES:
        for name in PROTOCOLS:
            protocol = protocol_named(name)
            cpu, result = _cpu(profiles.for_protocol(protocol), _topology(kind, args.chips), protocol, "reduced",
                               args.repeats)
            worst = max(worst, cpu)
            print(f"{args.chips} chips {kind:<13} {name:<15} reduced: {cpu:6.3f} s CPU, {result.link_transfers:>7} "
                  f"link jobs, step {result.step_seconds * 1e3:8.3f} ms")
    verdict = "meets" if worst <= TARGET_CPU_S else "MISSES"
    print(f"worst {worst:.3f} s CPU: {verdict} the {TARGET_CPU_S:g} s target")
    check = _topology("ring", args.check_chips)
    reduced_cpu, reduced = _cpu(profile, check, protocol_named("hfp8"), "reduced", args.repeats)
    full_cpu, full = _cpu(profile, check, protocol_named("hfp8"), "full", args.repeats)
    same = full.step_seconds == reduced.step_seconds and full.bytes_sent_per_chip == reduced.bytes_sent_per_chip
    print(f"{args.check_chips} chips ring hfp8: full {full_cpu:.3f} s CPU / reduced {reduced_cpu:.3f} s CPU = "
          f"{full_cpu / reduced_cpu:.1f}x; same step time and bytes: {same}")


if __name__ == "__main__":
    main()
