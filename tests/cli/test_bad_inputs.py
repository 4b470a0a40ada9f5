"""The bad-input corpus: hostile or mistaken inputs through the real CLI, each in its own process with 2 GB of
address space and 30 s.  A refused case must exit 2 with exactly one line on stderr that names the file, key
or layer at fault (and the limit, where one applies), with no traceback, before any simulation starts and
without writing anything.  LEGITIMATE cases (huge work that may be answered, the first hour's commands, ONNX
files) must exit 0 with an answer checked against an independent figure.

Issue 12's table, row by row, and where each row is run (all here, in a subprocess with the limits):

* M=N=K=10^7, 10^12, M=2^70 matmul: run (``run-gemm-*``: refused naming the layer and limit, or answered with
  every MAC), validate and trace (``validate-gemm-*``, ``trace-gemm-*``); tiles and trace tensors too.
* ``repeat: 100000000``: ``run-repeat``, ``validate-repeat``, ``trace-repeat``.
* YAML alias bomb: ``run-bomb``, ``sweep-bomb``, ``validate-bomb``; deep nesting: ``validate-deep``,
  ``sweep-deep``, ``run-deep``.
* ``formats e0m3``: ``formats-e0m3``.
* bad output paths, each checked before the work: ``--out`` a file, under a file, under /proc (``out-*``;
  "unwritable" is a parent that is a file or /proc, which refuse root too, and
  ``test_an_unwritable_output_folder_is_refused_before_running`` for permissions); ``--timeline`` a folder,
  under a file, under /proc, also with ``--compare`` (``timeline-*``, ``compare-timeline-bad``); ``sweep --out``
  (``sweep-out-*``); ``trace --out`` (``trace-out-*``); the studies' ``--out`` (``train-out-*``,
  ``train-report-out-*``, ``numerics-out-*``, ``fidelity-out-*``, ``chip-report-out-*``, ``report-out-*``,
  ``plot-out-*``).
* two runs into one ``--out``, ``plot`` of a mixed folder: ``plot-mixed-runs`` here;
  ``tests/cli/test_run_kill.py`` kills ``run --out D`` with SIGKILL and checks D holds one complete run.
* a trace's zero fraction > 1 (``trace-zeros-over-1``, and edited without a new digest
  ``trace-zeros-edited``); a trace from another arch or scheme (``trace-other-arch``, ``trace-other-scheme``;
  ``--retime`` answers: ``retime-other-arch``); M and macs edited (``trace-edited-m-macs``,
  ``trace-macs-inconsistent``, ``validate-edited-trace``).
* ONNX on run and validate: ``run-onnx``, ``validate-onnx`` (exit 0, the API's MACs), ``run-onnx-corrupt``,
  ``validate-onnx-corrupt``, ``run-onnx-unsupported``.
* a sweep point edited to ``cycles: 1``, then ``--resume``: ``test_an_edited_sweep_point_is_recomputed_on_resume``
  (exit 0, a line naming the point, the true cycles back in points.csv).
* DRAM bandwidth inf and 1e-300, latency 1e30, clock 1000 GHz, ``--compare ""``, ``--layers -5``:
  ``run-bw-*``, ``validate-bw-inf``, ``sweep-bw-inf``, ``*-latency``, ``validate-clock``, ``compare-*``,
  ``layers-*``.
* the README's ``run tpu_v1_like bert_base_seq128 --compare hfp8,fp16,fp32``: ``readme-bert-fp32`` (refused
  before any scheme runs, naming fp32 and the layer; nothing written).
* the first hour: ``validate-default-resnet50``, ``--scheme my_hfp8`` from ``--formats FILE`` for run, sweep
  and trace (``formats-scheme-*``), and without the file (``scheme-without-library``).
* training: unknown optimizer, update rule, scheme, a bad lr, epochs, model/dataset pair (``train-*``); a
  scheme without a backward format (a format library may define an inference-only scheme) is refused by a
  training workload and by ``train`` (``*-no-backward``).
* cases handled before issue 12 (a missing file, a misspelt name or key, an unknown scheme or --set key):
  ``already-*``.
"""

from __future__ import annotations

import csv
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MEMORY_LIMIT = 2 * 1024**3
TIMEOUT_S = 30

LIGHT_ONNX = Path(__import__("onnx").__file__).parent / "backend" / "test" / "data" / "light"
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
    "my_formats.yaml": "schemes:\n  my_hfp8:\n    forward: float8_e4m3b11fnuz\n    backward: float8_e5m2\n"
                       "    accumulate: dlfloat16\n",
    "no_backward.yaml": "schemes:\n  fwd_only:\n    forward: float8_e4m3b11fnuz\n    accumulate: dlfloat16\n",
    "typo_key.yaml": _arch_with(dram__bandwith=12.0),
    "corrupt.onnx": "\x08\x07\x12garbage",
}
LIMIT_NAME = "hfp8sim.limits.MAX_"
OUT_UNDER_FILE = "is a file, not a folder"

# (id, argv, fragments the one line must contain)
CASES = [
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
    # the rest of issue 12's table
    ("validate-gemm-1e12", ["validate", "gemm_1e12.yaml"], ["gemm_1e12.yaml", "big_gemm", "MAX_GEMM_MACS"]),
    ("validate-gemm-2e70", ["validate", "gemm_2e70.yaml"], ["gemm_2e70.yaml", "big_gemm", "MAX_GEMM_MACS"]),
    ("trace-gemm-1e12", ["trace", "gemm_1e12.yaml", "--out", "t.json"], ["gemm_1e12.yaml", "big_gemm", LIMIT_NAME]),
    ("trace-gemm-2e70", ["trace", "gemm_2e70.yaml", "--out", "t.json"], ["gemm_2e70.yaml", "big_gemm", LIMIT_NAME]),
    ("trace-repeat", ["trace", "repeat.yaml", "--out", "t.json"], ["repeat.yaml", "layers[0].repeat", "MAX_LAYERS"]),
    ("validate-bomb", ["validate", "bomb.yaml"], ["bomb.yaml", "MAX_YAML_NODES"]),
    ("run-deep", ["run", "deep.yaml", "tiny_mlp"], ["deep.yaml", "MAX_YAML_DEPTH"]),
    ("run-latency", ["run", "latency.yaml", "tiny_mlp"], ["latency.yaml", "dram.latency_cycles", "1e+09"]),
    ("validate-bw-inf", ["validate", "bw_inf.yaml"], ["bw_inf.yaml", "dram.bw_bytes_per_cycle", "inf"]),
    ("compare-comma", ["run", "default", "tiny_mlp", "--compare", ","], ["--compare", "','"]),
    ("layers-text", ["run", "default", "tiny_mlp", "--layers", "all"], ["--layers", "'all'"]),
    ("out-under-file", ["run", "default", "tiny_mlp", "--out", "a_file/run"], ["--out a_file/run", OUT_UNDER_FILE]),
    ("timeline-under-file", ["run", "default", "tiny_mlp", "--timeline", "a_file/tl.json"],
     ["--timeline a_file/tl.json", OUT_UNDER_FILE]),
    ("timeline-under-proc", ["run", "default", "tiny_mlp", "--timeline", "/proc/tl.json"], ["--timeline /proc/tl.json"]),
    ("sweep-out-under-file", ["sweep", "default", "tiny_mlp", "--out", "a_file/sw"], ["--out a_file/sw", OUT_UNDER_FILE]),
    ("sweep-out-under-proc", ["sweep", "default", "tiny_mlp", "--out", "/proc/sw"], ["--out /proc/sw", "/proc"]),
    ("trace-out-under-file", ["trace", "tiny_mlp", "--out", "a_file/t.json"], ["--out a_file/t.json", OUT_UNDER_FILE]),
    ("trace-out-under-proc", ["trace", "tiny_mlp", "--out", "/proc/t.json"], ["--out /proc/t.json"]),
    ("train-out-file", ["train", "--out", "a_file"], ["--out a_file", "is a file"]),
    ("train-out-under-proc", ["train", "--out", "/proc/tr"], ["--out /proc/tr"]),
    ("train-report-out-under-file", ["train-report", "--quick", "--out", "a_file/tr"], ["--out a_file/tr", OUT_UNDER_FILE]),
    ("numerics-out-file", ["numerics", "--out", "a_file"], ["--out a_file", "is a file"]),
    ("fidelity-out-under-proc", ["fidelity", "--out", "/proc/f"], ["--out /proc/f"]),
    ("chip-report-out-under-file", ["chip-report", "--out", "a_file/c"], ["--out a_file/c", OUT_UNDER_FILE]),
    ("report-out-file", ["report", "--out", "a_file"], ["--out a_file", "is a file"]),
    ("plot-out-under-file", ["plot", "mixed", "--out", "a_file/p"], ["--out a_file/p", OUT_UNDER_FILE]),
    ("trace-zeros-over-1", ["run", "default", "zeros.json"], ["zeros.json", "layers[0] (fc1)", "zero_mac_fraction"]),
    ("trace-zeros-edited", ["run", "default", "zeros_edited.json"],
     ["zeros_edited.json", "layers[0] (fc1)", "changed after it was traced"]),
    ("trace-other-arch", ["run", "eyeriss_like", "trace.json"], ["trace.json", "traced on hfp8_core", "eyeriss_like",
                                                                  "--retime"]),
    ("trace-other-scheme", ["run", "default", "trace.json", "--scheme", "fp16"],
     ["trace.json", "traced with scheme hfp8, not fp16"]),
    ("trace-edited-m-macs", ["run", "default", "edited.json"],
     ["edited.json", "layers[0] (fc1)", "changed after it was traced"]),
    ("trace-macs-inconsistent", ["run", "default", "macs.json"], ["macs.json", "layers[0] (fc1)", "macs is"]),
    ("validate-edited-trace", ["validate", "edited.json"], ["edited.json", "layers[0] (fc1)"]),
    ("run-onnx-corrupt", ["run", "default", "corrupt.onnx"], ["corrupt.onnx"]),
    ("validate-onnx-corrupt", ["validate", "corrupt.onnx"], ["corrupt.onnx"]),
    ("run-onnx-unsupported", ["run", "array_8x8", "einsum.onnx"], ["einsum.onnx", "Einsum"]),
    ("readme-bert-fp32", ["run", "tpu_v1_like", "bert_base_seq128", "--compare", "hfp8,fp16,fp32", "--out", "out/bert"],
     ["in fp32", "bert_base_seq128", "layer.0.attention.query", "smallest tile"]),
    ("scheme-without-library", ["run", "default", "tiny_mlp", "--scheme", "my_hfp8"], ["unknown scheme 'my_hfp8'"]),
    ("train-optimizer", ["train", "--optimizer", "lamb"], ["--optimizer", "'lamb'"]),
    ("train-update-rule", ["train", "--update-rule", "bogus"], ["weight-update rule 'bogus'", "fp32_master"]),
    ("train-scheme", ["train", "--scheme", "hfp9"], ["unknown scheme 'hfp9'"]),
    ("train-lr", ["train", "--lr", "nan"], ["lr", "nan"]),
    ("train-epochs", ["train", "--epochs", "0"], ["epochs", "0"]),
    ("train-model-dataset", ["train", "--model", "transformer", "--dataset", "digits"], ["transformer", "digits"]),
    ("run-no-backward", ["run", "default", "tiny_mlp", "--formats", "no_backward.yaml", "--scheme", "fwd_only"],
     ["tiny_mlp", "scheme fwd_only has no backward format"]),
    ("train-no-backward", ["train", "--formats", "no_backward.yaml", "--scheme", "fwd_only", "--model", "mlp",
                           "--dataset", "digits"], ["scheme fwd_only has no backward format", "backward:"]),
    ("already-missing-workload", ["run", "default", "no_such.yaml"], ["no_such.yaml"]),
    ("already-misspelt-arch", ["run", "defualt", "tiny_mlp"], ["defualt"]),
    ("already-typo-key", ["validate", "typo_key.yaml"], ["typo_key.yaml", "bandwith"]),
    ("already-unknown-scheme", ["run", "default", "tiny_mlp", "--scheme", "hfp9"], ["unknown scheme 'hfp9'"]),
    ("already-unknown-set-key", ["sweep", "default", "tiny_mlp", "--set", "dram.bandwith=1,2", "--out", "sw"],
     ["dram.bandwith", "dram.bw_bytes_per_cycle"]),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bad_inputs")
    for name, text in FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    _write_traces(folder)
    _write_onnx(folder)
    return folder


def _write_traces(folder: Path) -> None:
    """A real trace of tiny_mlp on the default core, and copies edited as a user might."""
    from hfp8sim.traces.trace import trace_workload
    from hfp8sim.traces.schema import with_digest

    good = trace_workload("tiny_mlp", max_macs=10**5).write(folder / "trace.json")
    text = good.read_text()
    edits = {  # file -> (edit of layer 0, re-digest so that the field check, not the digest, must catch it)
        "zeros.json": (lambda layer: layer.update(zero_mac_fraction=1.5), True),
        "zeros_edited.json": (lambda layer: layer.update(zero_mac_fraction=1.5), False),
        "edited.json": (lambda layer: (layer["gemm"].update(M=layer["gemm"]["M"] * 2),
                                       layer.update(macs=layer["macs"] * 2)), False),
        "macs.json": (lambda layer: layer.update(macs=layer["macs"] + 1), True),
    }
    for name, (edit, redigest) in edits.items():
        document = json.loads(text)
        edit(document["layers"][0])
        if redigest:
            document["layers"][0] = with_digest(document["layers"][0])
        (folder / name).write_text(json.dumps(document))


def _write_onnx(folder: Path) -> None:
    """One of the model-zoo graphs shipped in the onnx wheel, and a graph with an operator hfp8sim refuses."""
    import onnx
    from onnx import TensorProto, helper

    shutil.copy(LIGHT_ONNX / "light_squeezenet.onnx", folder / "squeezenet.onnx")
    nodes = [helper.make_node("Einsum", ["x", "x"], ["y"], name="outer", equation="ij,ij->ij")]
    graph = helper.make_graph(nodes, "einsum", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 16])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(folder / "einsum.onnx"))


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

# --- legitimate work: exit 0 with an answer checked against an independent figure -------------------------

def _ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    return proc


def _summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())["summary"]


def _points(folder: Path) -> list[dict]:
    with open(folder / "points.csv", newline="") as handle:
        return list(csv.DictReader(handle))


HUGE = [("run-gemm-1e7", "gemm_1e7.yaml", 10**21), ("run-gemm-1e12", "gemm_1e12.yaml", 10**36),
        ("run-gemm-2e70", "gemm_2e70.yaml", 2**70 * 16 * 16)]


@pytest.mark.parametrize("file, macs", [h[1:] for h in HUGE], ids=[h[0] for h in HUGE])
def test_huge_work_is_refused_in_one_line_or_answered_with_every_mac(corpus, file, macs):
    """Steady-state extrapolation may answer a GEMM far too big to simulate tile by tile; never allowed are a
    traceback, running out of memory or time, or an answer that lost MACs."""
    out = corpus / "huge" / file
    proc = hfp8sim(["run", "array_8x8", file, "--out", str(out), "--layers", "0"], corpus)
    assert "Traceback" not in proc.stderr
    if proc.returncode == 2:
        line, = proc.stderr.strip().splitlines()
        assert file in line and "big_gemm" in line and LIMIT_NAME in line
        assert not out.exists()
    else:
        _ok(proc)
        assert _summary(out)["macs"] == macs


def test_validate_takes_shipped_names(corpus):
    from hfp8sim.workloads import load_workload, resolve_workload

    proc = _ok(hfp8sim(["validate", "default", "resnet50"], corpus))
    assert "arch config hfp8_core" in proc.stdout
    assert f"{load_workload(resolve_workload('resnet50')).macs:,} MACs" in proc.stdout


@pytest.mark.parametrize("command", ["run", "validate"])
def test_onnx_on_the_command_line_gives_the_api_macs(corpus, command):
    from hfp8sim.workloads import import_onnx

    macs = import_onnx(corpus / "squeezenet.onnx").macs
    out = corpus / "onnx_run"
    if command == "run":
        _ok(hfp8sim(["run", "default", "squeezenet.onnx", "--out", str(out), "--layers", "0"], corpus))
        assert _summary(out)["macs"] == macs == 349_151_936
    else:
        assert f"{macs:,} MACs" in _ok(hfp8sim(["validate", "squeezenet.onnx"], corpus)).stdout


@pytest.mark.parametrize("command", ["run", "sweep", "trace"])
def test_a_scheme_from_a_format_file_is_usable(corpus, command):
    """my_hfp8 is hfp8's formats under another name: the same cycles (run, sweep) and the same output bits
    (trace) as hfp8, under its own name."""
    from hfp8sim.config.arch import resolve_arch
    from hfp8sim.run import simulate_network
    from hfp8sim.workloads import load_workload, resolve_workload

    out = corpus / f"my_hfp8_{command}"
    library = ["--formats", "my_formats.yaml", "--scheme", "my_hfp8"]
    if command == "trace":
        _ok(hfp8sim(["trace", "tiny_mlp", *library, "--max-macs", str(10**5), "--out", str(out / "t.json")], corpus))
        mine, hfp8 = (json.loads(p.read_text()) for p in (out / "t.json", corpus / "trace.json"))
        assert mine["scheme"]["name"] == "my_hfp8" and hfp8["scheme"]["name"] == "hfp8"
        hashes = [[layer.get("output_sha256") for layer in trace["layers"]] for trace in (mine, hfp8)]
        assert hashes[0] == hashes[1] and len([h for h in hashes[0] if h]) == 5  # the 5 GEMMs of fwd and bwd
        return
    hfp8 = simulate_network(resolve_arch("default"), load_workload(resolve_workload("tiny_mlp")), scheme="hfp8")
    if command == "run":
        _ok(hfp8sim(["run", "default", "tiny_mlp", *library, "--out", str(out), "--layers", "0"], corpus))
        summary = _summary(out)
    else:
        _ok(hfp8sim(["sweep", "default", "tiny_mlp", *library, "--out", str(out), "--jobs", "1", "--no-progress"],
                    corpus))
        summary, = _points(out)
    assert summary["scheme"] == "my_hfp8"
    assert int(summary["cycles"]) == hfp8.summary()["cycles"] and int(summary["macs"]) == hfp8.summary()["macs"]


def test_retime_runs_a_trace_on_another_arch(corpus):
    out = corpus / "retimed"
    _ok(hfp8sim(["run", "eyeriss_like", "trace.json", "--retime", "--out", str(out), "--layers", "0"], corpus))
    trace = json.loads((corpus / "trace.json").read_text())
    assert _summary(out)["macs"] == sum(layer.get("macs") or 0 for layer in trace["layers"]) == 26_181_632


def test_an_edited_sweep_point_is_recomputed_on_resume(corpus):
    """A point edited to cycles: 1 is not believed: --resume names it, runs it again and points.csv holds
    the true cycles (the rows equal the first sweep's but for wall-clock fields)."""
    out = corpus / "sweep_resume"
    argv = ["sweep", "default", "tiny_mlp", "--array", "8x8,16x16", "--out", str(out), "--jobs", "1", "--no-progress"]
    _ok(hfp8sim(argv, corpus))
    before = _points(out)
    edited = out / "points" / f"{before[0]['point_id']}.json"
    payload = json.loads(edited.read_text())
    payload["summary"]["cycles"] = 1
    edited.write_text(json.dumps(payload))
    again = _ok(hfp8sim(argv + ["--resume"], corpus))
    assert f"{edited.name}: changed since it was written" in again.stderr and "running the point again" in again.stderr
    assert "(2 ok, 0 failed; 1 run, 1 found done)" in again.stdout
    wall = ("elapsed_s", "cpu_s")
    assert [{k: v for k, v in row.items() if k not in wall} for row in _points(out)] == \
        [{k: v for k, v in row.items() if k not in wall} for row in before]
    assert int(before[0]["cycles"]) > 1
