r"""
================================
What layer normalization forgets
================================

scikit-learn's :class:`~sklearn.preprocessing.StandardScaler` standardizes each
*column* over the samples. :class:`~sknorm.LayerNormalizer` standardizes each *row*
over its features:

.. math::

    z_{ij} = \frac{x_{ij} - \mu_i}{\sqrt{v_i + \varepsilon}}, \qquad
    \mu_i = \frac{1}{d}\sum_j x_{ij}, \qquad
    v_i = \frac{1}{d}\sum_j (x_{ij} - \mu_i)^2.

Each sample loses its own location :math:`\mu_i` and scale :math:`\sqrt{v_i}`:
two numbers per sample are thrown away. This example makes that loss visible: rows
that collapse onto one, the sphere where every output lives, the number of input
directions the transform cannot see, and a table of the transformations of the
data that the output does not notice, measured with :mod:`sknorm.inspection`.
"""

# Authors: The sknorm developers
# SPDX-License-Identifier: BSD-3-Clause

# sphinx_gallery_thumbnail_number = 4

# sphinx_gallery_start_ignore
# Run as a script (python examples/plot_what_layer_norm_forgets.py), the example
# prints its findings and saves every figure into a folder of the current
# directory, printing its path; it also opens them where matplotlib has a
# display. sphinx-gallery runs the code without __file__ and collects the figures
# itself.
from pathlib import Path

AS_SCRIPT = "__file__" in globals()
FIGURES = Path("sknorm_figures") / "what_layer_norm_forgets"


def save_figure(fig, name):
    if AS_SCRIPT:
        FIGURES.mkdir(parents=True, exist_ok=True)
        path = FIGURES / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        print(f"[figure saved to {path.resolve()}]")


# sphinx_gallery_end_ignore

# %%
# Three different rows, one output
# --------------------------------
#
# The second row is the first plus 3, the third is the first times 2. For a
# per-sample normalizer these are the same sample: a shift and a positive
# re-scaling of a row are exactly what it is built to ignore.
import numpy as np

from sknorm import LayerNormalizer

X = np.array(
    [
        [1.0, 2.0, 3.0, 4.0],
        [4.0, 5.0, 6.0, 7.0],  # = row 0 + 3
        [2.0, 4.0, 6.0, 8.0],  # = row 0 * 2
    ]
)
Z = LayerNormalizer().fit_transform(X)
print(np.round(Z, 2))

# %%
# All three rows map to :math:`[-1.34, -0.45, 0.45, 1.34]`. They agree to about
# six decimals, not exactly: the :math:`\varepsilon` added to the variance
# (``eps=1e-5``) is a larger fraction of the first two rows' variance (1.25) than
# of the third's (5), so the third row comes out a hair larger. ``eps`` keeps a
# constant row finite; the price is that scale invariance holds only for rows
# whose variance is large compared to ``eps``.
print(f"largest difference between the rows: {np.ptp(Z, axis=0).max():.1e}")

# %%
# The function twin :func:`~sknorm.layer_norm` (as
# :func:`~sklearn.preprocessing.scale` is to
# :class:`~sklearn.preprocessing.StandardScaler`) can also return what it removed:
# each row's center and scale. These two numbers per row are exactly the
# information that is missing from the output.
from sknorm import layer_norm, rms_norm

Z, center, scale = layer_norm(X, return_stats=True)
print("centers:", center, " scales:", np.round(scale, 3))

# %%
# RMS normalization, :func:`~sknorm.rms_norm`, divides each row by its root mean
# square without centering it. It forgets only the scale: the doubled row still
# collapses onto the first one, the shifted row does not.
print(np.round(rms_norm(X), 2))

# %%
# A column-wise scaler sees three different samples, because the columns differ
# from one row to the next. Let us plot the rows before and after both.
import matplotlib.pyplot as plt
from sklearn.preprocessing import StandardScaler

Z_standard = StandardScaler().fit_transform(X)

fig, axes = plt.subplots(1, 3, figsize=(8, 3.4), layout="constrained", sharey=True)
labels = ["[1, 2, 3, 4]", "[4, 5, 6, 7] = row + 3", "[2, 4, 6, 8] = row x 2"]
markers = ["o", "s", "^"]
panels = [
    (X, "Input rows"),
    (Z, "After LayerNormalizer\n(one row: the three coincide)"),
    (Z_standard, "After StandardScaler\n(three different rows)"),
]
for ax, (data, title) in zip(axes, panels, strict=True):
    for row, label, marker in zip(data, labels, markers, strict=True):
        ax.plot(range(1, 5), row, marker=marker, markersize=8, alpha=0.7, label=label)
    ax.set_title(title)
    ax.set_xlabel("feature j")
    ax.set_xticks(range(1, 5))
    ax.grid(alpha=0.3)
axes[0].set_ylabel("value")
axes[0].legend(loc="upper left", fontsize=8)
# sphinx_gallery_start_ignore
save_figure(fig, "1_rows")
# sphinx_gallery_end_ignore
plt.show()

# %%
# The geometry: a sphere inside a plane
# -------------------------------------
#
# Every output row has mean 0 and (up to ``eps``) mean square 1, so
#
# .. math::
#
#     \sum_j z_{ij} = 0 \quad\text{and}\quad \|z_i\|_2 = \sqrt{d}.
#
# The outputs lie on the sphere of radius :math:`\sqrt{d}` in the hyperplane
# orthogonal to :math:`\mathbf{1} = (1, \dots, 1)`: a :math:`(d-2)`-dimensional
# sphere. With :math:`d = 3` features that is a circle, which we can draw. We take
# a cloud of 3-feature samples with very different levels and spreads, and color
# every point by its per-sample mean :math:`\mu_i`.
rng = np.random.default_rng(0)
n_samples, d = 400, 3
X3 = rng.normal(scale=0.6, size=(n_samples, d))
X3 = X3 * rng.uniform(0.5, 2.0, size=(n_samples, 1)) + rng.normal(
    scale=1.5, size=(n_samples, 1)
)
Z3 = LayerNormalizer().fit_transform(X3)
row_means = X3.mean(axis=1)

print(f"row sums of the output: max |sum| = {np.abs(Z3.sum(axis=1)).max():.1e}")
norms = np.linalg.norm(Z3, axis=1)
print(f"row norms: {norms.min():.4f} to {norms.max():.4f}, sqrt(3) = {np.sqrt(3):.4f}")

# %%
# The norms are :math:`\sqrt{d\,v_i / (v_i + \varepsilon)}`, a hair below
# :math:`\sqrt{d}`; the few visibly smaller ones belong to rows whose three values
# happen to be almost equal, so that their variance is not large compared to
# ``eps``.

# %%
# Left, the input cloud (crosses) and the output circle (dots) in 3-D, with the
# direction :math:`\mathbf{1}` along which the per-sample mean moves a point. Right, the
# output seen from that direction, in coordinates of the plane
# :math:`\sum_j z_j = 0`: every point sits on the circle, and the colors (the
# per-sample means) are scattered all around it. Nothing in the output tells a
# bright sample from a dark one.

# An orthonormal basis of the plane sum(z) = 0.
u = np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
w = np.array([1.0, 1.0, -2.0]) / np.sqrt(6)

fig = plt.figure(figsize=(8.5, 4.4), layout="constrained")
ax3d = fig.add_subplot(1, 2, 1, projection="3d")
ax3d.scatter(*X3.T, c=row_means, cmap="coolwarm", s=6, alpha=0.5, marker="x")
ax3d.scatter(*Z3.T, c=row_means, cmap="coolwarm", s=12, alpha=1.0)
t = np.linspace(0, 2 * np.pi, 200)
circle = np.sqrt(3) * (np.outer(np.cos(t), u) + np.outer(np.sin(t), w))
ax3d.plot(*circle.T, color="black", lw=1)
ax3d.quiver(0, 0, 0, 2.5, 2.5, 2.5, color="black", arrow_length_ratio=0.15)
ax3d.text(2.7, 2.7, 2.7, "1 = (1, 1, 1)")
for set_lim in (ax3d.set_xlim, ax3d.set_ylim, ax3d.set_zlim):
    set_lim(-4, 4)
ax3d.set_xlabel("x1")
ax3d.set_ylabel("x2")
ax3d.set_zlabel("x3")
ax3d.set_title("inputs (crosses) and\noutputs (dots, on the circle)")
ax3d.view_init(elev=25, azim=10)

ax2d = fig.add_subplot(1, 2, 2)
sc = ax2d.scatter(Z3 @ u, Z3 @ w, c=row_means, cmap="coolwarm", s=12)
ax2d.plot(circle @ u, circle @ w, color="black", lw=1, zorder=0)
ax2d.set_aspect("equal")
ax2d.set_xlabel("coordinate along (1, -1, 0) / sqrt(2)")
ax2d.set_ylabel("coordinate along (1, 1, -2) / sqrt(6)")
ax2d.set_title("outputs in the plane sum(z) = 0:\na circle of radius sqrt(3)")
fig.colorbar(sc, ax=ax2d, label="per-sample mean of the input")
# sphinx_gallery_start_ignore
save_figure(fig, "2_sphere_in_a_plane")
# sphinx_gallery_end_ignore
plt.show()

# %%
# Counting the lost directions
# ----------------------------
#
# Near any sample :math:`x`, moving along :math:`\mathbf{1}` (a shift) or along
# :math:`x - \mu\mathbf{1}` (a re-scaling about the mean) does not change the
# output: the Jacobian of the transform has a null space of dimension 2.
# :func:`~sknorm.inspection.collapsed_directions` measures this rank deficit
# numerically, sample by sample, for any fitted transformer. Layer normalization
# collapses 2 directions per sample, RMS normalization (no centering) 1, group
# normalization 2 per group, and a column-wise scaler none. With
# ``keep_stats=True`` the two statistics are part of the output, and nothing is
# collapsed any more.
from sknorm import GroupNormalizer, RMSNormalizer
from sknorm.inspection import collapsed_directions

X12 = rng.normal(size=(20, 12)) * 3 + 5
candidates = {
    "LayerNormalizer()": LayerNormalizer(),
    "RMSNormalizer()": RMSNormalizer(),
    "GroupNormalizer(2)": GroupNormalizer(2),
    "GroupNormalizer(3)": GroupNormalizer(3),
    "LayerNormalizer(keep_stats=True)": LayerNormalizer(keep_stats=True),
    "StandardScaler()": StandardScaler(),
}
lost = {
    name: collapsed_directions(est.fit(X12), X12) for name, est in candidates.items()
}
for name, per_sample in lost.items():
    print(f"{name:>34}: {np.unique(per_sample)} of 12 directions lost at every sample")

# %%
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
bars = ax.barh(list(lost), [np.median(v) for v in lost.values()], color="tab:purple")
ax.bar_label(bars, padding=3)
ax.invert_yaxis()
ax.set_xlabel("input directions collapsed at a sample (of d = 12)")
ax.set_xticks(range(0, 13))
ax.set_title("Rank deficit of the Jacobian")
ax.grid(axis="x", alpha=0.3)
# sphinx_gallery_start_ignore
save_figure(fig, "3_collapsed_directions")
# sphinx_gallery_end_ignore
plt.show()

# %%
# The invariance table
# --------------------
#
# Ba, Kiros & Hinton (2016, Table 1) list which re-scalings and re-centerings
# batch, weight and layer normalization are invariant to. Their data columns are
# columns here: "dataset re-scaling" is ``dataset_scale``, "dataset re-centering"
# (one vector added to every sample) is ``feature_shift``, and "single training
# case re-scaling" is ``sample_scale``.
# :func:`~sknorm.inspection.invariance_table` measures the same thing on your data
# and for any transformer: it applies each transformation to ``X``, re-fits the
# transformer, and checks whether the output changed. Here for the two per-sample
# normalizers of sknorm and for scikit-learn's column-wise
# :class:`~sklearn.preprocessing.StandardScaler` and row-wise
# :class:`~sklearn.preprocessing.Normalizer` (which divides by the L2 norm and
# does not center).
from sklearn.preprocessing import Normalizer

from sknorm.inspection import invariance_table, plot_invariance_table

X_table = rng.normal(size=(50, 6)) * 2 + 3
table = invariance_table(
    {
        "LayerNormalizer": LayerNormalizer(),
        "RMSNormalizer": RMSNormalizer(),
        "StandardScaler": StandardScaler(),
        "Normalizer": Normalizer(),
    },
    X_table,
    random_state=0,
)
print(table.to_string())

# %%
# Read it by column. Per-sample shift and scale are invisible to
# :class:`~sknorm.LayerNormalizer`; :class:`~sknorm.RMSNormalizer` and
# :class:`~sklearn.preprocessing.Normalizer` forget only the scale.
# :class:`~sklearn.preprocessing.StandardScaler` forgets the opposite things: the
# per-feature (column) shifts and scales. Only a change of units of the whole
# dataset is forgotten by all of them, and all of them treat the features alike,
# so reordering the columns only reorders the output.
# :func:`~sknorm.inspection.plot_invariance_table` draws the table:
fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
plot_invariance_table(table, ax=ax)
ax.set_title(
    "Is the re-fitted output unchanged by this transformation of X?\n"
    "(feature permutation: unchanged up to a reordering of the output columns)"
)
# sphinx_gallery_start_ignore
save_figure(fig, "4_invariance_table")
# sphinx_gallery_end_ignore
plt.show()

# %%
# What next
# ---------
#
# The two numbers per sample are gone from the output, but they are not gone for
# good: :ref:`sphx_glr_auto_examples_plot_recover_lost_information.py` shows how
# ``affine=True`` restores the dataset-wide scale and offset of each feature and
# how ``keep_stats=True`` restores everything, and
# :ref:`sphx_glr_auto_examples_plot_when_forgetting_helps.py` shows on a real
# dataset when forgetting them helps a model and when it hurts.
