"""Starting the explorer's server: loopback by default, anything else only when asked."""

from __future__ import annotations

import ipaddress
import threading
import webbrowser

from descend._validation import Interval, validate

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only reaches this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, *, allow_remote: bool) -> str | None:
    """Refuse a non-loopback ``host`` unless ``allow_remote``; return the warning to print."""
    if is_loopback(host):
        return None
    if not allow_remote:
        raise ValueError(
            f"The 'host' parameter of explore must be a loopback address (127.0.0.1, localhost, "
            f"::1) unless --allow-remote is given. Got {host!r} instead."
        )
    return (
        f"warning: serving on {host}: anyone who can reach this address can use the explorer "
        "and its CPU time. There is no authentication."
    )


def serve(host: str = LOOPBACK, port: int = 8050, *, open_browser: bool = True) -> None:
    """Serve the explorer on ``host:port`` until interrupted; open the page in a browser."""
    validate("explore", {"port": port}, {"port": Interval(0, 65535, integer=True)})
    try:
        import uvicorn

        from descend.explore.server import create_app
    except ImportError as exc:
        raise RuntimeError(
            f"descend explore needs FastAPI, uvicorn and plotly ({exc.name} is missing): "
            "pip install 'descend[explore]'."
        ) from exc

    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    print(f"descend explore: {url}  (Ctrl-C to stop)", flush=True)
    if open_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(create_app(), host=host, port=port, log_level="warning")
