"""The error types users see: all of them, one type per kind of mistake.

Every mistake a user can make (a bad name, an impossible spec, a YAML typo) raises a subclass of
:class:`Hfp8SimError`.  The CLI turns these into one line and exit code 2; anything else is a bug in
hfp8sim and keeps its traceback.  The same mistake raises the same type wherever it is caught (an unknown
dataflow is an :class:`ArraySpecError` in the datapath and in the schedule alike).  Types that describe a bad
value also subclass :class:`ValueError`, so ``except ValueError`` in a caller's code keeps working.

This module is the bottom of the package: it imports nothing of hfp8sim.
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
    """Bad operands for the functional datapath: shapes, invalid codes, groups that do not split channels."""


class ArraySpecError(DatapathError):
    """An impossible array description: unknown dataflow, a non-positive size, accumulator options that do not
    apply to the dataflow (chunk, chain), an unsupported accumulator, a fold larger than the array.

    Raised alike by the datapath's :class:`~hfp8sim.datapath.contract.ArrayArithmetic` and by the schedule's
    fold timing (``schedule/fold_latency.py``, ``schedule/scalesim.py``); a :class:`DatapathError` because the
    datapath was the first to check these.
    """


class StructuralHazard(DatapathError):
    """The cycle-stepped reference array was given a schedule where two things need one register or port in
    the same cycle, or a value is used before it exists."""


class ScheduleError(Hfp8SimError, ValueError):
    """A layer cannot be mapped onto the array with the given scratchpads."""


class EnergyError(Hfp8SimError, ValueError):
    """Energy accounting asked for something impossible: unknown components, breakdowns at different operating
    points added, a core count below one, a power or efficiency of no time or no energy."""


class TraceError(Hfp8SimError, ValueError):
    """A bad trace request or file: unknown scaling policy, a workload that cannot be traced, a corrupt trace."""


class NetworkOpError(Hfp8SimError, ValueError):
    """A network op (matmul, conv2d) given operands it cannot take: wrong ranks or shapes, groups that do not
    split the channels, an unknown operand role, a kernel larger than its padded input.

    Raised alike by the float reference ops (``networks/ops.py``) and the FP8 datapath ops
    (``traces/datapath_ops.py``)."""


REINSTALL_HINT = "if it came from a model package, reinstall it with `hfp8sim fetch-models --force`"


class WeightFileError(Hfp8SimError, ValueError):
    """A weights file (safetensors, legacy torch pickle) is corrupt, truncated or of an unknown kind."""

    def __init__(self, path: object, problem: str, fix: str = REINSTALL_HINT):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}; {fix}" if fix else f"{self.path}: {problem}")


class NetworkInputError(Hfp8SimError, ValueError):
    """Inputs a real network cannot take: an empty batch, an image that is not HxWx3 uint8, too many sentences."""


class SweepError(Hfp8SimError, ValueError):
    """A sweep that cannot start: an unknown key, an empty grid, an unreachable scheduler."""


class ResultsError(Hfp8SimError, ValueError):
    """A result file that cannot be read back: missing, not CSV/JSON, or not a result."""


class PlotError(Hfp8SimError):
    """Results that cannot be plotted (not a sweep or run folder, no summary, nothing to draw)."""


class ModelPackageError(Hfp8SimError):
    """A package that ships real model weights or real inputs is missing, has the wrong version, or is not one
    of the model packages hfp8sim knows.

    The message names the package and the command that installs it (``hfp8sim fetch-models``); weights are
    never downloaded from a model hub at run time.
    """


class WorkloadError(ConfigError):
    """A problem in a workload: a YAML network file, an ONNX graph, a SCALE-Sim topology, or a layer
    whose shapes are impossible or do not match the layer that feeds it.

    It is a :class:`ConfigError` (same ``(message, file, key_path)`` signature and ``file: key path:
    message`` formatting), so code that reports config mistakes reports workload mistakes too.
    """


class TrainingError(Hfp8SimError, ValueError):
    """A training run that cannot be set up: a scheme without a backward format, an unknown optimizer or
    weight-update rule, a bad loss scale, parameters or gradients that do not match, a worker count out of
    range."""


class DatasetError(Hfp8SimError):
    """A training dataset that cannot be read: its Debian package is not installed (the message names the
    ``apt-get install`` command), a file is corrupt or not an IDX file, or a split is impossible."""


class OutputError(Hfp8SimError, ValueError):
    """An output path that cannot take the result: a folder where a file goes or the reverse, a path under
    /proc, a folder that cannot be written, or a folder holding other files that a run would replace."""


class DistributedError(Hfp8SimError, ValueError):
    """A multi-chip (data-parallel) setup that cannot be simulated: an unknown topology or protocol, a link
    bandwidth or latency that is not a positive (latency: non-negative) finite number, a chip count out of range
    or one that does not split into the nodes or the torus asked for, an empty or inconsistent step profile."""
