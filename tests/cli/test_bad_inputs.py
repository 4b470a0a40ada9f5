"""The bad-input corpus: hostile or mistaken inputs through the real CLI, each in its own process with 2 GB of
address space and 30 s.  Every case must exit 2 with exactly one line on stderr that names the file, key or
layer at fault (and the limit, where one applies), with no traceback, before any simulation starts.

These are the cases of issue 12 that used to grow memory without bound, crash with a traceback, write
results before failing, or be accepted silently.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 2 * 1024**3
TIMEOUT_S = 30

DEFAULT_ARCH = yaml.safe_load((ROOT / "arch_configs" / "default.yaml").read_text())


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def hfp8sim(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", "import sys; from hfp8sim.cli import main; sys.exit(main(sys.argv[1:]))",
                           *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S,
                          preexec_fn=_limit_memory, check=False)


def _matmul(M: int, N: int, K: int) -> str:
    return f"name: huge\nlayers:\n  - {{name: big_gemm, op: matmul, M: {M}, N: {N}, K: {K}}}\n"


def _arch_with(**changes) -> str:
    data = yaml.safe_load(yaml.safe_dump(DEFAULT_ARCH))
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = data
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return yaml.safe_dump(data)


def _alias_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 10):
        ref = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([ref] * 9)}]")
    return "\n".join(lines) + "\n" + yaml.safe_dump(DEFAULT_ARCH)


# file name -> content, written into the case's folder
FILES = {
    "gemm_1e7.yaml": _matmul(10**7, 10**7, 10**7),
    "gemm_1e12.yaml": _matmul(10**12, 10**12, 10**12),
    "gemm_2e70.yaml": _matmul(2**70, 16, 16),
    "gemm_tall.yaml": _matmul(10**12, 8, 1),  # within the MAC limit, far over the tile limit on 8x8
    "gemm_wide.yaml": _matmul(1, 10**6, 10**6),  # within the MAC limit, a 10^12-element weight in a trace
    "repeat.yaml": "name: r\nlayers:\n  - repeat: 100000000\n    layers:\n"
                   "      - {name: 'fc{i}', op: matmul, M: 1, N: 16, K: 16}\n",
    "bomb.yaml": _alias_bomb(),
    "deep.yaml": "array: " + "[" * 5000 + "]" * 5000 + "\n",
    "bw_inf.yaml": _arch_with(dram__bw_gb_per_s=None, dram__bw_bytes_per_cycle=float("inf")),
    "bw_tiny.yaml": _arch_with(dram__bw_gb_per_s=None, dram__bw_bytes_per_cycle=1e-300),
    "latency.yaml": _arch_with(dram__latency_cycles=10**30),
    "clock.yaml": _arch_with(clock_ghz=1000.0),
    "a_file": "not a folder\n",
    "not_results/notes.txt": "a user's own file\n",
    "mixed/hfp8/summary.json": '{"run_id": "run-aaaa"}\n',
    "mixed/hfp8/layers.csv": "name,run_id\nfc,run-aaaa\n",
    "mixed/fp16/summary.json": '{"run_id": "run-bbbb"}\n',
    "mixed/fp16/layers.csv": "name,run_id\nfc,run-bbbb\n",
    "a_folder/.keep": "",
}

# (id, argv, fragments the one line must contain)
CASES = [
    ("run-gemm-1e7", ["run", "array_8x8", "gemm_1e7.yaml"], ["gemm_1e7.yaml", "big_gemm", "MAX_GEMM_MACS"]),
    ("run-gemm-1e12", ["run", "array_8x8", "gemm_1e12.yaml"], ["gemm_1e12.yaml", "big_gemm", "MAX_GEMM_MACS"]),
    ("run-gemm-2e70", ["run", "array_8x8", "gemm_2e70.yaml"], ["gemm_2e70.yaml", "big_gemm", "MAX_GEMM_MACS"]),
    ("validate-gemm-1e7", ["validate", "gemm_1e7.yaml"], ["gemm_1e7.yaml", "big_gemm", "MAX_GEMM_MACS"]),
    ("trace-gemm-1e7", ["trace", "gemm_1e7.yaml", "--out", "t.json"], ["gemm_1e7.yaml", "big_gemm"]),
    ("run-tiles", ["run", "array_8x8", "gemm_tall.yaml"], ["big_gemm", "MAX_TILES_PER_LAYER"]),
    ("trace-tensor", ["trace", "gemm_wide.yaml", "--out", "t.json"],
     ["gemm_wide.yaml", "big_gemm", "MAX_TRACE_TENSOR_ELEMENTS"]),
    ("run-repeat", ["run", "default", "repeat.yaml"], ["repeat.yaml", "layers[0].repeat", "MAX_LAYERS"]),
    ("validate-repeat", ["validate", "repeat.yaml"], ["repeat.yaml", "layers[0].repeat", "MAX_LAYERS"]),
    ("sweep-bomb", ["sweep", "bomb.yaml", "tiny_mlp", "--out", "sw", "--jobs", "1"], ["bomb.yaml", "MAX_YAML_NODES"]),
    ("run-bomb", ["run", "bomb.yaml", "tiny_mlp"], ["bomb.yaml", "MAX_YAML_NODES"]),
    ("validate-deep", ["validate", "deep.yaml"], ["deep.yaml", "MAX_YAML_DEPTH"]),
    ("sweep-deep", ["sweep", "deep.yaml", "tiny_mlp", "--out", "sw"], ["deep.yaml", "MAX_YAML_DEPTH"]),
    ("formats-e0m3", ["formats", "e0m3"], ["e0m3", "exp_bits must be 1..8"]),
    ("run-bw-inf", ["run", "bw_inf.yaml", "tiny_mlp"], ["bw_inf.yaml", "dram.bw_bytes_per_cycle", "inf"]),
    ("run-bw-tiny", ["run", "bw_tiny.yaml", "tiny_mlp"], ["bw_tiny.yaml", "dram.bw_bytes_per_cycle", "1e-06"]),
    ("validate-latency", ["validate", "latency.yaml"], ["latency.yaml", "dram.latency_cycles", "1e+09"]),
    ("validate-clock", ["validate", "clock.yaml"], ["clock.yaml", "clock_ghz", "100"]),
    ("sweep-bw-inf", ["sweep", "bw_inf.yaml", "tiny_mlp", "--out", "sw"], ["bw_inf.yaml", "dram.bw_bytes_per_cycle"]),
    ("compare-empty", ["run", "default", "tiny_mlp", "--compare", ""], ["--compare"]),
    ("layers-negative", ["run", "default", "tiny_mlp", "--layers", "-5"], ["--layers", "-5"]),
    ("out-is-file", ["run", "default", "tiny_mlp", "--out", "a_file"], ["--out a_file", "is a file"]),
    ("out-under-proc", ["run", "default", "tiny_mlp", "--out", "/proc/hfp8sim_out"], ["/proc/hfp8sim_out"]),
    ("out-not-results", ["run", "default", "tiny_mlp", "--out", "not_results"], ["--out not_results"]),
    ("timeline-folder", ["run", "default", "tiny_mlp", "--timeline", "a_folder"], ["--timeline a_folder", "folder"]),
    ("compare-timeline-bad", ["run", "default", "tiny_mlp", "--compare", "hfp8,fp16", "--timeline", "/proc/tl.json"],
     ["--timeline", "/proc"]),
    ("sweep-out-file", ["sweep", "default", "tiny_mlp", "--out", "a_file"], ["--out a_file", "is a file"]),
    ("trace-out-folder", ["trace", "tiny_mlp", "--out", "a_folder"], ["--out a_folder", "folder"]),
    ("plot-mixed-runs", ["plot", "mixed"], ["mixed/hfp8/summary.json", "mixed/fp16/summary.json", "different runs"]),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad_inputs")
    for name, text in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


@pytest.mark.parametrize("argv, fragments", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_bad_input_is_refused_in_one_located_line(corpus, argv, fragments):
    proc = hfp8sim(argv, corpus)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert len(lines) == 1, proc.stderr  # one line: also proves that nothing was simulated first
    for fragment in fragments:
        assert fragment in lines[0]
    assert not (corpus / "out").exists(), "nothing is written by a refused command"


def test_an_unwritable_output_folder_is_refused_before_running(corpus, monkeypatch, capsys):
    """The folder's permissions as the OS reports them to a user who may not write there (``os.access``
    answers for the calling user: root may write anywhere, so the answer is stood in for, not the check)."""
    from hfp8sim.cli import main
    from hfp8sim.io import outputs

    locked = corpus / "locked"
    locked.mkdir(exist_ok=True)
    real_access = os.access

    def access(path, mode):
        return False if Path(path).resolve() == locked.resolve() else real_access(path, mode)

    monkeypatch.setattr(outputs.os, "access", access)
    monkeypatch.chdir(corpus)
    assert main(["run", "default", "tiny_mlp", "--out", "locked/run"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hfp8sim: error: --out locked/run: cannot write in ")
    assert "permission denied" in lines[0] and not (locked / "run").exists()