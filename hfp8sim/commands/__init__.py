"""One module per ``hfp8sim`` subcommand; each has ``register(subparsers)``.

The modules are thin: they parse arguments, call the public API and print.  Imports of heavy modules happen
inside the command functions, so ``hfp8sim --help`` stays fast.
"""

from . import chip_report, distributed, distributed_report, fetch_models, fidelity, formats, numerics, run, trace, validate
from . import plot, report, sweep, train, train_report

# Order of the subcommands in ``hfp8sim --help``.
COMMAND_MODULES = [run, validate, sweep, plot, report, trace, train, train_report, distributed, distributed_report, fidelity, formats, numerics, chip_report, fetch_models]
