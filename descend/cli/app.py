"""The typer application every subcommand module registers itself on.

Nothing here imports torch: ``descend --help``, ``descend CMD --help`` and
``descend --version`` answer at once; a command imports what it needs when it runs.
"""

from importlib import metadata
from typing import Annotated

import typer

app = typer.Typer(
    name="descend",
    help=(
        "Gradient descent, whole: optimizers, the training loop, diagnostics, benchmarks. "
        "Add --debug to any command to see a traceback instead of a one-line error."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        try:
            version = metadata.version("descend")
        except metadata.PackageNotFoundError:  # run from a source tree that is not installed
            version = "unknown"
        typer.echo(f"descend {version}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show the traceback instead of a one-line error (any command; "
            "or set DESCEND_DEBUG=1).",
        ),
    ] = False,
) -> None:
    """Gradient descent, whole: optimizers, the training loop, diagnostics, benchmarks.

    Add --debug to any command to see a traceback instead of a one-line error.
    """
