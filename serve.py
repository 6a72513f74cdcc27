"""The one way Transfer Lab's server starts: `python serve.py [--port N] [--address A] [flags]`.

`make run`, the Dockerfile, the real-browser tests (tests/test_browser*.py) and the server
benchmark (bench/load_test.py) all start the app with this command, so what the tests and the
benchmarks measure is the server users run. It is `streamlit run web.py` in the repository's
folder: `web.py` serves `app.py`'s pages behind the front door (`engine.infra.gate`: the visitor
cookie the class quotas count under, security headers, metrics for the operator only), and
Streamlit reads `.streamlit/config.toml` there: that file holds the settings (the file watcher
off, a toolbar without the Deploy button and the developer menu, XSRF and CORS protection, the
upload cap), so a plain `streamlit run app.py` gets them too, without the front door. This entry
only says where to listen; any other `--section.option=value` flag goes to Streamlit unchanged
(`--server.baseUrlPath=transferlab` behind a proxy).

Not a place for settings (they belong in the config file) and not imported by the app.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

ROOT = Path(__file__).resolve().parent  # the repository; Streamlit reads its config file from here
DEFAULT_PORT = 8501


def streamlit_command(port: int, address: Optional[str] = None,
                      extra: Sequence[str] = ()) -> list[str]:
    """`python -m streamlit run web.py` on `port`, on `address` when given (else Streamlit's
    default, every interface), with the Streamlit flags `extra`; it must run in ROOT."""
    command = [sys.executable, "-m", "streamlit", "run", "web.py", f"--server.port={port}"]
    if address:
        command.append(f"--server.address={address}")
    return [*command, *extra]


def server_command(port: int, address: Optional[str] = None,
                   extra: Sequence[str] = ()) -> list[str]:
    """This entry's own command line, for the tests and benchmarks that start a server."""
    command = [sys.executable, str(ROOT / "serve.py"), f"--port={port}"]
    if address:
        command.append(f"--address={address}")
    return [*command, *extra]


def data_directory() -> str:
    """Where the server keeps its runs and classes (told to the operator here, not to visitors)."""
    return os.environ.get("TRANSFERLAB_HOME") or str(Path.home() / ".cache" / "transferlab")


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Replace this process with the Streamlit server (signals reach it directly)."""
    parser = argparse.ArgumentParser(
        description="Start Transfer Lab's server (streamlit run web.py: app.py's pages with the repository's "
                    "settings). Other --section.option=value flags are passed to Streamlit.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"the port to listen on ({DEFAULT_PORT})")
    parser.add_argument("--address", default=None,
                        help="the address to listen on (Streamlit's default: every interface)")
    args, extra = parser.parse_known_args(argv)
    stray = [flag for flag in extra if not flag.startswith("--")]
    if stray:
        parser.error(f"unexpected arguments {stray}: Streamlit flags look like "
                     "--server.baseUrlPath=transferlab")
    command = streamlit_command(args.port, args.address, extra)
    os.chdir(ROOT)
    print(f"  Transfer Lab's data directory: {data_directory()}", flush=True)
    sys.stdout.flush()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
