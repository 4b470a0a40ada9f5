"""Every example command in the README runs, as a user would type it, from a directory outside the source tree
(so shipped names, not paths into the checkout, are what it can rely on), and exits 0.

The commands are read from the README itself, so it cannot drift.  A sweep example that names a Dask
scheduler runs against a local cluster this test starts.  The study commands that take over a minute (LONG:
the report gallery, fidelity, the training study, the chip report...) are run by
``test_long_readme_example`` only with ``HFP8SIM_LONG_EXAMPLES=1`` (CI's second pytest run:
``HFP8SIM_LONG_EXAMPLES=1 python -m pytest tests/test_readme_examples.py -k long``); without it that test and
the default one still parse their arguments with the real parser, so a renamed or removed option fails here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time

import pytest

from tests.conftest import PROJECT_ROOT

# the commands that take over a minute on a 2-core machine, with how long (the README says so too); the
# default test run stays within CI's budget without them, and HFP8SIM_LONG_EXAMPLES=1 runs them as well
LONG = {
    "hfp8sim report": "about 3 minutes",
    "hfp8sim fidelity": "about 10 minutes (15 when the FP32 CNN and transformer are trained first)",
    "hfp8sim fidelity --trained-only": "about 3 minutes (10 when the FP32 CNN and transformer are trained first)",
    "hfp8sim chip-report": "about a minute",
    "hfp8sim distributed-report": "about 2 minutes",
    "hfp8sim train-report --jobs 2": "about 25 minutes",
    "hfp8sim trace minilm --scheme hfp8 --out out/minilm.json": "about 1.5 minutes",
    "hfp8sim train --model cnn --dataset fashion_mnist --scheme hfp8 --epochs 1 --seed 0 --out out/train":
        "about 2 minutes",
    "hfp8sim train --model transformer --dataset pydoc --optimizer adam --lr 3e-3 --steps-per-epoch 100":
        "a few minutes",
    "hfp8sim sweep default resnet50 --array 8x8,16x16,32x32,64x64,128x128 --dataflow os,ws,is --scheme hfp8,fp16":
        "about a minute",
}
RUN_LONG = os.environ.get("HFP8SIM_LONG_EXAMPLES") == "1"


def readme_commands() -> list[str]:
    """The README's example command lines (indented code), comments dropped, in order; the quick-start
    lines that create a virtual environment are what CI itself runs and are left out."""
    commands = []
    for line in (PROJECT_ROOT / "README.md").read_text().splitlines():
        match = re.match(r"^ {4}(hfp8sim .*)$", line)
        if match:
            commands.append(match.group(1).split("  #")[0].split(" # ")[0].strip())
    return commands


def test_the_readme_has_examples_of_every_command():
    commands = readme_commands()
    used = {command.split()[1] for command in commands}
    assert {"run", "validate", "trace", "fidelity", "train", "train-report", "sweep", "plot", "report",
            "chip-report", "fetch-models", "distributed", "distributed-report"} <= used
    assert set(LONG) <= set(commands), "a LONG command is no longer in the README: update LONG"


def _argv(command: str, scheduler: str | None) -> list[str]:
    argv = shlex.split(command)[1:]
    if "--scheduler" in argv:
        assert scheduler is not None
        argv[argv.index("--scheduler") + 1] = scheduler
    return argv


def _run(argv: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hfp8sim.cli", *argv], cwd=cwd, capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})


@pytest.fixture(scope="module")
def scheduler():
    distributed = pytest.importorskip("distributed")  # in the test extra: always there in CI
    # ":0": the dashboard on a free port (None means dask's default 8787, taken when another cluster runs here)
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                  dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _check_exits_0(command: str, argv: list[str], cwd) -> None:
    start = time.perf_counter()
    result = _run(argv, cwd)
    print(f"{time.perf_counter() - start:7.1f} s  {command}")  # shown with -s: what the examples cost
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr, command


def test_every_readme_example_exits_0_outside_the_source_tree(tmp_path, scheduler):
    """The short examples run in README order in one folder (later ones read what earlier ones wrote); the
    LONG ones are parsed here and run by test_long_readme_example."""
    from hfp8sim.cli import build_parser

    parser = build_parser()
    ran = []
    for command in readme_commands():
        argv = _argv(command, scheduler)
        if command in LONG:
            parser.parse_args(argv)  # exits (SystemExit) on an unknown or malformed option
            continue
        _check_exits_0(command, argv, tmp_path)
        ran.append(command)
    assert len(ran) == len(readme_commands()) - len(LONG) > 10
    assert (tmp_path / "out" / "bert" / "fp16" / "summary.json").is_file()  # `run --out out/bert` wrote there


@pytest.mark.parametrize("command", sorted(LONG), ids=[" ".join(c.split()[1:4]) for c in sorted(LONG)])
def test_long_readme_example(command, tmp_path):
    """Each LONG example alone in a fresh folder outside the source tree (none reads another's output):
    run with HFP8SIM_LONG_EXAMPLES=1, else its options are parsed."""
    from hfp8sim.cli import build_parser

    argv = _argv(command, None)
    if not RUN_LONG:
        build_parser().parse_args(argv)  # exits (SystemExit) on an unknown or malformed option
        return
    _check_exits_0(command, argv, tmp_path)
