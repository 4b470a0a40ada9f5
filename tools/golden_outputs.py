"""Run a fixed set of CLI jobs and fingerprint what they write, so a refactor can prove it changed nothing.

    python tools/golden_outputs.py OUT_DIR            # run the jobs into OUT_DIR, print the manifest
    python tools/golden_outputs.py OUT_DIR --write    # ... and store it as tests/golden/outputs.json

``tests/golden/test_outputs_unchanged.py`` runs the same jobs and compares every file's SHA-256 with the
stored manifest, which was generated on the commit before the structure refactor (its ``commit`` field).
Two things are normalised before hashing, because they describe the machine rather than the simulation:
the absolute path of the checkout (arch files are recorded by path) becomes ``<root>`` (and the shipped data
folders of a non-editable install, in site-packages, become ``<root>/arch_configs`` and ``<root>/workloads``),
and the wall-clock fields of sweep points (``cpu_s``, ``elapsed_s``) are dropped, with the point's ``digest``
(a hash of the point as written, wall clock and paths included; every field it covers is compared itself).
Everything else must match byte for byte.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "tests" / "golden" / "outputs.json"
WALL_CLOCK_FIELDS = ("cpu_s", "elapsed_s")

# Each job is the argv of one `hfp8sim` call, run in OUT_DIR.  Together they cover the default run, a
# comparison with a timeline, another core and scheme, a chip (several cores), a sweep in processes, a
# bit-accurate trace (pair mode on the default core, output hashes inside) and the run that consumes it.
JOBS: tuple[tuple[str, ...], ...] = (
    ("run", "--out", "run_default"),
    ("run", "default", "bert_base_seq128", "--compare", "hfp8,fp16", "--out", "run_bert", "--timeline", "tl.json"),
    ("run", "eyeriss_like", "mobilenet_v2", "--scheme", "ocp_fp8", "--out", "run_mnv2"),
    ("run", "tpu_v1_like", "tiny_cnn", "--out", "run_tpu"),
    ("run", "ibm_like_4core", "tiny_cnn", "--compare", "hfp8,fp32", "--out", "run_chip"),
    ("run", "scalesim_32x32", "resnet50", "--out", "run_scalesim"),
    ("sweep", "default", "tiny_cnn", "--array", "16x16,32x32", "--dataflow", "os,ws,is", "--scheme", "hfp8,fp16",
     "--cores", "1,2", "--out", "sweep", "--jobs", "2", "--no-progress"),
    ("trace", "tiny_cnn", "--out", "trace_tiny.json", "--quiet"),
    ("trace", "tiny_cnn", "--arch", "eyeriss_like", "--scheme", "fp8_e5m2", "--out", "trace_tiny_os.json",
     "--quiet"),
    ("run", "default", "trace_tiny.json", "--out", "run_trace"),
)


def run_jobs(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONHASHSEED="0")
    for job in JOBS:
        proc = subprocess.run([sys.executable, "-c", "import sys; from hfp8sim.cli import main; "
                               "sys.exit(main(sys.argv[1:]))", *job],
                              cwd=out, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"hfp8sim {' '.join(job)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")


def _drop_wall_clock(obj):
    if isinstance(obj, dict):
        return {k: _drop_wall_clock(v) for k, v in obj.items() if k not in (*WALL_CLOCK_FIELDS, "digest")}
    if isinstance(obj, list):
        return [_drop_wall_clock(v) for v in obj]
    return obj


def _machine_paths(out: Path) -> list[tuple[str, str]]:
    """(path, placeholder) pairs: the checkout, and the shipped data folders as the jobs (run in ``out``) see
    them: in site-packages, not under the checkout, when the package is installed non-editable."""
    code = ("from hfp8sim.io.shipped import shipped_dir; "
            "print(shipped_dir('arch_configs')); print(shipped_dir('workloads'))")
    lines = subprocess.run([sys.executable, "-c", code], cwd=out, capture_output=True, text=True,
                           check=True).stdout.split()
    pairs = [(path, f"<root>/{kind}") for path, kind in zip(lines, ("arch_configs", "workloads"))]
    return [(path, placeholder) for path, placeholder in pairs if not path.startswith(str(ROOT))] + \
        [(str(ROOT), "<root>")]


def normalised_bytes(path: Path, machine_paths: list[tuple[str, str]]) -> bytes:
    text = path.read_text()
    for machine_path, placeholder in machine_paths:
        text = text.replace(machine_path, placeholder)
    if path.parent.name == "points" and path.suffix == ".json":
        text = json.dumps(_drop_wall_clock(json.loads(text)), sort_keys=True)
    elif path.name == "points.csv":
        rows = list(csv.reader(io.StringIO(text)))
        keep = [i for i, name in enumerate(rows[0]) if name not in WALL_CLOCK_FIELDS]
        text = "\n".join(",".join(row[i] for i in keep) for row in rows)
    return text.encode()


def fingerprint(out: Path) -> dict[str, str]:
    machine_paths = _machine_paths(out)
    return {str(p.relative_to(out)): hashlib.sha256(normalised_bytes(p, machine_paths)).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--write", action="store_true", help="store the manifest in tests/golden/outputs.json")
    args = parser.parse_args()
    run_jobs(args.out)
    files = fingerprint(args.out)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    manifest = {"commit": commit, "jobs": [list(j) for j in JOBS], "files": files}
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    if args.write:
        MANIFEST.parent.mkdir(parents=True, exist_ok=True)
        MANIFEST.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
