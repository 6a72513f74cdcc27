"""The engine's layers: imports run downhill only, and the engine never imports the app's libraries.

core <- experiments <- study, and infra on top (DESIGN.md, "Layout"). Each import statement of
every engine module is read from its source (also the ones inside functions), so a lazy import
that climbs a layer is caught as well as a top-level one.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
# what each layer may import from the engine, besides itself and the package root
ALLOWED = {
    "core": set(),
    "experiments": {"core"},
    "study": {"core", "experiments"},
    "infra": {"core", "experiments", "study"},
}
NEVER = ("streamlit", "plotly", "ui", "pages")  # the app's side: the engine runs without them


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            if node.module == "engine":  # `from engine import core` names a subpackage
                names += [f"engine.{alias.name}" for alias in node.names]
    return names


def engine_modules() -> list[Path]:
    return sorted(p for p in ENGINE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_engine_module_sits_in_a_layer():
    loose = [p.name for p in ENGINE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert loose == []
    assert {p.name for p in ENGINE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ALLOWED)


@pytest.mark.parametrize("path", engine_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_downhill(path: Path):
    rel = path.relative_to(ENGINE).parts
    layer = rel[0] if len(rel) > 1 else None  # None: the package root and the command line
    for name in imported_modules(path):
        top = name.split(".")[0]
        assert top not in NEVER, f"{path.relative_to(ROOT)} imports {name}"
        parts = name.split(".")
        if layer is None or parts[0] != "engine" or len(parts) < 2 or parts[1] == "ENGINE_VERSION":
            continue
        assert parts[1] == layer or parts[1] in ALLOWED[layer], \
            f"{path.relative_to(ROOT)} ({layer}) imports {name}, a layer above it"
