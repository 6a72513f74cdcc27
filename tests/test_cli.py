"""The command line refuses bad input in one line with a non-zero exit, and writes its CSV."""

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
def test_bad_input_is_refused_in_one_line(args, message):
    proc = run_cli("sweep", "--no-progress", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and lines[0].startswith("error:")
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
