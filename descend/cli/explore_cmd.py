"""``descend explore``: the live page; ``descend learn``: the lessons as one HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from descend.cli.app import app


@app.command("explore")
def explore(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8050,
    host: Annotated[
        str, typer.Option(help="Address to bind; only loopback without --allow-remote.")
    ] = "127.0.0.1",
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote", help="Allow a non-loopback --host (anyone who reaches it can use it)."
        ),
    ] = False,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL without opening a browser.")
    ] = False,
) -> None:
    """Start the explorer: watch every optimizer descend every terrain, live (needs the
    explore extra: FastAPI, uvicorn and plotly)."""
    from descend.explore.serve import check_host, serve

    warning = check_host(host, allow_remote=allow_remote)
    if warning:
        typer.echo(warning, err=True)
    serve(host, port, open_browser=not no_browser)


@app.command("learn")
def learn(
    out: Annotated[Path, typer.Option("--out", help="Folder to write lessons.html into.")],
) -> None:
    """Write the lessons (figures included) as one HTML file that opens from disk."""
    from descend.explore.learn import write_learn_page

    path = write_learn_page(out)
    typer.echo(f"wrote {path}")
