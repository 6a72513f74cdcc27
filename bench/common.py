"""What the benchmark scripts share: the repository on the import path, a fresh data directory
per run, and the command line of the scripts whose only option is `--quick`.

The scripts import it as `from common import ...`, which works because Python puts a script's
own folder first on the import path: each still runs as `python bench/<name>.py`. Not a
benchmark itself: run on its own (as `make bench` does with every file here) it does nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the repository, so `import engine` works
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def fresh_home(prefix: str) -> Path:
    """Point TRANSFERLAB_HOME at a new, empty temporary folder (nothing cached, nothing stored)
    before any engine module is imported; returns the folder."""
    home = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["TRANSFERLAB_HOME"] = str(home)
    return home


def quick_run(doc: str, quick_help: str, home_prefix: str) -> bool:
    """Read a script's command line (`--quick` only; the description is the first paragraph of
    its docstring `doc`), then give the run a fresh data directory. True when --quick was given."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    quick = parser.parse_args().quick
    fresh_home(home_prefix)
    return quick
