"""Output paths: checked before any work starts, and written so that a reader never sees half a result.

* :func:`check_output_dir` / :func:`check_output_file` refuse, in one line naming the option and the path, an
  output that cannot be written: a folder given where a file goes or the reverse, a path under ``/proc``,
  ``/sys`` or ``/dev``, a parent that is a file or is not writable.  Commands call them before simulating, so
  a mistake costs a second, not the whole run.
* :func:`staged_folder` writes a result folder beside the final one and swaps it in when complete, so the
  folder holds exactly one run (no stale subfolders of an earlier ``--compare``) and an interrupted run
  leaves the previous result as it was.  :func:`write_file_atomically` does the same for one file.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import OutputError

_PSEUDO_FILESYSTEMS = (Path("/proc"), Path("/sys"), Path("/dev"))


def _refuse_pseudo(path: Path, option: str) -> None:
    resolved = path.resolve()
    for root in _PSEUDO_FILESYSTEMS:
        if resolved == root or root in resolved.parents:
            raise OutputError(f"{option} {path}: under {root}, which holds no files a program should write")


def _check_parent_writable(path: Path, option: str) -> None:
    """The nearest existing ancestor of ``path`` must be a folder we may create entries in."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{option} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot write in {ancestor} (permission denied)")


def check_output_dir(path: str | Path, option: str = "--out",
                     replaceable: Callable[[Path], bool] | None = None) -> Path:
    """``path`` can be (or become) a folder of results; raises OutputError otherwise.  With
    ``replaceable``, a folder that :func:`staged_folder` would replace is checked now as well."""
    path = Path(path)
    _refuse_pseudo(path, option)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: is a file; give a folder")
    if path.is_dir() and not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {path}: cannot write in this folder (permission denied)")
    _check_parent_writable(path, option)
    if replaceable is not None:
        _check_replaceable(path, replaceable, option)
    return path


def _check_replaceable(final: Path, replaceable: Callable[[Path], bool], option: str) -> None:
    if final.is_dir() and any(final.iterdir()) and not replaceable(final):
        raise OutputError(f"{option} {final}: holds files that are not a hfp8sim result; give a new or empty "
                          "folder (or the folder of an earlier run, which is replaced)")


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """``path`` can be (or become) a file; raises OutputError otherwise."""
    path = Path(path)
    _refuse_pseudo(path, option)
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{option} {path}: cannot overwrite this file (permission denied)")
    _check_parent_writable(path, option)
    return path


def write_file_atomically(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary sibling of path)``, then rename it to ``path``: readers see the old file or
    the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _replace_folder(staging: Path, final: Path) -> None:
    if not final.exists():
        os.rename(staging, final)
        return
    if _exchange(staging, final):  # staging now holds the previous result
        shutil.rmtree(staging)
        return
    previous = final.with_name(f".{final.name}.previous-{os.getpid()}")
    os.rename(final, previous)  # the only moment without a result: between these two renames
    os.rename(staging, final)
    shutil.rmtree(previous)


def _remove_abandoned_staging(final: Path) -> None:
    """Delete the staging folders that killed runs left beside ``final`` (their process is gone); a staging
    folder of a run still going is left alone."""
    prefix = f".{final.name}.partial-"
    for staging in final.parent.iterdir():
        pid = staging.name[len(prefix):]
        if staging.name.startswith(prefix) and pid.isdigit() and not _process_alive(int(pid)):
            shutil.rmtree(staging, ignore_errors=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def staged_folder(final: str | Path, *, replaceable: Callable[[Path], bool], option: str = "--out"
                  ) -> Iterator[Path]:
    """A fresh folder beside ``final`` to write a complete result into; on leaving the block it replaces
    ``final`` (on an exception it is deleted and ``final`` is untouched).

    ``replaceable(final)`` says whether an existing ``final`` holds only a previous result: a folder with
    anything else (``--out .``, a home folder) is refused rather than replaced.
    """
    final = Path(final)
    _check_replaceable(final, replaceable, option)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_staging(final)
    staging = final.with_name(f".{final.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        _replace_folder(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
