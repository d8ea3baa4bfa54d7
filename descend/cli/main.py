"""Entry point: registers the subcommands and turns library errors into one clear line.

Without ``--debug`` a failure prints ``error: <message>`` on standard error and
exits with status 2 (bad input) or 1 (anything else); ``--debug`` (or
``DESCEND_DEBUG=1``) shows the traceback instead.
"""

from __future__ import annotations

import importlib
import os
import sys

from descend.cli.app import app

# Each module adds its commands to ``app`` when imported.
COMMAND_MODULES = [
    "descend.cli.terrain",
    "descend.cli.train_cmd",
    "descend.cli.compare_cmd",
    "descend.cli.tasks_cmd",
    "descend.cli.lr_find_cmd",
    "descend.cli.landscape_cmd",
]


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("DESCEND_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    for name in COMMAND_MODULES:
        importlib.import_module(name)
    try:
        # Standalone mode: usage errors (unknown options, bad values) print typer's message
        # and exit 2; anything else raised by the library reaches the handler below.
        app(args=argv, prog_name="descend")
    except Exception as exc:  # noqa: BLE001 - the one place errors become a message
        if debug:
            raise
        code = 2 if isinstance(exc, ValueError | FileNotFoundError | KeyError) else 1
        text = str(exc).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        sys.exit(code)
