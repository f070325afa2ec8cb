r"""
=============================================
Recovering what layer normalization forgets
=============================================

:ref:`sphx_glr_auto_examples_plot_what_layer_norm_forgets.py` showed that
:class:`~sknorm.LayerNormalizer` throws away each sample's location and scale. What
is thrown away comes in two kinds, and sknorm has one tool for each:

* **dataset-wide scale and offset of each feature** (each sensor below has its
  own typical reading and spread, printed with the data): ``affine=True`` learns
  a per-feature ``gain_`` and ``bias_`` by least squares regression of
  :math:`x_j` on :math:`z_j` and outputs
  :math:`\text{gain}_j z_{ij} + \text{bias}_j`, back in the units of the data.
  This is the gain and bias of the layer-normalization paper, fitted by
  regression instead of back-propagation.
* **each sample's own level and spread**: no per-feature map can bring these
  back, because they differ from sample to sample. ``keep_stats=True`` appends them
  to the output as two extra columns, and ``inverse_transform`` becomes exact.

We measure both with the coefficient of determination :math:`R^2` of the
reconstruction, feature by feature.
"""

# Authors: The sknorm developers
# SPDX-License-Identifier: BSD-3-Clause

# sphinx_gallery_thumbnail_number = 2

# sphinx_gallery_start_ignore
# Run as a script, the example prints its findings and saves its figures into
# sknorm_figures/recover_lost_information/ (paths printed); sphinx-gallery runs the
# code without __file__ and collects the figures itself.
from pathlib import Path

AS_SCRIPT = "__file__" in globals()
FIGURES = Path("sknorm_figures") / "recover_lost_information"


def save_figure(fig, name):
    if AS_SCRIPT:
        FIGURES.mkdir(parents=True, exist_ok=True)
        path = FIGURES / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        print(f"[figure saved to {path.resolve()}]")


# sphinx_gallery_end_ignore

# %%
# Sensors read through a drifting amplifier
# -----------------------------------------
#
# We generate 300 samples of 12 sensors. Each sensor has its own typical level
# :math:`m_j` and spread :math:`s_j`: the dataset-wide offset and scale of feature
# :math:`j`. Each sample is read through an amplifier whose gain :math:`a_i` and
# offset :math:`b_i` drift from one sample to the next:
# :math:`x_{ij} = a_i (m_j + s_j u_{ij}) + b_i` with :math:`u_{ij}` standard
# normal.
import matplotlib.pyplot as plt
import numpy as np

rng = np.random.default_rng(0)
n_samples, n_sensors = 300, 12
sensors = np.arange(1, n_sensors + 1)
level = rng.permutation(np.linspace(50, 250, n_sensors))
spread = rng.uniform(5, 25, n_sensors)
clean = level + spread * rng.normal(size=(n_samples, n_sensors))


def read_out(clean, drift, rng):
    """Apply a per-sample gain and offset whose spread grows with ``drift``."""
    gain = rng.lognormal(sigma=0.05 * drift, size=(len(clean), 1))
    offset = rng.normal(scale=5.0 * drift, size=(len(clean), 1))
    return gain * clean + offset


X = read_out(clean, drift=0.5, rng=rng)
for j in [0, 4, 8]:
    print(
        f"sensor {j + 1}: reads {X[:, j].mean():.1f} +- {X[:, j].std():.1f} "
        f"on average over the samples"
    )

fig, ax = plt.subplots(figsize=(8, 3.2), layout="constrained")
ax.plot(sensors, X[:30].T, color="tab:blue", alpha=0.35, lw=1, marker=".")
ax.plot(sensors, level, color="black", lw=2, marker="o", label="typical level m_j")
ax.set_xlabel("sensor j")
ax.set_xticks(sensors)
ax.set_ylabel("reading")
ax.set_title("30 of the 300 samples")
ax.legend()
# sphinx_gallery_start_ignore
save_figure(plt.gcf(), "figure_1")
# sphinx_gallery_end_ignore
plt.show()

# %%
# Three normalizers, three reconstructions
# ----------------------------------------
#
# * plain :class:`~sknorm.LayerNormalizer`: the output is in standardized units,
#   every row has mean 0 and unit spread; taken as an estimate of ``X`` it is
#   useless.
# * ``affine=True``: each feature is mapped back to the units of ``X`` by its
#   fitted gain and bias.
# * ``keep_stats=True`` then ``inverse_transform``: each row is mapped back with
#   its own kept center and scale.
from sklearn.metrics import r2_score

from sknorm import LayerNormalizer

plain = LayerNormalizer().fit(X)
affine = LayerNormalizer(affine=True).fit(X)
kept = LayerNormalizer(keep_stats=True).fit(X)

reconstructions = {
    "LayerNormalizer()": plain.transform(X),
    "LayerNormalizer(affine=True)": affine.transform(X),
    "keep_stats=True + inverse_transform": kept.inverse_transform(kept.transform(X)),
}
r2 = {
    name: r2_score(X, X_hat, multioutput="raw_values")
    for name, X_hat in reconstructions.items()
}
for name, values in r2.items():
    print(f"{name:>36}: median R2 = {np.median(values):10.3f}")

# %%
# The fitted gain and bias are per-feature arrays, in the units of the data. Being
# least-squares fits, they give every output column exactly the mean of the
# corresponding input column: the dataset-wide offset is back.
print("gain_ =", np.round(affine.gain_, 1))
print("bias_ =", np.round(affine.bias_, 1))
print("column means of X         :", np.round(X.mean(axis=0)[:6], 1))
print(
    "column means of the output:",
    np.round(reconstructions["LayerNormalizer(affine=True)"].mean(axis=0)[:6], 1),
)

# %%
# The kept statistics are two extra output columns, named by
# :meth:`~sknorm.LayerNormalizer.get_feature_names_out`, and they make the
# inverse exact to rounding error:
print(kept.get_feature_names_out()[-4:])
error = np.abs(X - reconstructions["keep_stats=True + inverse_transform"]).max()
print(f"max |X - inverse_transform(transform(X))| = {error:.1e}")

# %%
# Without the statistics there is no inverse: like any scikit-learn estimator
# that cannot invert, the normalizer then has no ``inverse_transform`` method,
# and calling it says which parameter brings it back, instead of returning
# something wrong:
print("has inverse_transform:", hasattr(plain, "inverse_transform"))
try:
    plain.inverse_transform(plain.transform(X))
except AttributeError as exc:
    print(f"AttributeError: {exc}")

# %%
# The three, feature by feature
# -----------------------------
#
# Top: :math:`R^2` per sensor. The plain output has a hugely negative
# :math:`R^2` (it is not even in the units of the data): its bars would reach far
# below the axis, which is cut at -1; a triangle marks each bar that is off the
# scale, and the legend gives the median.
# ``affine=True`` brings back most of each sensor's variance: what is still
# missing is the part due to the per-sample gain and offset, which no per-feature
# map can know, and the part of each row's own mean and spread that came from the
# sensors themselves. With ``keep_stats`` the reconstruction is exact. Bottom: one
# sensor, true value against reconstruction.
colors = ["tab:gray", "tab:orange", "tab:green"]
fig, (ax_r2, ax_scatter) = plt.subplots(
    2, 1, figsize=(8, 7.5), layout="constrained", height_ratios=[1, 1.1]
)
width = 0.27
for k, ((name, values), color) in enumerate(zip(r2.items(), colors, strict=True)):
    positions = sensors + (k - 1) * width
    ax_r2.bar(
        positions,
        np.clip(values, -1, None),
        width=width,
        color=color,
        label=f"{name}: median R2 = {np.median(values):.3g}",
    )
    off_scale = values < -1
    if off_scale.any():
        ax_r2.plot(
            positions[off_scale],
            np.full(off_scale.sum(), -1.08),
            "v",
            color="black",
            markersize=6,
            label="off scale (R2 < -1)" if k == 0 else None,
        )
ax_r2.axhline(0, color="black", lw=0.8)
ax_r2.set_ylim(-1.15, 1.85)
ax_r2.set_yticks([-1, -0.5, 0, 0.5, 1])

ax_r2.set_xticks(sensors)
ax_r2.set_xlabel("sensor j")
ax_r2.set_ylabel("reconstruction R2 (cut at -1)")
ax_r2.set_title("How much of each feature comes back")

j = int(np.argmax(r2["LayerNormalizer(affine=True)"]))
for X_hat, color in zip(reconstructions.values(), colors, strict=True):
    ax_scatter.scatter(X[:, j], X_hat[:, j], s=8, alpha=0.6, color=color)
lims = [X[:, j].min(), X[:, j].max()]
ax_scatter.plot(lims, lims, color="black", lw=0.8, ls="--")
ax_scatter.set_xlabel(f"true reading of sensor {j + 1}")
ax_scatter.set_ylabel("reconstruction")
ax_scatter.set_title(f"Sensor {j + 1}: the plain output sits near 0")
ax_r2.legend(loc="upper center", ncols=2, fontsize=8)
# sphinx_gallery_start_ignore
save_figure(plt.gcf(), "figure_2")
# sphinx_gallery_end_ignore
plt.show()

# %%
# How much the regression can bring back
# --------------------------------------
#
# For feature :math:`j`, the affine reconstruction's :math:`R^2` is the squared
# correlation between :math:`x_j` and :math:`z_j`. It is high when the variation
# of :math:`x_j` across samples is mostly *shape* (what normalization keeps) and
# low when it is mostly per-sample *level and spread* (what normalization
# removes). Turning up the amplifier drift shows the trade-off: the affine
# reconstruction degrades, the kept statistics do not care.
drifts = [0.0, 0.5, 1.0, 2.0, 4.0]
curves = {"LayerNormalizer(affine=True)": [], "keep_stats=True + inverse": []}
for drift in drifts:
    X_drift = read_out(clean, drift=drift, rng=rng)
    X_affine = LayerNormalizer(affine=True).fit_transform(X_drift)
    kept_drift = LayerNormalizer(keep_stats=True).fit(X_drift)
    X_inverse = kept_drift.inverse_transform(kept_drift.transform(X_drift))
    curves["LayerNormalizer(affine=True)"].append(r2_score(X_drift, X_affine))
    curves["keep_stats=True + inverse"].append(r2_score(X_drift, X_inverse))

fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
for (name, values), color in zip(curves.items(), colors[1:], strict=True):
    ax.plot(drifts, values, marker="o", color=color, label=name)
ax.axvline(0.5, color="gray", ls=":", lw=1)
ax.text(0.6, 0.05, "drift of the data\nin the figures above", color="gray")
ax.set_xlabel("amplifier drift (spread of per-sample gain and offset)")
ax.set_ylabel("R2, averaged over features")
ax.set_ylim(0, 1.05)
ax.legend(loc="center right")
ax.set_title("The per-sample part lives only in the kept statistics")
# sphinx_gallery_start_ignore
save_figure(plt.gcf(), "figure_3")
# sphinx_gallery_end_ignore
plt.show()

# %%
# The same measurement for any transformer
# ----------------------------------------
#
# :func:`~sknorm.inspection.reconstruction_r2` measures how much of ``X`` can be
# recovered from any transformer's output, on held-out samples: it fits the
# transformer on one half of the data and maps the outputs of the other half
# back, with the transformer's own ``inverse_transform`` or with the best linear
# map from all output columns to the inputs.
from sklearn.preprocessing import StandardScaler

from sknorm.inspection import reconstruction_r2

for est in [
    LayerNormalizer(),
    LayerNormalizer(affine=True),
    LayerNormalizer(keep_stats=True),
    StandardScaler(),
]:
    r2_est = reconstruction_r2(est, X, random_state=0)
    print(f"{est!r:>35}: R2 = {r2_est:.3f}")

# %%
# Measured this way, ``affine=True`` scores exactly as the plain normalizer: its
# gain and bias are a per-feature affine map of the output, which the linear
# reconstruction can learn by itself. ``affine`` adds no information, it puts the
# output back in the units of the data. Only the kept statistics add the missing
# information, like :class:`~sklearn.preprocessing.StandardScaler`, which forgets
# nothing (its statistics are per column, so they are stored in the fitted
# estimator instead of the output).

# %%
# Which one to use
# ----------------
#
# ``affine=True`` keeps the output in the units of the data, with the same number
# of columns, and plays the role of the learned gain and bias of layer
# normalization in a neural network. Use ``keep_stats=True`` when a downstream
# model may need the per-sample level or spread, or when you need to go back to
# the data: the statistics are ordinary columns that the model can use or ignore.
# :ref:`sphx_glr_auto_examples_plot_when_forgetting_helps.py` shows a case where
# this decides between a useful model and one at chance level.
