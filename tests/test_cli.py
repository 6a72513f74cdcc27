"""The command line refuses bad input in one line with a non-zero exit, writes its CSV, and runs
a sweep without the app's drawing libraries (plotly, streamlit) installed."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from engine.core.device import pick_device

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args,message", [
    (["--target", "imagenet"], "unknown dataset 'imagenet'"),
    (["--source", "nope"], "unknown dataset 'nope'"),
    (["--strategies", "scratch,lora"], "unknown strategy 'lora'"),
    (["--labels", "1,500"], "at most"),
    (["--labels", "0"], "must be positive"),
    (["--labels", "two"], "positive integers or 'all'"),
    (["--seeds", "0"], "seeds must be"),
    (["--backbone", "vgg99"], "unknown backbone"),
    (["--out", "/no/such/folder/runs.csv"], "does not exist"),
])
def test_bad_input_is_refused_in_one_line(args, message, capsys):
    """`main` as `python -m engine` calls it, in this process (a process each would cost a
    torch import); the next test checks the same contract across a real process boundary."""
    from engine.__main__ import main

    assert main(["sweep", "--no-progress", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error:")


def test_bad_input_in_a_real_process_is_one_line_and_exit_2():
    proc = run_cli("sweep", "--no-progress", "--labels", "1,500")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "at most" in lines[0] and lines[0].startswith("error:")
    assert "Traceback" not in proc.stderr


def test_sweep_writes_the_csv(pretrained, tmp_path):
    out = tmp_path / "runs.csv"
    proc = run_cli("sweep", "--strategies", "scratch,probe", "--labels", "1,2", "--seeds", "2",
                   "--store", str(tmp_path / "store.sqlite"), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    df = pd.read_csv(out)
    for col in ("strategy", "labels_per_class", "seed", "test_accuracy", "train_seconds", "device"):
        assert col in df.columns
    assert len(df) == 8 and set(df["strategy"]) == {"scratch", "probe"}
    assert df["test_accuracy"].between(0, 100).all() and (df["device"] == pick_device().type).all()
    assert "loaded from cache" in proc.stdout and "runs: 8 trained, 0 reused" in proc.stdout
    again = run_cli("sweep", "--strategies", "scratch,probe", "--labels", "1,2", "--seeds", "2",
                    "--store", str(tmp_path / "store.sqlite"), "--no-progress")
    assert again.returncode == 0 and "runs: 0 trained, 8 reused" in again.stdout


# Installed first thing in the subprocess (a sitecustomize.py on PYTHONPATH): any import of
# these packages fails as if they were not installed.
NO_UI_PACKAGES = """
import sys

REFUSED = ("plotly", "streamlit")


class RefuseUiPackages:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSED:
            raise ModuleNotFoundError(f"No module named '{name}' (refused by this test)", name=name)
        return None


sys.meta_path.insert(0, RefuseUiPackages())
"""


def test_a_sweep_runs_without_plotly_or_streamlit(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NO_UI_PACKAGES)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(ROOT)]),
               TRANSFERLAB_HOME=str(tmp_path / "home"))
    refused = subprocess.run([sys.executable, "-c", "import plotly"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "refused by this test" in refused.stderr
    proc = subprocess.run([sys.executable, "-m", "engine", "sweep", "--source", "untrained",
                           "--strategies", "probe", "--labels", "1", "--seeds", "1",
                           "--device", "cpu", "--no-progress"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "refused by this test" not in proc.stderr
    assert "runs: 1 trained, 0 reused" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if "labels/class" in line).split()
    assert row[:3] == ["probe", "1", "labels/class"] and row[-2:] == ["(1", "seed)"]
    assert 0.0 <= float(row[3].rstrip("%")) <= 100.0
    assert (tmp_path / "home" / "results.sqlite").exists()


def _runs(gaps_by_size, scratch=60.0):
    """Paired runs of scratch and probe: at each size, probe = scratch + that seed's gap."""
    rows = []
    for k, gaps in gaps_by_size.items():
        for seed, gap in enumerate(gaps):
            base = scratch + 2.0 * ((seed * 7) % 3)
            rows += [{"strategy": "scratch", "labels_per_class": k, "all_labels": False,
                      "seed": seed, "test_accuracy": base, "n_train": 10 * k},
                     {"strategy": "probe", "labels_per_class": k, "all_labels": False,
                      "seed": seed, "test_accuracy": base + gap, "n_train": 10 * k}]
    return pd.DataFrame(rows)


def test_the_command_line_says_when_a_gap_was_not_called_for_want_of_seeds(capsys):
    """Under the readings, one line names the gaps of at least a point whose interval holds 0
    (with enough seeds to be read) and points to --seeds; none when every such gap is called,
    or when the sides have too few seeds to be read at all."""
    from engine.__main__ import print_readings
    from engine.experiments.readings.curves import sweep_readings

    print_readings(sweep_readings(_runs({2: [14.0, 15.0, 16.0], 5: [1.0, 15.0, 8.0]})))
    out = capsys.readouterr().out
    assert out.splitlines()[-1] == (
        "1 gap quoted above is at least 1 point yet not called: its interval holds 0. Level "
        "there means these runs cannot tell the two apart yet, not that they are equal; more "
        "seeds narrow the intervals (--seeds).")
    assert "5 labels per class: +8.0 points" in out  # the gap it means, quoted above
    print_readings(sweep_readings(_runs({2: [14.0, 15.0, 16.0], 5: [8.0, 9.0, 8.5]})))
    assert "yet not called" not in capsys.readouterr().out
    print_readings(sweep_readings(_runs({2: [14.0, 15.0], 5: [1.0, 15.0]})))
    out = capsys.readouterr().out
    assert "too few seeds" in out and "yet not called" not in out
