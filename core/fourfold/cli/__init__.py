"""The ``fourfold`` command line.

Each command group lives in its own module and adds itself to :data:`app` when imported.
"""

from __future__ import annotations

import importlib
import os
import sys

from fourfold.cli.common import app, console, err_console, exit_with

__all__ = ["app", "main", "console", "err_console", "exit_with"]

# Command modules, in the order their commands appear in --help.
_COMMAND_MODULES = [
    "fourfold.cli.manifest_cmds",
    "fourfold.cli.plugins_cmds",
    "fourfold.cli.index_cmds",
    "fourfold.cli.worker_cmds",
    "fourfold.cli.serve_cmds",
    "fourfold.cli.train_cmds",
    "fourfold.cli.advise_cmds",
    "fourfold.cli.dev_cmds",
]

for _module in _COMMAND_MODULES:
    importlib.import_module(_module)


def main() -> None:
    """Console-script entry point."""
    # Model code must never reach the network at run time; models come from packages.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
