"""The typer application every subcommand module registers itself on."""

import typer

app = typer.Typer(
    name="descend",
    help="Gradient descent, whole: optimizers, the training loop, diagnostics, benchmarks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Gradient descent, whole: optimizers, the training loop, diagnostics, benchmarks.

    Add --debug to any command to see a traceback instead of a one-line error.
    """
