"""
=====================================
Per-sample normalization in pipelines
=====================================

Real tables rarely consist of one homogeneous block of features. This example
builds a scikit-learn :class:`~sklearn.pipeline.Pipeline` for a table with two
spectra from two instruments, a numeric column and a categorical column:

* a :class:`~sklearn.compose.ColumnTransformer` sends the spectra to a
  :class:`~sknorm.GroupNormalizer` that normalizes each sample *within each
  instrument*, using named groups of named columns, and the other columns to the
  usual column-wise transformers;
* :class:`~sklearn.model_selection.GridSearchCV` chooses between ``affine`` and
  ``keep_stats`` by cross-validation;
* ``set_output(transform="pandas")`` keeps column names all the way through.
"""

# Authors: The sknorm developers
# SPDX-License-Identifier: BSD-3-Clause

# sphinx_gallery_thumbnail_number = 2

# sphinx_gallery_start_ignore
# Run as a script, the example prints its findings and saves its figures into
# sknorm_figures/pipelines/ (paths printed); sphinx-gallery runs the
# code without __file__ and collects the figures itself.
from pathlib import Path

AS_SCRIPT = "__file__" in globals()
FIGURES = Path("sknorm_figures") / "pipelines"


def save_figure(fig, name):
    if AS_SCRIPT:
        FIGURES.mkdir(parents=True, exist_ok=True)
        path = FIGURES / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        print(f"[figure saved to {path.resolve()}]")


# sphinx_gallery_end_ignore

# %%
# A table with two instruments
# ----------------------------
#
# Each of 400 samples is measured by two spectrometers, ``nir`` (16 channels) and
# ``raman`` (10 channels), each with its own per-sample gain and offset that
# change from one measurement to the next. We also record the ``temperature``
# and the ``site`` where the sample was measured. The label depends on the
# *shape* of the ``nir`` spectrum (the ratio of two bands) and on the *level* of
# the ``raman`` spectrum: the Raman instrument is calibrated, and its level is a
# concentration.
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

rng = np.random.default_rng(0)
n_samples = 400


def bands(n_channels, centers, width):
    grid = np.linspace(0, 1, n_channels)
    return np.stack([np.exp(-0.5 * ((grid - c) / width) ** 2) for c in centers])


ratio = rng.uniform(-1, 1, n_samples)
nir_clean = np.column_stack([1 + 0.5 * ratio, 1 - 0.5 * ratio]) @ bands(
    16, [0.3, 0.7], 0.12
)
nir = (
    rng.lognormal(sigma=0.5, size=(n_samples, 1)) * (10 + 20 * nir_clean)
    + rng.normal(scale=5.0, size=(n_samples, 1))
    + rng.normal(scale=0.5, size=(n_samples, 16))
)

concentration = rng.uniform(0.5, 2.0, n_samples)
raman = concentration[:, None] * (5 + 10 * bands(10, [0.5], 0.2)[0])
raman += rng.normal(scale=0.3, size=raman.shape)

temperature = rng.normal(25, 3, n_samples)
site = rng.choice(["lab", "field"], n_samples)

nir_columns = [f"nir_{k}" for k in range(16)]
raman_columns = [f"raman_{k}" for k in range(10)]
df = pd.concat(
    [
        pd.DataFrame(nir, columns=nir_columns),
        pd.DataFrame(raman, columns=raman_columns),
        pd.DataFrame({"temperature": temperature, "site": site}),
    ],
    axis=1,
)
y = (ratio + (concentration - 1.25) * 1.5 + rng.normal(scale=0.2, size=n_samples)) > 0
df.head()

# %%
# Normalizing within each instrument
# ----------------------------------
#
# :class:`~sknorm.GroupNormalizer` takes the groups as a dictionary from a group
# name to its columns. Fitted on a DataFrame, the columns can be given by name.
# Here we normalize the spectra of a few samples and plot them before and after,
# the ``nir`` spectra colored by their band ratio and the ``raman`` spectra by
# their concentration. The gains and offsets are gone, and in the ``nir`` group
# the ratio between the two bands (the signal) is plain to see. In the ``raman``
# group all normalized spectra are the same whatever their color: the
# concentration, a level, is gone too. That is a hint that the statistics should
# be kept.
from sknorm import GroupNormalizer

groups = {"nir": nir_columns, "raman": raman_columns}
spectra = df[nir_columns + raman_columns]
normalized = GroupNormalizer(groups).set_output(transform="pandas")
normalized = normalized.fit_transform(spectra)

fig, axes = plt.subplots(2, 2, figsize=(8, 5.8), layout="constrained", sharex="col")
shown = rng.choice(n_samples, size=8, replace=False)
columns_and_colors = [
    (nir_columns, ratio, "nir band ratio", "viridis"),
    (raman_columns, concentration, "raman concentration", "plasma"),
]
for k, (columns, value, label, cmap_name) in enumerate(columns_and_colors):
    norm = plt.Normalize(value.min(), value.max())
    cmap = plt.get_cmap(cmap_name)
    for ax, data, stage in zip(
        axes[:, k], [spectra, normalized], ["raw", "normalized"], strict=True
    ):
        for i in shown:
            ax.plot(
                data.iloc[i][columns].to_numpy(),
                color=cmap(norm(value[i])),
                marker=".",
            )
        ax.set_title(f"{columns[0].split('_')[0]} spectrum, {stage}")
    axes[1, k].set_xlabel("channel")
    fig.colorbar(
        plt.cm.ScalarMappable(norm=norm, cmap=cmap),
        ax=axes[:, k],
        location="bottom",
        label=f"color: {label}",
        shrink=0.8,
    )
# sphinx_gallery_start_ignore
save_figure(plt.gcf(), "figure_1")
# sphinx_gallery_end_ignore
plt.show()

# %%
# The functional form :func:`~sknorm.group_norm` computes the same thing on an
# array, with the groups given as lists of column indices:
from sknorm import group_norm

index_groups = [list(range(16)), list(range(16, 26))]
same = np.allclose(group_norm(spectra.to_numpy(), index_groups), normalized)
print(f"group_norm matches GroupNormalizer: {same}")

# %%
# The pipeline
# ------------
#
# The spectra go to the :class:`~sknorm.GroupNormalizer`, the temperature to a
# :class:`~sklearn.preprocessing.StandardScaler`, the site to a
# :class:`~sklearn.preprocessing.OneHotEncoder`; a logistic regression follows.
# ``set_output(transform="pandas")`` on the pipeline makes every step return a
# DataFrame.
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

preprocess = ColumnTransformer(
    [
        ("spectra", GroupNormalizer(groups), nir_columns + raman_columns),
        ("temperature", StandardScaler(), ["temperature"]),
        ("site", OneHotEncoder(sparse_output=False), ["site"]),
    ]
)
model = Pipeline(
    [("preprocess", preprocess), ("classifier", LogisticRegression(max_iter=1000))]
).set_output(transform="pandas")
model  # noqa: B018 (displayed by the gallery)

# %%
# Grid search over what to give back
# ----------------------------------
#
# Should the pipeline keep each sample's per-instrument center and scale as
# features, and should it fit a per-feature gain and bias? We let 5-fold
# cross-validation decide. The parameters of the group normalizer are reached
# through the step names, ``preprocess__spectra__...``.
from sklearn.model_selection import GridSearchCV

search = GridSearchCV(
    model,
    {
        "preprocess__spectra__affine": [False, True],
        "preprocess__spectra__keep_stats": [False, True],
    },
    cv=5,
)
search.fit(df, y)
results = pd.DataFrame(search.cv_results_)[
    [
        "param_preprocess__spectra__affine",
        "param_preprocess__spectra__keep_stats",
        "mean_test_score",
        "std_test_score",
        "rank_test_score",
    ]
]
results.columns = ["affine", "keep_stats", "mean accuracy", "std", "rank"]
print(results.to_string())

# %%
# ``keep_stats=True`` wins by a wide margin: the concentration lives in the level
# of the Raman spectrum, which plain group normalization deletes. ``affine`` does
# not matter here: a per-feature gain and bias is an affine map of each column,
# which the logistic regression that follows would absorb into its own weights.
# It matters for models that are not invariant to such maps (distance-based
# models, trees on the original units), and for reading the output in the units
# of the data. The bars are the mean accuracy over the 5 folds, the error bars
# one standard deviation over the folds; the dashed line is chance, the accuracy
# of always predicting the more frequent class.
fig, ax = plt.subplots(figsize=(6.5, 3.6), layout="constrained")
labels = [
    f"affine={a}\nkeep_stats={k}"
    for a, k in zip(results["affine"], results["keep_stats"], strict=True)
]
bars = ax.bar(
    labels,
    results["mean accuracy"],
    yerr=results["std"],
    color=["tab:green" if k else "tab:gray" for k in results["keep_stats"]],
)
ax.bar_label(bars, fmt="%.3f", label_type="center", color="white")
chance = max(y.mean(), 1 - y.mean())
ax.axhline(chance, color="black", ls="--", lw=1)
ax.text(-0.4, chance + 0.01, f"chance: {chance:.2f}", fontsize=8)
ax.set_ylim(0.45, 1.0)
ax.set_ylabel("accuracy (mean +- std\nover 5 folds)")
ax.set_title("GridSearchCV over the GroupNormalizer's options")
# sphinx_gallery_start_ignore
save_figure(plt.gcf(), "figure_2")
# sphinx_gallery_end_ignore
plt.show()

# %%
# Feature names all the way through
# ---------------------------------
#
# The best pipeline's preprocessing step returns a DataFrame. The normalized
# columns keep their names; the kept statistics get a name per group, which makes
# the fitted coefficients easy to read.
best = search.best_estimator_
features = best[:-1].transform(df)
coefficients = pd.Series(best[-1].coef_[0], index=features.columns)
print("last output columns:", *features.columns[-8:], sep="\n  ")
coefficients.abs().sort_values(ascending=False).head(6).to_frame("|coefficient|")
