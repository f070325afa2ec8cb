"""Accuracy and behaviour of sknorm next to other row standardizers.

Measures the numbers of the docs' "Related projects" page:

* accuracy: the largest absolute error of the standardized output, on rows of
  ``offset + N(0, 1)`` (offset 0 and 1e6), against a long-double two-pass
  reference computed from the very input each method receives (a float32
  method is judged on the float32-rounded data, so the rounding of the input
  itself is not counted against it), with the method's own ``eps``;
* behaviour: what each does with a NaN entry, a constant row, and float32 input.

Every package other than numpy, scikit-learn and sknorm is optional: a method
whose package is not installed is reported as such. To measure all of them::

    python -m pip install torch pyts tslearn chemotools keras
    KERAS_BACKEND=torch python benchmarks/accuracy_related.py
"""

import importlib.metadata
import os
import platform
import warnings

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "torch")


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def reference(X, eps):
    """Row standardization in long double with the exact two-pass formula."""
    x = np.asarray(X, dtype=np.longdouble)
    mean = x.sum(axis=1, keepdims=True) / x.shape[1]
    dev = x - mean
    var = (dev * dev).sum(axis=1, keepdims=True) / x.shape[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return dev / np.sqrt(var + np.longdouble(eps))


# -- the methods: name -> (package, eps, function of a float array) ----------


def _sknorm(X):
    from sknorm import layer_norm

    return layer_norm(X, eps=1e-5)


def _sklearn_scale(X):
    from sklearn.preprocessing import scale

    with warnings.catch_warnings():
        # scale warns "Numerical issues were encountered" on offset rows.
        warnings.simplefilter("ignore", UserWarning)
        return scale(X, axis=1)


def _sklearn_normalizer(X):
    from sklearn.preprocessing import Normalizer

    return Normalizer().fit_transform(X)


def _numpy_two_pass(X):
    mean = X.mean(axis=1, keepdims=True)
    return (X - mean) / np.sqrt(X.var(axis=1, keepdims=True) + 1e-5)


def _numpy_one_pass(X):
    mean = X.mean(axis=1, keepdims=True)
    var = (X * X).mean(axis=1, keepdims=True) - mean * mean
    return (X - mean) / np.sqrt(np.maximum(var, 0) + 1e-5)


def _torch(X):
    import torch

    t = torch.from_numpy(np.ascontiguousarray(X))
    return torch.nn.functional.layer_norm(t, (X.shape[1],), eps=1e-5).numpy()


def _keras(X):
    import keras

    layer = keras.layers.LayerNormalization(epsilon=1e-5, dtype=str(X.dtype))
    return keras.ops.convert_to_numpy(layer(X))


def _chemotools(X):
    from chemotools.scatter import StandardNormalVariate

    return StandardNormalVariate().fit_transform(X)


def _pyts(X):
    from pyts.preprocessing import StandardScaler

    return StandardScaler().fit_transform(X)


def _tslearn(X):
    from tslearn.preprocessing import TimeSeriesScalerMeanVariance

    return TimeSeriesScalerMeanVariance().fit_transform(X[:, :, None])[:, :, 0]


METHODS = {
    "sknorm layer_norm": ("sknorm", 1e-5, _sknorm),
    "sklearn scale(X, axis=1)": ("scikit-learn", 0.0, _sklearn_scale),
    "numpy (X - mean) / sqrt(var + eps)": ("numpy", 1e-5, _numpy_two_pass),
    "numpy one pass, E[x^2] - E[x]^2": ("numpy", 1e-5, _numpy_one_pass),
    "torch layer_norm (CPU)": ("torch", 1e-5, _torch),
    "keras LayerNormalization": ("keras", 1e-5, _keras),
    "chemotools StandardNormalVariate": ("chemotools", 0.0, _chemotools),
    "pyts StandardScaler": ("pyts", 0.0, _pyts),
    "tslearn TimeSeriesScalerMeanVariance": ("tslearn", 0.0, _tslearn),
}
# Behaviour only: it divides by the L2 norm, it does not standardize.
BEHAVIOUR_ONLY = {"sklearn Normalizer": ("scikit-learn", None, _sklearn_normalizer)}


def _error(function, X, eps):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Z = np.asarray(function(X), dtype=np.float64)
    return float(np.max(np.abs(Z - reference(X, eps).astype(np.float64))))


def _describe(function, X):
    """What ``function`` does with the row(s) X: output, warning or error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            Z = np.asarray(function(X), dtype=np.float64)
        except Exception as exc:  # any error is the behaviour being reported
            return f"error ({type(exc).__name__})"
    # Deprecation notices of a package's own internals are not about the input.
    caught = [w for w in caught if not issubclass(w.category, DeprecationWarning)]
    note = " + warning" if caught else ""
    return Z, note


def _nan_behaviour(function):
    X = np.array([[1.0, 2.0, np.nan, 4.0, 5.0]])
    result = _describe(function, X)
    if isinstance(result, str):
        return result
    Z, note = result
    if np.isnan(Z).all():
        return "whole row NaN" + note
    if np.isnan(Z[0, 2]) and np.isfinite(np.delete(Z, 2)).all():
        return "NaN ignored, kept" + note
    return "other" + note


def _constant_behaviour(function):
    result = _describe(function, np.array([[3.0, 3.0, 3.0, 3.0]]))
    if isinstance(result, str):
        return result
    Z, note = result
    if np.isnan(Z).all():
        return "NaN" + note
    if (Z == 0).all():
        return "zeros" + note
    return f"{Z[0, 0]:.3g}..." + note


def _float32_behaviour(function):
    X = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return str(np.asarray(function(X)).dtype)
        except Exception as exc:  # reported, not raised
            return f"error ({type(exc).__name__})"


def main():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((1000, 256))
    offsets = [0.0, 1e6]
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, "
        + ", ".join(
            f"{name} {_version(name) or 'not installed'}"
            for name in ["sknorm", "scikit-learn", "torch", "keras"]
            + ["chemotools", "pyts", "tslearn"]
        )
    )
    print(f"rows of offset + N(0, 1), {noise.shape[0]} x {noise.shape[1]}")
    print("max |output - long-double reference|, same eps as the method")
    print()
    header = "| method | eps | " + " | ".join(
        f"float64, offset {o:g} | float32, offset {o:g}" for o in offsets
    )
    print(header + " |")
    print("|---" * (2 + 2 * len(offsets)) + "|")
    for name, (package, eps, function) in METHODS.items():
        cells = []
        for offset in offsets:
            for dtype in (np.float64, np.float32):
                X = (offset + noise).astype(dtype)
                if _version(package) is None:
                    cells.append("not installed")
                    continue
                cells.append(f"{_error(function, X, eps):.1e}")
        print(f"| {name} | {eps:g} | " + " | ".join(cells) + " |")

    print()
    print("| method | NaN entry | constant row | float32 in -> out |")
    print("|---|---|---|---|")
    for name, (package, _, function) in {**METHODS, **BEHAVIOUR_ONLY}.items():
        if _version(package) is None:
            print(f"| {name} | not installed | | |")
            continue
        print(
            f"| {name} | {_nan_behaviour(function)} | "
            f"{_constant_behaviour(function)} | {_float32_behaviour(function)} |"
        )


if __name__ == "__main__":
    main()
