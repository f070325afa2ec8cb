"""sknorm.show_versions(): the report pasted into bug reports."""

import importlib.util
import platform
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import scipy
import sklearn
from threadpoolctl import threadpool_info

import sknorm


def _report(capsys, **config):
    with sknorm.config_context(**config):
        sknorm.show_versions()
    return capsys.readouterr().out


def _value(report, key):
    """The value printed for ``key`` (right-aligned ``key: value`` lines)."""
    match = re.search(rf"^\s*{re.escape(key)}: (.*)$", report, flags=re.MULTILINE)
    assert match, f"no line for {key!r} in\n{report}"
    return match[1]


def test_reports_python_platform_and_sknorm(capsys):
    report = _report(capsys)
    assert _value(report, "python").startswith(platform.python_version())
    assert _value(report, "executable") == sys.executable
    assert _value(report, "sknorm") == sknorm.__version__
    # Where the imported sknorm lives: tells an installed wheel from a checkout.
    assert _value(report, "location") == str(
        importlib.util.find_spec("sknorm").submodule_search_locations[0]
    )


def test_reports_runtime_dependencies(capsys):
    report = _report(capsys)
    for name, module in [
        ("numpy", np),
        ("scipy", scipy),
        ("scikit-learn", sklearn),
        ("pandas", pd),
    ]:
        assert _value(report, name) == module.__version__


def test_reports_engine_configuration(capsys):
    report = _report(capsys, engine="numpy", n_threads=1)
    assert _value(report, "engine") == "numpy"
    assert _value(report, "n_threads") == "1"


def test_optional_dependencies_installed_or_none(capsys):
    report = _report(capsys)
    for module, name in [
        ("numba", "numba"),
        ("dask", "dask"),
        ("matplotlib", "matplotlib"),
        ("cupy", "cupy"),
        ("pyspark", "pyspark"),
        ("onnxruntime", "onnxruntime"),
    ]:
        printed = _value(report, name)
        if importlib.util.find_spec(module) is None:
            assert printed == "None"
        else:
            assert printed == importlib.import_module(module).__version__


def test_reports_thread_pools(capsys):
    report = _report(capsys)
    assert "threadpoolctl info:" in report
    for pool in threadpool_info():
        assert pool["filepath"] in report


def test_imports_no_optional_package():
    # A bug report must be possible even when an optional package is broken.
    code = (
        "import sys, sknorm; sknorm.show_versions(); "
        "print(sorted(m for m in ('numba', 'dask', 'torch', 'matplotlib', "
        "'pyspark', 'onnxruntime') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
