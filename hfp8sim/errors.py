"""The error types users see.

Every mistake a user can make (a bad name, an impossible spec, a YAML typo) raises a subclass of
:class:`Hfp8SimError`.  The CLI turns these into one line and exit code 2; anything else is a bug in
hfp8sim and keeps its traceback.
"""

from __future__ import annotations


class Hfp8SimError(Exception):
    """Base class of every user-facing error."""


class FormatError(Hfp8SimError, ValueError):
    """Unknown number format or scheme, or an impossible format spec."""


class ConfigError(Hfp8SimError, ValueError):
    """A problem in a YAML file: carries the file and the key path so the message can locate it."""

    def __init__(self, message: str, file: str | None = None, key_path: str | None = None):
        self.file = file
        self.key_path = key_path
        self.detail = message
        where = ": ".join(p for p in (file, key_path) if p)
        super().__init__(f"{where}: {message}" if where else message)


class DatapathError(Hfp8SimError, ValueError):
    """Bad operands for the functional datapath: shapes, invalid codes, unknown dataflow."""


class TraceError(Hfp8SimError, ValueError):
    """A bad trace request or file: unknown scaling policy, a workload that cannot be traced, a corrupt trace."""


class ModelPackageError(Hfp8SimError):
    """A package that ships real model weights or real inputs is missing, or has the wrong version.

    The message names the package and the command that installs it (``hfp8sim fetch-models``); weights are
    never downloaded from a model hub at run time.
    """


class WorkloadError(ConfigError):
    """A problem in a workload: a YAML network file, an ONNX graph, a SCALE-Sim topology, or a layer
    whose shapes are impossible or do not match the layer that feeds it.

    It is a :class:`ConfigError` (same ``(message, file, key_path)`` signature and ``file: key path:
    message`` formatting), so code that reports config mistakes reports workload mistakes too.
    """
