"""One module per ``hfp8sim`` subcommand; each has ``register(subparsers)``.

The modules are thin: they parse arguments, call the public API and print.  Imports of heavy modules happen
inside the command functions, so ``hfp8sim --help`` stays fast.
"""

from . import fetch_models, formats, numerics, run, validate

# Order of the subcommands in ``hfp8sim --help``.
COMMAND_MODULES = [run, validate, formats, numerics, fetch_models]
