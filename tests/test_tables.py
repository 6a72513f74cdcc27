"""The one way a page shows a results table (`ui.kit.tables.show_table`), through AppTest.

What each table sends: its values unchanged as data, the text it shows (each number column in
its stated format, text escaped for Markdown), the phone's row-by-row form of a compact table,
and a sortable grid only where asked and never in the handout. Then: every table call of the
app's pages goes through the helper. Real-browser checks of the same tables on a phone and in
print are in tests/test_browser_tables.py.
"""

from __future__ import annotations

import ast

import pandas as pd
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from conftest import ROOT

NBSP = "\u00a0"


def _runs_script(view: str = "") -> None:
    """A page with the 'Every run' table of two runs, drawn in `view`."""
    import pandas as pd

    from ui.kit.shell import app_run
    from ui.kit.tables import Compact, show_table

    runs = pd.DataFrame({"Strategy": ["From scratch", "Fine-tune"],
                         "Labels per class": ["1", "all (120)"], "Labelled examples": [10, 1200],
                         "Seed": [0, 2], "Test accuracy (%)": [12.3456, 100.0],
                         "Train time (s)": [0.8412, 12.3], "Device": ["cpu", "cpu"]})
    with app_run(view):
        show_table(runs, "runs", formats={"Test accuracy (%)": ".1f", "Train time (s)": ".2f"},
                   compact=Compact("{Strategy}, {Labels per class} per class, seed {Seed}"),
                   sortable=True)


def _run(script, **kwargs) -> AppTest:
    at = AppTest.from_function(script, kwargs=kwargs, default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(table) -> pd.DataFrame:
    """The text a table element shows (its Styler's display values)."""
    return dataframe_util.convert_arrow_bytes_to_pandas_df(table.proto.arrow_data.styler.display_values)


def test_a_plain_table_keeps_its_values_and_shows_each_number_in_its_format():
    def script():
        import pandas as pd

        from ui.kit.tables import show_table

        show_table(pd.DataFrame({"Arm": ["Plain fine-tune", "EWC"], "Source after (%)": [60.04, 98.15],
                                 "Trained weights": [98442, 1290], "Seed": [0, 1]}).set_index("Arm"),
                   "arms", formats={"Source after (%)": ".1f", "Trained weights": ","})

    at = _run(script)
    (table,) = at.table
    assert not at.dataframe and not at.markdown  # one HTML table, no phone copy
    assert list(table.value.columns) == ["Source after (%)", "Trained weights", "Seed"]
    assert table.value.loc["EWC", "Source after (%)"] == 98.15  # the data: the values themselves
    text = shown(table)
    assert list(text["Source after (%)"]) == ["60.0", "98.2"]
    assert list(text["Trained weights"]) == ["98,442", "1,290"]
    assert list(text["Seed"]) == ["0", "1"]  # no format stated: as Python writes it
    assert not table.proto.hide_index  # the named index (the arm) is the first column


def test_a_compact_table_sends_a_sortable_grid_and_a_phone_form_with_the_same_text():
    at = _run(_runs_script)
    (grid,) = at.dataframe  # the wide screen keeps sorting
    assert list(grid.value.columns) == ["Strategy", "Labels per class", "Labelled examples",
                                        "Seed", "Test accuracy (%)", "Train time (s)", "Device"]
    assert list(shown(grid)["Test accuracy (%)"]) == ["12.3", "100.0"]
    assert list(shown(grid)["Train time (s)"]) == ["0.84", "12.30"]
    assert not at.table
    (phone,) = [m.value for m in at.markdown]
    first, second = phone.split("\n\n")
    assert first == ("**From scratch, 1 per class, seed 0**  \n" + " · ".join(
        pair.replace(" ", NBSP) for pair in (
            "Labelled examples: **10**", "Test accuracy (%): **12.3**", "Train time (s): **0.84**",
            "Device: **cpu**")))
    assert second.startswith("**Fine-tune, all (120) per class, seed 2**  \n")
    assert f"Test{NBSP}accuracy{NBSP}(%):{NBSP}**100.0**" in second


def test_a_long_value_wraps_in_the_phone_form_and_a_short_one_stays_whole():
    from ui.kit.tables import Compact, cell_texts, compact_rows

    cells = cell_texts(pd.DataFrame({"Term": ["Weights"], "Memory": ["1.2 GB"],
                                     "Assumption": ["bf16 weights, two bytes each of them"]}))
    assert compact_rows(cells, Compact("{Term}")) == (
        f"**Weights**  \nMemory:{NBSP}**1.2{NBSP}GB** · Assumption:{NBSP}bf16 weights, two bytes each of them")


def test_in_the_handout_every_table_is_an_html_table_that_prints():
    at = _run(_runs_script, view="handout")
    assert not at.dataframe
    (table,) = at.table
    assert len(table.value) == 2 and list(shown(table)["Test accuracy (%)"]) == ["12.3", "100.0"]


def _block_keys(node) -> dict[str, object]:
    """Every keyed container under `node`, by its key, with the container."""
    found = {}
    key = getattr(getattr(node, "proto", None), "id", "") or ""
    if "-" in key:
        found[key.rsplit("-", 1)[-1]] = node
    for child in getattr(node, "children", {}).values():
        found.update(_block_keys(child))
    return found


def test_the_containers_and_css_that_pick_a_layout_by_width():
    from ui.kit.tables import TABLE_CSS

    at = _run(_runs_script)
    assert TABLE_CSS in [h.proto.body for h in at.get("html")]
    # a phone (640 px or less) shows the phone form, wider screens the wide one, print the wide
    phone, wide = TABLE_CSS.split("@media (min-width: 641px)")[0], TABLE_CSS.split("@media print")[1]
    assert "@media (max-width: 640px)" in phone and '[class*="st-key-table_wide_"] { display: none' in phone
    assert '[class*="st-key-table_phone_"] { display: none' in wide
    blocks = _block_keys(at.main)
    assert {"table_runs", "table_wide_runs", "table_phone_runs"} <= set(blocks)
    assert "Markdown" in repr(blocks["table_phone_runs"]) and "Dataframe" in repr(blocks["table_wide_runs"])


def test_text_from_data_shows_literally():
    from ui.kit.tables import markdown_text

    assert markdown_text("[x](https://evil.example) *b* $x$ a_b") == (
        "\\[x\\](https\u2060://evil.example) \\*b\\* \\$x\\$ a\\_b")
    assert markdown_text("1. first") == "1\\. first" and markdown_text("# big") == "\\# big"
    assert markdown_text("see www.example.org or a@b.org") == "see www\u2060.example.org or a@\u2060b.org"
    assert markdown_text("Fine-tune, lr 0.01\n(kept)") == "Fine-tune, lr 0.01 (kept)"

    def script():
        from ui.kit.tables import Compact, show_table

        show_table([{"Upload": "*pets*.zip", "Images": 6}], "uploads", compact=Compact("{Upload}"))

    at = _run(script)
    assert at.table[0].value.loc[0, "Upload"] == "*pets*.zip"  # the data unchanged
    assert shown(at.table[0]).loc[0, "Upload"] == "\\*pets\\*.zip"
    assert at.markdown[0].value.startswith("**\\*pets\\*.zip**  \n")


def test_a_column_of_the_apps_own_markdown_is_not_escaped():
    def script():
        from ui.kit.tables import Compact, show_table

        show_table([{"Backbone": "ResNet_18", "Status": "run `python -m engine fetch-weights`"}], "backbones",
                   compact=Compact("{Backbone}"), markdown=["Status"])

    at = _run(script)
    assert list(shown(at.table[0]).loc[0]) == ["ResNet\\_18", "run `python -m engine fetch-weights`"]
    assert at.markdown[0].value == f"**ResNet\\_18**  \nStatus:{NBSP}run `python -m engine fetch-weights`"


def test_missing_values_show_a_dash():
    def script():
        import pandas as pd

        from ui.kit.tables import show_table

        show_table(pd.DataFrame({"a": [1.0, None]}), "gaps", formats={"a": ".1f"})

    assert list(shown(_run(script).table[0])["a"]) == ["1.0", "–"]


def _table_calls(path) -> list[str]:
    """Every `<something>.table(...)` or `.dataframe(...)` call in a file, as 'file:line'."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [f"{path.relative_to(ROOT)}:{node.lineno}" for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("table", "dataframe", "data_editor")]


def test_every_table_of_the_app_goes_through_show_table():
    files = [ROOT / "app.py", *(ROOT / "pages").glob("*.py"), *(ROOT / "ui").rglob("*.py")]
    direct = [call for path in files if path.name != "tables.py" for call in _table_calls(path)]
    assert not direct, f"tables drawn without ui.kit.tables.show_table: {direct}"
    assert len(_table_calls(ROOT / "ui" / "kit" / "tables.py")) >= 2  # the check sees the helper's own
    users = [p.name for p in files if "show_table(" in p.read_text() and p.name != "tables.py"]
    assert len(users) >= 8, users
