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


def _run_example(example, cwd):
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    # Import sknorm from this checkout even when it is not installed.
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
    )
    result = subprocess.run(
        [sys.executable, str(example)],
        cwd=cwd,
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
    return result.stdout


@pytest.mark.parametrize("example", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs(example, tmp_path):
    pytest.importorskip("matplotlib")
    _run_example(example, tmp_path)


def test_readme_demo_prints_findings_and_saves_figures(tmp_path):
    # README's "Try it" runs this script on machines without a display: what it
    # shows must be printed, and its figures must land in files it names.
    pytest.importorskip("matplotlib")
    demo = REPO_ROOT / "examples" / "plot_what_layer_norm_forgets.py"
    out = _run_example(demo, tmp_path)
    saved = [
        Path(line.removeprefix("[figure saved to ").removesuffix("]"))
        for line in out.splitlines()
        if line.startswith("[figure saved to ")
    ]
    assert len(saved) == 4, out
    for path in saved:
        assert path.is_relative_to(tmp_path), path
        assert path.read_bytes().startswith(b"\x89PNG"), path
    # The invariance table is printed: one line per transformer.
    for name in ["LayerNormalizer", "RMSNormalizer", "StandardScaler", "Normalizer"]:
        assert any(line.startswith(name) for line in out.splitlines()), out
    assert "sample_shift" in out
