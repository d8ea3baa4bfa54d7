"""Entry point: registers the subcommands and turns every error into one clear line.

Without ``--debug`` a failure prints ``error: <message>`` (one line) on standard
error and exits with status 2 (bad input: an unknown option or name, a value out
of range, a missing file) or 1 (anything else); ``--debug`` (or
``DESCEND_DEBUG=1``) shows the traceback instead. An unknown option is answered
with the closest valid one (``Did you mean --epochs?``).
"""

from __future__ import annotations

import difflib
import importlib
import os
import sys
from collections.abc import Sequence

import typer
from typer._click import exceptions as click_errors

from descend.cli.app import app

# Each module adds its commands to ``app`` when imported.
COMMAND_MODULES = [
    "descend.cli.terrain",
    "descend.cli.train_cmd",
    "descend.cli.compare_cmd",
    "descend.cli.tasks_cmd",
    "descend.cli.bench_cmd",
    "descend.cli.lr_find_cmd",
    "descend.cli.landscape_cmd",
    "descend.cli.diagnose_cmd",
    "descend.cli.tune_cmd",
    "descend.cli.explore_cmd",
]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _given_value(param: object, argv: Sequence[str]) -> str | None:
    """The text given on the command line for an option (``--x v`` or ``--x=v``), if any."""
    if getattr(param, "param_type_name", None) != "option":
        return None
    for i, token in enumerate(argv):
        for opt in param.opts:
            if token == opt and i + 1 < len(argv):
                return argv[i + 1]
            if token.startswith(opt + "="):
                return token[len(opt) + 1 :]
    return None


def _closest_option(given: str, ctx: object) -> str | None:
    """The command's option spelled most like ``given``, compared without the dashes."""
    if ctx is None:
        return None
    names = [o for p in ctx.command.get_params(ctx) for o in (*p.opts, *p.secondary_opts)]
    by_bare = {o.lstrip("-"): o for o in names if o.startswith("--")}
    close = difflib.get_close_matches(given.lstrip("-"), list(by_bare), n=1, cutoff=0.65)
    return by_bare[close[0]] if close else None


def usage_message(exc: click_errors.ClickException, argv: Sequence[str]) -> str:
    """One line for a command-line usage error, with the closest valid option when unknown."""
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click_errors.NoSuchOption):
        message = f"No such option: {exc.option_name}."
        close = _closest_option(exc.option_name, ctx)
        if close:
            message += f" Did you mean {close}?"
    else:
        message = _one_line(exc.format_message())
        if isinstance(exc, click_errors.BadParameter):
            value = _given_value(exc.param, argv)
            if value is not None and repr(value) not in message and value not in message:
                message = message.rstrip(".") + f". Got {value!r} instead."
    if ctx is not None:
        message = message.rstrip() + ("" if message.rstrip()[-1:] in ".?!" else ".")
        message += f" See '{ctx.command_path} --help'."
    return message


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("DESCEND_DEBUG") == "1"
    argv = [a for a in argv if a != "--debug"]
    for name in COMMAND_MODULES:
        importlib.import_module(name)
    try:
        # Not standalone: usage errors come back here as exceptions, so that they too
        # become one line instead of typer's framed box.
        code = app(args=argv, prog_name="descend", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:
        text = exc.format_message()
        if text:
            print(text)
        sys.exit(exc.exit_code)
    except click_errors.ClickException as exc:
        if debug:
            raise
        print(f"error: {usage_message(exc, argv)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("error: aborted.", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        # A second Ctrl-C: stop at once. Files written so far are complete (atomic writes).
        if debug:
            raise
        print("error: interrupted (second Ctrl-C); stopped at once.", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        code = 2 if isinstance(exc, ValueError | FileNotFoundError | KeyError) else 1
        text = str(exc).strip()
        message = text.splitlines()[0] if text else type(exc).__name__
        print(f"error: {message}", file=sys.stderr)
        sys.exit(code)
    # typer.Exit(n) from a command (and Ctrl-C, as 130) comes back as the exit status.
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        sys.exit(code)


if __name__ == "__main__":
    main()
