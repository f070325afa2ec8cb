"""
=====================================
Serve a pipeline with ONNX Runtime
=====================================

A fitted pipeline usually leaves the notebook to be served somewhere that has no
Python scikit-learn stack: a web service, a phone, a database. The common route
is ONNX: :func:`skl2onnx.to_onnx` turns the pipeline into a graph, and ONNX
Runtime runs it. Importing :mod:`sknorm.onnx` registers the converters of
:class:`~sknorm.LayerNormalizer`, :class:`~sknorm.RMSNormalizer` and
:class:`~sknorm.GroupNormalizer`, so that a pipeline with an sknorm step
converts like any other.

This example converts a digit classifier whose first step is a robust
per-image normalization, runs it in ONNX Runtime and checks that the served
model gives the same labels and probabilities, and that the normalization
itself agrees with ``transform`` to rounding, on hard rows too. It needs the
``[onnx]`` extra: ``pip install "sknorm[onnx]"``. See :doc:`/onnx` for what
converts and what is refused.
"""

# Authors: The sknorm developers
# SPDX-License-Identifier: BSD-3-Clause

# sphinx_gallery_start_ignore
# Without the [onnx] extra (skl2onnx, onnxruntime) there is nothing to show:
# run as a script, the example then says so and exits cleanly. The docs build
# installs the extra (it is part of [docs]).
from pathlib import Path

AS_SCRIPT = "__file__" in globals()
FIGURES = Path("sknorm_figures") / "onnx_serving"

try:
    import onnxruntime  # noqa: F401
    import skl2onnx  # noqa: F401
except ImportError:
    print("This example needs the [onnx] extra: pip install 'sknorm[onnx]'.")
    raise SystemExit(0) from None


def save_figure(fig, name):
    if AS_SCRIPT:
        FIGURES.mkdir(parents=True, exist_ok=True)
        path = FIGURES / f"{name}.png"
        fig.savefig(path, dpi=110)
        print(f"[figure saved to {path.resolve()}]")


# sphinx_gallery_end_ignore

# %%
# Fit a pipeline
# --------------
#
# Digits whose brightness and contrast vary from image to image: a
# :class:`~sknorm.LayerNormalizer` with the median and the interquartile range
# removes both, keeps them as two extra columns (``keep_stats=True``), and a
# logistic regression classifies.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from sknorm import LayerNormalizer

X, y = load_digits(return_X_y=True)
rng = np.random.default_rng(0)
X = X * rng.uniform(0.5, 3.0, (len(X), 1)) + rng.uniform(-20, 20, (len(X), 1))
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)

pipe = make_pipeline(
    LayerNormalizer(center="median", scale="iqr", keep_stats=True),
    LogisticRegression(max_iter=1000),
)
pipe.fit(X_train, y_train)
print(f"test accuracy in scikit-learn: {pipe.score(X_test, y_test):.3f}")

# %%
# Convert it to ONNX
# ------------------
#
# Import :mod:`sknorm.onnx` once; then :func:`skl2onnx.to_onnx` converts the
# pipeline from one sample of the input (its dtype decides the graph's: float64
# here, so the graph computes in double). ``zipmap=False`` returns the
# probabilities as one array instead of a list of dictionaries. The model is a
# file: this is what you deploy.
import onnxruntime as ort
from skl2onnx import to_onnx

import sknorm.onnx  # noqa: F401  (registers the sknorm converters)

onx = to_onnx(pipe, X_train[:1], options={LogisticRegression: {"zipmap": False}})
model_bytes = onx.SerializeToString()
opset = max(o.version for o in onx.opset_import if o.domain == "")
print(f"ONNX model: {len(model_bytes) / 1024:.0f} KiB, opset {opset}")

# %%
# Serve it with ONNX Runtime
# --------------------------
#
# On the serving side only ``onnxruntime`` and numpy are needed.
sess = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
labels, proba = sess.run(None, {sess.get_inputs()[0].name: X_test})
same = np.mean(labels == pipe.predict(X_test))
gap = np.abs(proba - pipe.predict_proba(X_test)).max()
print(f"same label for {same:.1%} of the test images")
print(f"largest probability difference: {gap:.1e}")

# %%
# The normalization step alone, on hard rows
# ------------------------------------------
#
# The converter computes what ``transform`` computes, with the same numerics:
# rows far from zero (the corrected two-pass mean), NaN ignored in a row's
# statistics and kept in the output, constant rows to 0. Here the layer
# normalization of rows ``1e6 + N(0, 1)`` with some NaN, converted on its own,
# against ``transform``.
ln = LayerNormalizer(keep_stats=True)
hard = 1e6 + rng.normal(size=(2000, 32))
hard[rng.random(hard.shape) < 0.05] = np.nan
hard[:10] = 1e6 + 0.1  # constant rows
ln.fit(hard)
sess_ln = ort.InferenceSession(
    to_onnx(ln, hard[:1]).SerializeToString(), providers=["CPUExecutionProvider"]
)
served = sess_ln.run(None, {sess_ln.get_inputs()[0].name: hard})[0]
expected = ln.transform(hard)
z_served, z_expected = served[:, :32], expected[:, :32]
diff = np.abs(z_served - z_expected)[~np.isnan(z_expected)]
print(f"NaN in the same places: {np.array_equal(np.isnan(served), np.isnan(expected))}")
print(f"constant rows served as zeros: {bool((served[:10, :32] == 0).all())}")
print(f"largest difference on the normalized values: {diff.max():.1e}")

# %%
# The figure compares both: the served probabilities against scikit-learn's
# (on the diagonal), and how far the served normalized values are from
# ``transform``'s, in units of float64 rounding (``2**-52``, about 2.2e-16).
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(8, 3.8))
ax0.plot([0, 1], [0, 1], color="0.7", lw=1)
ax0.scatter(
    pipe.predict_proba(X_test).ravel(), proba.ravel(), s=4, alpha=0.4, color="C0"
)
ax0.set(
    xlabel="predict_proba (scikit-learn)",
    ylabel="probability (ONNX Runtime)",
    title=f"Digit pipeline: {same:.0%} same labels",
)
ulps = diff / np.finfo(np.float64).eps
ax1.hist(ulps, bins=np.arange(0, max(ulps.max(), 4) + 1.5) - 0.5, color="C1")
ax1.set(
    xlabel="|ONNX Runtime - transform| (multiples of 2**-52)",
    ylabel="normalized values",
    title="Rows 1e6 + N(0, 1), float64",
)
ax1.set_yscale("log")
fig.tight_layout()
save_figure(fig, "agreement")

# %%
# What to remember
# ----------------
#
# * ``import sknorm.onnx`` once, then ``skl2onnx.to_onnx(pipeline, X[:1])``:
#   every option of the three normalizers converts, float32 and float64.
# * The graph reproduces ``transform`` to rounding, NaN and constant rows
#   included; it needs opset 11 or later.
# * :doc:`/onnx` lists what is refused at conversion time, and what the graph
#   does differently (``inf`` input, values beyond about ``1e150``).
