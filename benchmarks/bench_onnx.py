"""Benchmark the ONNX graphs of sknorm.onnx in ONNX Runtime against ``transform``.

Run ``python benchmarks/bench_onnx.py`` (needs the ``[onnx]`` extra). For each
configuration and shape (1e5 x 64 and 100 x 16, float64 and float32) it times
``est.transform(X)`` and ``session.run`` of the converted estimator in the same
process, the repeats of both interleaved (a noisy neighbour slows both alike),
each time the minimum over the repeats, and prints a markdown table with the
ratio ONNX Runtime / transform (below 1: ONNX Runtime is faster). There is no
target yet; the ratio is reported. ONNX Runtime uses its default thread pool,
sknorm its default configuration (:func:`sknorm.get_config`).
"""

import argparse
import os
import platform
import time
from functools import partial

import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx

import sknorm
import sknorm.onnx  # noqa: F401  (registers the converters)
from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer

CONFIGS = {
    "LayerNormalizer()": lambda: LayerNormalizer(),
    "LayerNormalizer(keep_stats=True)": lambda: LayerNormalizer(keep_stats=True),
    "RMSNormalizer()": lambda: RMSNormalizer(),
    "GroupNormalizer(4)": lambda: GroupNormalizer(4),
    "LayerNormalizer(median, iqr)": lambda: LayerNormalizer(
        center="median", scale="iqr"
    ),
}
SHAPES = [(100_000, 64), (100, 16)]


def time_interleaved(funcs, repeats, inner):
    """Minimum time per call of each function, their repeats interleaved."""
    best = [np.inf] * len(funcs)
    for _ in range(repeats):
        for i, f in enumerate(funcs):
            start = time.perf_counter()
            for _ in range(inner):
                f()
            best[i] = min(best[i], (time.perf_counter() - start) / inner)
    return best


def machine():
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        cpus = os.cpu_count()
    return (
        f"{platform.processor() or platform.machine()}, {cpus} CPUs; "
        f"sknorm {sknorm.__version__}, onnxruntime {ort.__version__}, "
        f"numpy {np.__version__}; sknorm engine {sknorm.get_config()['engine']}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(machine())
    print()
    print("| estimator | shape | dtype | transform | ONNX Runtime | ratio |")
    print("|---|---|---|---|---|---|")
    for shape in SHAPES:
        for dtype in (np.float64, np.float32):
            X = (rng.normal(size=shape) * 3 + 10).astype(dtype)
            inner = 1 if shape[0] * shape[1] > 1e5 else 200
            for name, make in CONFIGS.items():
                est = make().fit(X)
                sess = ort.InferenceSession(
                    to_onnx(est, X[:1]).SerializeToString(),
                    providers=["CPUExecutionProvider"],
                )
                feed = {sess.get_inputs()[0].name: X}
                got = sess.run(None, feed)[0]
                np.testing.assert_allclose(got, est.transform(X), rtol=1e-5, atol=1e-5)
                t_sk, t_ort = time_interleaved(
                    [partial(est.transform, X), partial(sess.run, None, feed)],
                    args.repeats,
                    inner,
                )
                print(
                    f"| {name} | {shape[0]} x {shape[1]} | {np.dtype(dtype).name} "
                    f"| {t_sk * 1e3:.3f} ms | {t_ort * 1e3:.3f} ms "
                    f"| {t_ort / t_sk:.2f} |"
                )


if __name__ == "__main__":
    main()
