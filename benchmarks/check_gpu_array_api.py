"""Check sknorm's Array API path on a GPU, and time it against PyTorch.

1. Correctness: fit_transform (and inverse_transform with kept statistics) of
   several LayerNormalizer / RMSNormalizer / GroupNormalizer configurations on
   torch tensors (and CuPy arrays when installed and the device is CUDA) with
   ``sklearn.config_context(array_api_dispatch=True)``: the output must stay
   on the device in the input's dtype and equal the NumPy path (float64:
   <= 1e-12 relative to the output's scale; float32: <= 3e-5). One PASS/FAIL
   line per case.
2. Speed: ``LayerNormalizer().transform`` end to end on float32 tensors of
   1e6 x 64 and 1e5 x 1024 against ``torch.nn.functional.layer_norm`` on the
   same tensors (the fused kernel; same eps), each the minimum over repeats
   with the device synchronized, and the ratio (the target is at most 3x).
   Both outputs are also compared with a float64 NumPy reference of the same
   data, so the ratio is read next to what each one's accuracy is.

Run from the repository root::

    python benchmarks/check_gpu_array_api.py                  # CUDA
    python benchmarks/check_gpu_array_api.py --device cpu --quick

``--device cpu`` runs everything on CPU tensors (a quick check that the
script works, or a CPU comparison); ``--quick`` uses small arrays. Without
torch, or with ``--device cuda`` and no CUDA, it prints SKIP and exits 0.
Exits 1 on any FAIL.
"""

import argparse
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
    X[6] *= 1e-300  # tiny row: its kept scale must not underflow
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


def best_time(func, sync, repeats):
    """Minimum wall time of ``func()`` over ``repeats`` synchronized runs."""
    func()  # warm-up (allocator, kernels)
    sync()
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        sync()
        best = min(best, time.perf_counter() - t0)
    return best


def time_against_torch(torch, device, shape, repeats):
    """LayerNormalizer().transform vs torch's layer_norm on one float32 tensor."""
    n, p = shape
    rng = np.random.default_rng(1)
    # Rows with a large offset: where a one-pass variance loses digits.
    X = (rng.normal(size=(n, p)) + rng.normal(scale=100, size=(n, 1))).astype(
        np.float32
    )
    X_dev = torch.asarray(X, device=device)
    eps = 1e-5
    est = LayerNormalizer(eps=eps)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def run_sknorm():
        with sklearn.config_context(array_api_dispatch=True):
            return est.transform(X_dev)

    def run_torch():
        return torch.nn.functional.layer_norm(X_dev, (p,), eps=eps)

    t_sk = best_time(run_sknorm, sync, repeats)
    t_torch = best_time(run_torch, sync, repeats)
    # Accuracy against float64 (sknorm's statistics are float64 on devices
    # that have it; torch's fused kernel accumulates in float32).
    X64 = X.astype(np.float64)
    ref = (X64 - X64.mean(axis=1, keepdims=True)) / np.sqrt(
        X64.var(axis=1, keepdims=True) + eps
    )
    err_sk = float(np.abs(to_numpy(run_sknorm()) - ref).max())
    err_torch = float(np.abs(to_numpy(run_torch()) - ref).max())
    print(
        f"TIMING {n}x{p} float32 on {device}: sknorm transform {t_sk * 1e3:.2f} ms, "
        f"torch layer_norm {t_torch * 1e3:.2f} ms, ratio {t_sk / t_torch:.2f}x "
        f"(target <= 3x); max abs error vs float64: sknorm {err_sk:.1e}, "
        f"torch {err_torch:.1e}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="torch device (cuda, cpu)")
    parser.add_argument("--quick", action="store_true", help="small arrays")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("SKIP: torch is not installed")
        return 0
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("SKIP: torch.cuda.is_available() is False (try --device cpu)")
        return 0
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(
        f"torch {torch.__version__} on {name}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}"
    )
    ok = True
    on_device = lambda a: isinstance(a, torch.Tensor) and a.device.type == device.type  # noqa: E731
    n_check = 300 if args.quick else 3000
    for dtype in ("float64", "float32"):
        X = make_data(n_check, 48, dtype)
        for est in ESTIMATORS:
            ok &= check(
                f"torch-{device.type}",
                est,
                X,
                lambda a: torch.asarray(a, device=device),
                on_device,
            )
    if device.type == "cuda":
        try:
            import cupy
        except ImportError:
            print("SKIP cupy: not installed")
        else:
            on_cupy = lambda a: isinstance(a, cupy.ndarray)  # noqa: E731
            for dtype in ("float64", "float32"):
                X = make_data(n_check, 48, dtype)
                for est in ESTIMATORS[:3] + ESTIMATORS[5:6]:
                    ok &= check("cupy", est, X, cupy.asarray, on_cupy)

    shapes = [(10**6, 64), (10**5, 1024)]
    if args.quick:
        shapes = [(10**4, 64), (10**3, 1024)]
    repeats = args.repeats or (3 if args.quick else 10)
    for shape in shapes:
        time_against_torch(torch, device, shape, repeats)
    print("ALL PASS" if ok else "SOME FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
