"""A peer tool (SCALE-Sim, ZigZag) in a scratch virtual environment of its own, for the benchmark and
validation scripts: the project never depends on its peers, and their pinned dependencies (SCALE-Sim needs
numpy < 2.3) never meet the user's environment."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def probe(python: Path, code: str, key: str, version: str) -> dict | None:
    """What ``code`` prints (a JSON object, on its last line) when run by ``python``, if its ``key`` is
    ``version``; None when the venv is missing, the import fails or the version differs."""
    if not python.exists():
        return None
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    return info if info[key] == version else None


def ensure_peer(venv: Path, requirements: tuple[str, ...], code: str, key: str, version: str, *,
                timeout_s: float, fresh: bool = False) -> tuple[Path, dict, float | None]:
    """(venv python, what ``code`` printed, install seconds or None when the venv was reused): the venv
    reused when its probe passes, else created (``fresh``: from scratch) and ``requirements`` installed.
    Raises RuntimeError with pip's last lines when it fails."""
    python = venv_python(venv)
    info = probe(python, code, key, version)
    if info is not None:
        return python, info, None
    print(f"installing {' '.join(requirements)} into a scratch venv at {venv} (a few minutes) ...", flush=True)
    t0 = time.perf_counter()
    if fresh and venv.exists():
        shutil.rmtree(venv)
    venv.parent.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"could not create the venv {venv}: {(proc.stderr or proc.stdout).strip()[-500:]}")
    try:
        proc = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                               *requirements], capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"pip install did not finish within {timeout_s:g} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise RuntimeError("pip install failed: " + " | ".join(tail))
    info = probe(python, code, key, version)
    if info is None:
        raise RuntimeError(f"{' '.join(requirements)} installed but its import fails in {venv}, or its version "
                           f"is not {version}")
    return python, info, time.perf_counter() - t0
