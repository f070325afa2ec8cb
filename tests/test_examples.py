"""Run every example of the gallery as a script.

The examples are the documentation's promise (what is lost, how it is recovered),
so they must keep running against the current code. Each runs in a fresh
interpreter with the non-interactive Agg backend, as sphinx-gallery runs them when
the docs are built. The full docs build (``bash docs/build.sh``) checks the
rendering; this test only needs matplotlib.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.py"))


def test_examples_exist():
    names = [path.name for path in EXAMPLES]
    assert names, "no example found in examples/"
    assert all(name.startswith("plot_") for name in names), names


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs(example, tmp_path):
    pytest.importorskip("matplotlib")
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    # Import sknorm from this checkout even when it is not installed.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    result = subprocess.run(
        [sys.executable, str(example)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, (
        f"{example.name} failed with exit code {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-3000:]}\n"
        f"--- stderr ---\n{result.stderr[-3000:]}"
    )
