"""The layers of engine/ and ui/: imports run downhill only, no import circle anywhere, and the
engine never imports the app's libraries.

engine: core <- experiments <- study, and infra on top (DESIGN.md, "Layout").
ui: kit <- lessons <- study <- classroom, and the package's root modules (the catalog) on top;
ui may import the engine, never the other way round. The link and settings helpers are free of
Streamlit (`engine.experiments.lessons`, `ui.kit.text`). Each import statement of every module
is read from its source (also the ones inside functions), so a lazy import that climbs a layer
or closes a circle is caught as well as a top-level one.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
UI = ROOT / "ui"
# what each layer may import from its package, besides itself and the package root
ALLOWED = {
    "engine": {"core": set(), "experiments": {"core"}, "study": {"core", "experiments"},
               "infra": {"core", "experiments", "study"}},
    "ui": {"kit": set(), "lessons": {"kit"}, "study": {"kit", "lessons"},
           "classroom": {"kit", "lessons", "study"}},
}
NEVER = {"engine": ("streamlit", "plotly", "ui", "pages"),  # the engine runs without the app
         "ui": ("pages",)}
STREAMLIT_FREE = ("ui/kit/text.py", "ui/kit/events.py")  # besides all of engine/


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
            # `from engine import core`, `from ui.kit import text`: submodules by name
            names += [f"{node.module}.{alias.name}" for alias in node.names
                      if _module_path(f"{node.module}.{alias.name}") is not None]
    return names


def _module_path(name: str):
    """The file of module `name` in this repository, or None (a library, or a name in a module)."""
    base = ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "__pycache__" not in p.parts)


MODULES = package_modules(ENGINE) + package_modules(UI)


def test_every_module_sits_in_a_layer():
    loose = [p.name for p in ENGINE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert loose == []
    assert {p.name for p in ENGINE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ALLOWED["engine"])
    assert {p.name for p in UI.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ALLOWED["ui"])


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_downhill(path: Path):
    package, *rest = path.relative_to(ROOT).parts
    layer = rest[0] if len(rest) > 1 else None  # None: the package root (catalog, command line)
    for name in imported_modules(path):
        parts = name.split(".")
        assert parts[0] not in NEVER[package], f"{path.relative_to(ROOT)} imports {name}"
        if layer is None or parts[0] != package or len(parts) < 2 or parts[1] == "ENGINE_VERSION":
            continue
        assert parts[1] == layer or parts[1] in ALLOWED[package][layer], \
            f"{path.relative_to(ROOT)} ({layer}) imports {name}, a layer above it"


@pytest.mark.parametrize("path", [p for p in MODULES if p.parts[-3:-1] == ("experiments", "lessons")]
                         + [ROOT / p for p in STREAMLIT_FREE], ids=lambda p: str(p.relative_to(ROOT)))
def test_link_and_settings_helpers_are_free_of_streamlit(path: Path):
    assert not [n for n in imported_modules(path) if n.split(".")[0] in ("streamlit", "plotly")]


def import_graph() -> dict[str, set[str]]:
    """module -> the repository modules it imports (engine/ and ui/)."""
    graph = {}
    for path in MODULES:
        found = set()
        for name in imported_modules(path):
            if name.split(".")[0] in ("engine", "ui") and _module_path(name) is not None:
                found.add(name)
        graph[_module_name(path)] = found - {_module_name(path)}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle, as the modules around it (Tarjan's strongly connected components;
    a package's `__init__` counts as the package). Empty when the graph has none."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_in_engine_or_ui():
    assert cycles(import_graph()) == []


def test_the_checks_can_fail():
    """The circle finder finds a planted circle, and the downhill rule names an upward import."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    graph = import_graph()
    graph["ui.kit.text"] = graph["ui.kit.text"] | {"ui.catalog"}
    assert any("ui.kit.text" in c for c in cycles(graph))


def test_ui_reads_the_result_store_in_one_place():
    """Every page reads its runs through `ui.kit.jobs.stored(settings)` (shared while a job
    runs); no other ui module opens the result store."""
    opened = [str(p.relative_to(ROOT)) for p in package_modules(UI)
              if "ResultStore" in p.read_text() and p != UI / "kit" / "jobs.py"]
    assert opened == []


def test_a_running_jobs_runs_are_read_once_per_step_for_every_session(monkeypatch):
    """Thirty students watching one job: `stored` reads the store once per progress step."""
    from types import SimpleNamespace

    from ui.kit import jobs

    reads = []

    class Settings:  # a section's settings, as `stored` uses them
        def __init__(self, key):
            self.key_ = key

        def experiment(self):
            return SimpleNamespace(key=lambda: self.key_, units=lambda: [])

        def records(self, store):
            reads.append(self.key_)
            return [len(reads)]

        def __hash__(self):
            return hash(self.key_)

        def __eq__(self, other):
            return self.key_ == other.key_

    status = SimpleNamespace(active=True, job_id="j1", done=3, trained=3, stage="train")
    monkeypatch.setattr(jobs, "job_manager", lambda: SimpleNamespace(status=lambda key: status))
    jobs._LIVE.clear()
    first = [jobs.stored(Settings("a")) for _ in range(30)]
    assert reads == ["a"] and all(r is first[0] for r in first)  # one read, one shared result
    status.done = 4
    assert jobs.stored(Settings("a")) == [2] and reads == ["a", "a"]  # a new step: read again
    status.active = False
    jobs.stored(Settings("a")), jobs.stored(Settings("a"))
    assert len(reads) == 4  # no job running: read as it is
