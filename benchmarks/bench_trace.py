"""Bit-accurate layer traces of the two real networks: wall time and G MAC/s, against the same forward in
numpy float32 (``Float32Ops``) measured in the same run.

    python benchmarks/bench_trace.py [--arch ARCH] [--skip-minilm] [--skip-efficientnet]

- MiniLM (all-MiniLM-L6-v2): 8 real sentences, each padded or truncated to exactly 128 tokens (11.5 G MACs);
- EfficientNet-Lite0: one 224x224 photo (0.385 G MACs).

Each is traced twice: on the arch as configured (the default core adds two FP8 products per PE step, FMMA pair
mode, which runs on the datapath's exact kernel), and with one product per step (its vectorised float32
kernel).  The trace time includes everything ``hfp8sim trace`` does: encoding, the datapath, the float32
reference product and statistics of every layer.
"""

from __future__ import annotations

import argparse
import time

import numba

from hfp8sim.networks import Float32Ops, load_efficientnet_lite0, load_minilm, preprocess, real_photos, real_sentences
from hfp8sim.traces.trace import minilm_token_batch, one_product_per_step, resolve_arch, trace_workload


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench(name: str, workload: str, float32_forward, arches, **kwargs) -> None:
    t_float = best_time(float32_forward, 3)
    for arch in arches:
        start = time.perf_counter()
        trace = trace_workload(workload, arch=arch, **kwargs)
        seconds = time.perf_counter() - start
        macs = trace.document["totals"]["macs"]
        rate = macs / seconds
        print(f"  {name:<18} {trace['arch']['arithmetic_8bit']:<45} {seconds:8.1f} s  {rate / 1e9:7.3f} G MAC/s  "
              f"({macs / 1e9:.3f} G MACs)  float32 forward {t_float * 1e3:7.1f} ms "
              f"({macs / t_float / 1e9:6.1f} G MAC/s)  -> trace/float32 time {seconds / t_float:7.0f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", help="arch config (default: arch_configs/default.yaml)")
    ap.add_argument("--skip-minilm", action="store_true")
    ap.add_argument("--skip-efficientnet", action="store_true")
    ap.add_argument("--only-configured", action="store_true", help="skip the one-product-per-step run")
    args = ap.parse_args()
    arch = resolve_arch(args.arch)
    arches = [arch] if args.only_configured else [arch, one_product_per_step(arch)]
    print(f"bit-accurate traces on {arch.name}; numba threads {numba.get_num_threads()}")
    trace_workload("tiny_cnn", arch=arch)  # compile / load the kernels outside the timings
    if not args.skip_efficientnet:
        model = load_efficientnet_lite0()
        image = preprocess(next(iter(real_photos(["chelsea"]).values())))[None]
        bench("EfficientNet-Lite0", "efficientnet_lite0", lambda: model.forward(image, Float32Ops()), arches,
              images=1)
    if not args.skip_minilm:
        model = load_minilm()
        batch = minilm_token_batch(model, real_sentences(8, seed=0))
        bench("MiniLM 8x128", "minilm", lambda: model.forward(batch, Float32Ops()), arches, sentences=8)


if __name__ == "__main__":
    main()
