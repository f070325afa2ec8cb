"""Check sknorm's Array API path on a GPU: torch CUDA (and CuPy) vs NumPy.

Runs fit_transform (and inverse_transform with kept statistics) of several
LayerNormalizer / RMSNormalizer / GroupNormalizer configurations on CUDA
tensors with ``sklearn.config_context(array_api_dispatch=True)``, and checks
that the output stays on the GPU in the input's dtype and equals the NumPy
path (float64: <= 1e-12 relative to the output's scale; float32: <= 3e-5).
Prints one PASS/FAIL line per case, a timing, and exits 1 on any FAIL::

    python benchmarks/check_gpu_array_api.py          # from the repository root

Without CUDA it prints SKIP and exits 0.
"""

import os
import sys
import time

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # before scipy/sklearn import
sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn.base import clone  # noqa: E402

from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer  # noqa: E402

ESTIMATORS = [
    LayerNormalizer(),
    LayerNormalizer(affine=True, keep_stats=True),
    LayerNormalizer(center="median", scale="iqr", keep_stats=True),
    LayerNormalizer(center="median", scale="mad", affine=True),
    RMSNormalizer(affine=True, keep_stats=True, eps=0.0),
    GroupNormalizer(groups=4, affine=True, keep_stats=True),
    GroupNormalizer(groups=[[0, 5, 9], list(range(20, 40))], remainder="drop"),
]


def make_data(n_samples, n_features, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    X *= rng.uniform(0.1, 10, size=(n_samples, 1))
    X += rng.normal(scale=100, size=(n_samples, 1))
    X[1, 3] = np.nan
    X[2, 0] = np.nan
    X[3, :] = np.nan
    X[4, :] = 7.0
    X[5] = 1e8 + rng.normal(scale=1e-3, size=n_features)
    return X.astype(dtype)


def to_numpy(a):
    if hasattr(a, "get"):  # CuPy
        return a.get()
    return a.detach().cpu().numpy()


def rel_err(got, expected):
    both = np.isnan(got) & np.isnan(expected)
    if not np.array_equal(np.isnan(got), np.isnan(expected)):
        return np.inf
    diff = np.abs(np.where(both, 0, got - expected))
    return float(diff.max() / max(1.0, np.nanmax(np.abs(expected))))


def check(name, est, X, to_device, is_on_device):
    # float32: the NumPy engine takes a float32 row's median in float32.
    tol = 1e-12 if X.dtype == np.float64 else 3e-5
    ref = clone(est).fit(X)
    Y_ref = ref.transform(X)
    X_dev = to_device(X)
    with sklearn.config_context(array_api_dispatch=True):
        fitted = clone(est).fit(X_dev)
        Y = fitted.transform(X_dev)
        back = None
        if est.keep_stats and getattr(est, "remainder", "") != "drop":
            back = fitted.inverse_transform(Y)
    problems = []
    if not is_on_device(Y):
        problems.append(f"output not on the device ({type(Y)})")
    Y_np = to_numpy(Y)
    if Y_np.dtype != X.dtype:
        problems.append(f"dtype {Y_np.dtype} != {X.dtype}")
    err = rel_err(Y_np, Y_ref)
    if err > tol:
        problems.append(f"transform differs: {err:.2e} > {tol:.0e}")
    if back is not None:
        err_back = rel_err(to_numpy(back), ref.inverse_transform(Y_ref))
        if err_back > tol:
            problems.append(f"inverse differs: {err_back:.2e}")
    if est.affine:
        gain_err = rel_err(to_numpy(fitted.gain_), ref.gain_)
        if gain_err > (1e-12 if X.dtype == np.float64 else 1e-4):
            problems.append(f"gain_ differs: {gain_err:.2e}")
    status = "FAIL" if problems else "PASS"
    desc = " ".join(repr(est).split())
    print(f"{status} {name} {X.dtype} {desc}: max rel err {err:.1e} {problems}")
    return not problems


def main():
    try:
        import torch
    except ImportError:
        print("SKIP: torch is not installed")
        return 0
    if not torch.cuda.is_available():
        print("SKIP: torch.cuda.is_available() is False")
        return 0
    print(
        f"torch {torch.__version__} on {torch.cuda.get_device_name()}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}"
    )
    ok = True
    cuda = torch.device("cuda")
    on_cuda = lambda a: isinstance(a, torch.Tensor) and a.device.type == "cuda"  # noqa: E731
    for dtype in ("float64", "float32"):
        X = make_data(3000, 48, dtype)
        for est in ESTIMATORS:
            ok &= check(
                "torch-cuda", est, X, lambda a: torch.asarray(a, device=cuda), on_cuda
            )
    try:
        import cupy
    except ImportError:
        print("SKIP cupy: not installed")
    else:
        on_cupy = lambda a: isinstance(a, cupy.ndarray)  # noqa: E731
        for dtype in ("float64", "float32"):
            X = make_data(3000, 48, dtype)
            for est in ESTIMATORS[:3] + ESTIMATORS[5:6]:
                ok &= check("cupy", est, X, cupy.asarray, on_cupy)

    # A timing: LayerNormalizer(affine=True) fit_transform, GPU vs NumPy.
    X = make_data(200_000, 256, "float32", seed=1)
    est = LayerNormalizer(affine=True, keep_stats=True)
    t0 = time.perf_counter()
    clone(est).fit_transform(X)
    t_np = time.perf_counter() - t0
    X_dev = torch.asarray(X, device=cuda)
    with sklearn.config_context(array_api_dispatch=True):
        clone(est).fit_transform(X_dev)  # warm-up
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        clone(est).fit_transform(X_dev)
        torch.cuda.synchronize()
    t_gpu = time.perf_counter() - t0
    print(
        f"TIMING LayerNormalizer(affine=True, keep_stats=True).fit_transform on "
        f"200000x256 float32: numpy {t_np:.3f} s, torch cuda {t_gpu:.3f} s"
    )
    print("ALL PASS" if ok else "SOME FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
