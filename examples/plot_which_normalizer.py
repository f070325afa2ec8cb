"""
=================================================
Which normalizer when: one dataset through each
=================================================

Every per-sample normalizer forgets something about each sample, and each
column-wise scaler something else. This example puts one dataset through the
normalizers of sknorm, their options, and scikit-learn's
:class:`~sklearn.preprocessing.StandardScaler` and
:class:`~sklearn.preprocessing.Normalizer`, in the spirit of scikit-learn's
"Compare the effect of different scalers on data with outliers". For each one it
shows what is left of each sample's **mean** (its level) and of its **scale**
(its spread), measures both, scores two tasks that need one or the other, and
prints a verdict. The user guide's :ref:`which_normalizer` table sums it up.
"""

# Authors: The sknorm developers
# SPDX-License-Identifier: BSD-3-Clause

# sphinx_gallery_thumbnail_number = 3

# sphinx_gallery_start_ignore
# Run as a script, the example prints its findings and saves its figures into
# sknorm_figures/which_normalizer/ (paths printed); sphinx-gallery runs the code
# without __file__ and collects the figures itself.
from pathlib import Path

AS_SCRIPT = "__file__" in globals()
FIGURES = Path("sknorm_figures") / "which_normalizer"


def save_figure(fig, name):
    if AS_SCRIPT:
        FIGURES.mkdir(parents=True, exist_ok=True)
        path = FIGURES / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        print(f"[figure saved to {path.resolve()}]")


# sphinx_gallery_end_ignore

# %%
# The data: spectra with a gain, an offset and a few spikes
# ---------------------------------------------------------
#
# 400 spectra of 24 channels. Each is one of two compounds (the position of a
# band, the *shape* of the row), recorded with its own gain :math:`a_i` and
# offset :math:`b_i`; one spectrum in ten has a spike in one channel. Two tasks:
# tell the compound (the signal is the shape; gain and offset are nuisance), and
# tell whether the gain is high (the signal is the scale).
import matplotlib.pyplot as plt
import numpy as np

rng = np.random.default_rng(0)
n_samples, n_channels = 400, 24
grid = np.linspace(0, 1, n_channels)
compound = rng.integers(0, 2, n_samples)
band = np.where(compound == 1, 0.56, 0.44)[:, None]
shape = 3 * np.exp(-0.5 * ((grid - band) / 0.08) ** 2)
shape += 1.8 * np.exp(-0.5 * ((grid - 0.85) / 0.06) ** 2)
shape += rng.normal(scale=0.4, size=shape.shape)
gain = rng.lognormal(sigma=0.8, size=(n_samples, 1))
offset = rng.normal(scale=6.0, size=(n_samples, 1))
X = gain * shape + offset
spiked = rng.random(n_samples) < 0.1
X[spiked, rng.integers(0, n_channels, spiked.sum())] += 8 * gain[spiked, 0]
high_gain = (gain[:, 0] > np.median(gain)).astype(int)

row_mean = X.mean(axis=1)
row_scale = X.std(axis=1)
print(f"{n_samples} spectra, {n_channels} channels, {spiked.sum()} with a spike")
print(f"row means from {row_mean.min():.1f} to {row_mean.max():.1f}")
print(f"row standard deviations from {row_scale.min():.2f} to {row_scale.max():.2f}")

# %%
# The candidates
# --------------
#
# ``GroupNormalizer(2)`` normalizes the first and the last 12 channels
# separately; ``affine=True`` and ``keep_stats=True`` are shown on
# :class:`~sknorm.LayerNormalizer`, and work the same on the others.
from sklearn.preprocessing import Normalizer, StandardScaler

from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer

methods = {
    "LayerNormalizer()": LayerNormalizer(),
    "RMSNormalizer()": RMSNormalizer(),
    "GroupNormalizer(2)": GroupNormalizer(2),
    "median / MAD": LayerNormalizer(center="median", scale="mad"),
    "affine=True": LayerNormalizer(affine=True),
    "keep_stats=True": LayerNormalizer(keep_stats=True),
    "StandardScaler()": StandardScaler(),
    "Normalizer()": Normalizer(),
}
outputs = {name: method.fit_transform(X) for name, method in methods.items()}

# %%
# What is left of each sample's mean and scale
# --------------------------------------------
#
# Each panel is the output of one method, projected on its first two principal
# components, every sample coloured by the mean of its *input* row. Where the
# colours stay sorted, the output still knows each sample's level; where they are
# mixed, it was forgotten. The two clouds are the two compounds.
from sklearn.decomposition import PCA


def plot_outputs(color, label, cmap, norm=None):
    fig, axes = plt.subplots(2, 4, figsize=(8, 4.8), layout="constrained")
    for ax, (name, Z) in zip(axes.ravel(), outputs.items(), strict=True):
        projected = PCA(n_components=2).fit_transform(Z)
        points = ax.scatter(*projected.T, c=color, cmap=cmap, norm=norm, s=5)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(points, ax=axes, label=label, shrink=0.8)
    return fig


fig = plot_outputs(row_mean, "mean of the input row", "coolwarm")
# sphinx_gallery_start_ignore
save_figure(fig, "1_coloured_by_mean")
# sphinx_gallery_end_ignore
plt.show()

# %%
# The same outputs coloured by each sample's standard deviation (log scale):
from matplotlib.colors import LogNorm

fig = plot_outputs(
    row_scale, "standard deviation of the input row", "viridis", norm=LogNorm()
)
# sphinx_gallery_start_ignore
save_figure(fig, "2_coloured_by_scale")
# sphinx_gallery_end_ignore
plt.show()

# %%
# Measured: what is forgotten, and two tasks
# ------------------------------------------
#
# Whether a fitted method forgets each sample's mean (or scale) is measured
# directly: shift every row by its own random amount (or multiply it by its own
# random factor), transform again with the *same* fitted method, and compare.
# An output that moves by less than 1% (``eps`` accounts for the little it moves
# on rows of small spread) has forgotten it. Then two 5-fold cross-validated
# tasks, each model behind a :class:`~sklearn.preprocessing.StandardScaler` so
# that every method is scored alike:
#
# * the compound (the shape), with k-nearest neighbors: they compare samples by
#   distance, so any gain or offset left in the output costs accuracy;
# * the high gain (the scale), with a logistic regression: a threshold on
#   whatever scale information is left.
#
# Chance is about 0.5 for both.
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline

shift = rng.normal(scale=3.0, size=(n_samples, 1))
factor = rng.lognormal(sigma=0.5, size=(n_samples, 1))


def forgets(method, moved):
    Z = method.fit(X).transform(X)
    change = np.abs(method.transform(moved) - Z).max() / np.abs(Z).max()
    return bool(change < 0.01)


def accuracy(method, classifier, y):
    model = make_pipeline(method, StandardScaler(), classifier)
    return cross_val_score(model, X, y, cv=5).mean()


summary = pd.DataFrame(
    {
        "forgets mean": [forgets(m, X + shift) for m in methods.values()],
        "forgets scale": [forgets(m, X * factor) for m in methods.values()],
        "compound (shape)": [
            accuracy(m, KNeighborsClassifier(), compound) for m in methods.values()
        ],
        "high gain (scale)": [
            accuracy(m, LogisticRegression(max_iter=2000), high_gain)
            for m in methods.values()
        ],
    },
    index=list(methods),
)
print(summary.round(3).to_string())

# %%
# The two accuracies side by side; the dashed line is chance.
fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
positions = np.arange(len(summary))
for k, (task, color) in enumerate(
    [("compound (shape)", "tab:blue"), ("high gain (scale)", "tab:orange")]
):
    ax.barh(positions + (k - 0.5) * 0.38, summary[task], 0.38, color=color, label=task)
ax.axvline(0.5, color="black", ls="--", lw=1, label="chance")
ax.set_yticks(positions, summary.index)
ax.invert_yaxis()
ax.set_xlim(0, 1)
ax.set_xlabel("cross-validated accuracy")
fig.legend(loc="outside lower center", ncols=3, fontsize=9)
ax.set_title("What each output is good for")
# sphinx_gallery_start_ignore
save_figure(fig, "3_accuracies")
# sphinx_gallery_end_ignore
plt.show()

# %%
# The verdict
# -----------
#
# Written from the measured table, not by hand: which information survives, and
# what that makes the method good for on this data.


def verdict(row):
    lost = [
        what
        for what, gone in [
            ("mean", row["forgets mean"]),
            ("scale", row["forgets scale"]),
        ]
        if gone
    ]
    forgotten = " and ".join(lost) if lost else "nothing per sample"
    shape, scale = row["compound (shape)"], row["high gain (scale)"]
    uses = []
    if shape >= 0.9:
        uses.append("the shape task")
    if scale >= 0.9:
        uses.append("the scale task")
    good = " and ".join(uses) if uses else "neither task"
    return (
        f"forgets {forgotten}; good for {good} "
        f"(accuracy {shape:.2f} on shape, {scale:.2f} on scale)"
    )


for name, row in summary.iterrows():
    print(f"{name:>18}: {verdict(row)}")

# %%
# Reading the verdicts:
#
# * :class:`~sknorm.LayerNormalizer` forgets both the level and the spread of
#   each sample: a clean input for the compound, no use for the gain.
#   ``median / MAD`` forgets the same, with statistics the spikes cannot move.
# * :class:`~sknorm.RMSNormalizer` and :class:`~sklearn.preprocessing.Normalizer`
#   divide by a norm and do not center: they forget the scale only, and the
#   offset, relative to the norm, still says a little about the gain.
# * ``GroupNormalizer(2)`` forgets a level and a spread *per half* of the
#   channels: right when the halves come from two instruments.
# * ``affine=True`` forgets exactly what the plain normalizer forgets: its gain
#   and bias are per feature, the same for all samples.
# * ``keep_stats=True`` forgets nothing: the normalized shape and the two
#   statistics are all in the output, and the same output serves both tasks.
# * :class:`~sklearn.preprocessing.StandardScaler` forgets nothing per sample
#   (it scales columns), but the gain and the offset stay mixed into every
#   feature, which costs the distance-based model accuracy on the compound.
#
# The numbers are measured each time the example runs; change the data (more
# spikes, a wider gain) and the verdicts follow.
