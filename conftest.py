"""Test-session setup: the Array API switch, and collection rules for the doctests.

``sknorm/_numba.py`` and ``sknorm/_numba_robust.py`` hold the optional compiled
kernels and import numba at module level; they are loaded only when numba is
installed (``sknorm[fast]``), so their doctests are collected only then;
likewise ``sknorm/onnx.py`` (skl2onnx, ``sknorm[onnx]``).
"""

import importlib.metadata
import importlib.util
import os
import re


def _array_api_dispatch_possible():
    """Whether scikit-learn can dispatch to the Array API here, found without
    importing scipy: scipy >= 1.14 and array_api_compat (installed, or the copy
    that recent scikit-learn vendors)."""
    try:
        scipy_version = importlib.metadata.version("scipy")
    except importlib.metadata.PackageNotFoundError:
        return False
    major, minor = (int(re.match(r"\d+", p)[0]) for p in scipy_version.split(".")[:2])
    if (major, minor) < (1, 14):
        return False
    if importlib.util.find_spec("array_api_compat") is not None:
        return True
    sklearn = importlib.util.find_spec("sklearn")
    return sklearn is not None and any(
        os.path.isdir(os.path.join(d, "externals", "array_api_compat"))
        for d in sklearn.submodule_search_locations or []
    )


# scikit-learn's Array API dispatch (sklearn.set_config(array_api_dispatch=True))
# needs SCIPY_ARRAY_API=1 in the environment before scipy is first imported, and
# this file is loaded before any test module imports scipy. Set here, the Array
# API tests (tests/test_array_api.py, tests/test_differential.py) run in the plain
# `python -m pytest` instead of skipping; SCIPY_ARRAY_API=0 turns them off.
if _array_api_dispatch_possible():
    os.environ.setdefault("SCIPY_ARRAY_API", "1")

collect_ignore = []
if importlib.util.find_spec("numba") is None:
    collect_ignore += ["sknorm/_numba.py", "sknorm/_numba_robust.py"]
# sknorm.onnx imports skl2onnx at module level (an ImportError naming the
# [onnx] extra without it): its doctests run only where the extra is installed.
if importlib.util.find_spec("skl2onnx") is None:
    collect_ignore.append("sknorm/onnx.py")
