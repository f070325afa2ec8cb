"""System, dependency and configuration report to paste into a bug report."""

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

# The runtime dependencies (pyproject.toml) and the packages scikit-learn brings
# along that decide how sknorm runs (threads, pickling).
_DEPENDENCIES = [
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "joblib",
    "threadpoolctl",
    "pip",
    "setuptools",
]

# The packages of the optional extras and of the inputs sknorm accepts, by
# distribution name; a missing one is reported as None.
_OPTIONAL = [
    "numba",
    "dask",
    "distributed",
    "array-api-compat",
    "array-api-strict",
    "torch",
    "cupy",
    "pyspark",
    "onnx",
    "onnxruntime",
    "skl2onnx",
    "matplotlib",
    "polars",
    "pyarrow",
    "skops",
]


def _version_or_none(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _system_info():
    return {
        "python": sys.version.replace("\n", " "),
        "executable": sys.executable,
        "machine": platform.platform(),
        "cpu count": os.cpu_count(),
    }


def _config_info():
    from . import __file__ as location
    from . import __version__, get_config

    info = {"sknorm": __version__, "location": os.path.dirname(location)}
    info.update(get_config())
    for variable in ("SKNORM_ENGINE", "SKNORM_NUM_THREADS", "SCIPY_ARRAY_API"):
        info[variable] = os.environ.get(variable)
    return info


def show_versions():
    """Print the versions of sknorm, its dependencies and the system.

    Paste the output into a bug report: it names the Python interpreter and
    platform, sknorm's version, location and engine configuration (with the
    environment variables that set it), the versions of the runtime and the
    optional dependencies (None when not installed), and the BLAS and OpenMP
    thread pools that threadpoolctl finds.

    Versions are read from the installed packages' metadata: no optional package
    is imported.

    See Also
    --------
    get_config : The engine configuration printed here.

    Examples
    --------
    >>> from sknorm import show_versions
    >>> show_versions()  # doctest: +SKIP
    """
    sections = [
        ("System", _system_info()),
        ("sknorm", _config_info()),
        ("Python dependencies", {n: _version_or_none(n) for n in _DEPENDENCIES}),
        ("Optional dependencies", {n: _version_or_none(n) for n in _OPTIONAL}),
    ]
    for title, info in sections:
        print(f"\n{title}:")
        width = max(len(key) for key in info)
        for key, value in info.items():
            print(f"{key:>{width}}: {value}")

    # threadpoolctl is a dependency of scikit-learn, so it is always there.
    from threadpoolctl import threadpool_info

    pools = threadpool_info()
    print("\nthreadpoolctl info:")
    if not pools:
        print("  no thread pool found")
    for k, pool in enumerate(pools):
        if k:
            print()
        width = max(len(key) for key in pool)
        for key, value in pool.items():
            print(f"{key:>{width}}: {value}")
