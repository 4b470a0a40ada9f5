"""`hfp8sim train` refuses a bad setup in one line with exit code 2, before it prints or writes anything: a scheme
without a backward format (an inference-only scheme from a format library), an unknown optimizer or weight-update
rule, a missing Fashion-MNIST package (simulated with an empty folder in $HFP8SIM_FASHION_MNIST_DIR)."""

from __future__ import annotations

import pytest

from hfp8sim.cli import main
from hfp8sim.config import load_format_library
from hfp8sim.errors import Hfp8SimError, TrainingError
from hfp8sim.formats import get_scheme
from hfp8sim.training.ops import TrainingOps

INFERENCE_ONLY = "schemes:\n  e4m3_inference_only:\n    forward: float8_e4m3fn\n    accumulate: float16\n"


@pytest.fixture
def library(tmp_path):
    path = tmp_path / "inference_only.yaml"
    path.write_text(INFERENCE_ONLY)
    return path


def _refused(args, capsys, out) -> str:
    """Run `hfp8sim train ARGS --out OUT`; assert exit 2, one line on stderr, nothing on stdout or on disk."""
    try:
        code = main(["train", *args, "--out", str(out)])
    except SystemExit as exit_:  # argparse's own refusal (a value outside --optimizer's choices)
        code = exit_.code
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.count("\n") == 1 and captured.err.startswith("hfp8sim")
    assert captured.out == "" and not out.exists()
    return captured.err


def test_a_scheme_without_a_backward_format(tmp_path, capsys, library):
    err = _refused(["--formats", str(library), "--scheme", "e4m3_inference_only"], capsys, tmp_path / "out")
    assert "scheme e4m3_inference_only has no backward format" in err and "backward:" in err


def test_an_unknown_optimizer(tmp_path, capsys):
    err = _refused(["--optimizer", "lamb"], capsys, tmp_path / "out")
    assert "--optimizer" in err and "'lamb'" in err and "sgd" in err and "adam" in err


def test_an_unknown_update_rule(tmp_path, capsys):
    err = _refused(["--update-rule", "fp8_magic"], capsys, tmp_path / "out")
    assert "unknown weight-update rule 'fp8_magic'" in err and "round_off_residual" in err


def test_a_missing_dataset_package(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "no_fashion_mnist"
    empty.mkdir()
    monkeypatch.setenv("HFP8SIM_FASHION_MNIST_DIR", str(empty))
    err = _refused(["--model", "mlp", "--dataset", "fashion_mnist"], capsys, tmp_path / "out")
    assert str(empty) in err and "apt-get install -y dataset-fashion-mnist" in err


def test_the_library_scheme_is_inference_only_in_python_too(library):
    load_format_library(library)
    scheme = get_scheme("e4m3_inference_only")
    assert scheme.backward is None and scheme.operand_formats == (scheme.forward,)
    with pytest.raises(TrainingError, match=r"^scheme e4m3_inference_only has no backward format") as error:
        TrainingOps("e4m3_inference_only")
    assert isinstance(error.value, Hfp8SimError) and "\n" not in str(error.value)
