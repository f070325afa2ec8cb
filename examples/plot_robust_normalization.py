"""
==============================================
Robust per-sample normalization with outliers
==============================================

The mean and the standard deviation of a row are pulled by a single extreme
value. When one entry of a sample is corrupted (a cosmic-ray spike on a detector,
a dead pixel, a glitch in a sensor), ``center="mean", scale="std"`` lets that one
entry rescale the *whole* row. ``center="median"`` with ``scale="mad"`` (median
absolute deviation) or ``scale="iqr"`` (inter-quartile range) uses statistics
that ignore a minority of bad entries, so the rest of the row is normalized as if
the spike were not there. The MAD and IQR are rescaled to agree with the standard
deviation on normally distributed data, so the outputs of the robust and classical
settings are on comparable scales.
"""

# Authors: The sknorm developers
# SPDX-License-Identifier: BSD-3-Clause

# sphinx_gallery_thumbnail_number = 2

# sphinx_gallery_start_ignore
# Run as a script, the example prints its findings and saves its figures into
# sknorm_figures/robust_normalization/ (paths printed); sphinx-gallery runs the
# code without __file__ and collects the figures itself.
from pathlib import Path

AS_SCRIPT = "__file__" in globals()
FIGURES = Path("sknorm_figures") / "robust_normalization"


def save_figure(fig, name):
    if AS_SCRIPT:
        FIGURES.mkdir(parents=True, exist_ok=True)
        path = FIGURES / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        print(f"[figure saved to {path.resolve()}]")


# sphinx_gallery_end_ignore

# %%
# Spectra with spikes
# -------------------
#
# We generate spectra of 60 channels from two compounds that differ in the
# position of one band, each measured with its own gain and offset. Then a
# cosmic ray hits some of them: one to three channels get a large positive
# spike.
import matplotlib.pyplot as plt
import numpy as np

rng = np.random.default_rng(0)
n_channels = 60
channel = np.arange(n_channels)


def make_spectra(n_samples, rng):
    compound = rng.integers(0, 2, n_samples)
    band_center = np.where(compound == 1, 34.0, 26.0)[:, None]
    shape = np.exp(-0.5 * ((channel - band_center) / 5.0) ** 2)
    shape += np.exp(-0.5 * ((channel - 12.0) / 4.0) ** 2)
    shape += rng.normal(scale=0.05, size=shape.shape)
    gain = rng.lognormal(sigma=0.5, size=(n_samples, 1))
    offset = rng.normal(scale=2.0, size=(n_samples, 1))
    return gain * shape + offset, compound, gain


def add_spikes(X, gain, fraction, height, rng):
    """Add 1 to 3 spikes of ``height`` (in units of the row's gain) to some rows."""
    X = X.copy()
    hit = np.flatnonzero(rng.random(len(X)) < fraction)
    for i in hit:
        where = rng.choice(n_channels, size=rng.integers(1, 4), replace=False)
        X[i, where] += height * gain[i, 0]
    return X, hit


X_clean, compound, gain = make_spectra(600, rng)
X_spiked, hit = add_spikes(X_clean, gain, fraction=0.3, height=20.0, rng=rng)
print(f"{len(hit)} of {len(X_spiked)} spectra have spikes")

# %%
# One spectrum, three normalizations
# ----------------------------------
#
# We normalize a spiked spectrum and its clean version with three settings of
# :class:`~sknorm.LayerNormalizer`. With the mean and standard deviation, the spike
# inflates the scale, and the rest of the spectrum is squashed towards a flat line:
# the band that distinguishes the compounds almost disappears. The median with the
# MAD or the IQR leaves the spectrum where the clean version is, except at the
# spiked channels themselves.
from sknorm import LayerNormalizer

settings = {
    "mean / std": LayerNormalizer(center="mean", scale="std"),
    "median / MAD": LayerNormalizer(center="median", scale="mad"),
    "median / IQR": LayerNormalizer(center="median", scale="iqr"),
}
i = hit[np.argmin(np.abs(np.log(gain[hit, 0])))]  # a spiked spectrum of gain ~1
fig, axes = plt.subplots(2, 2, figsize=(8, 5.6), layout="constrained", sharex=True)
axes = axes.ravel()
axes[0].plot(channel, X_spiked[i], color="tab:red", label="with spikes")
axes[0].plot(channel, X_clean[i], color="black", lw=1, label="clean")
axes[0].set_title("raw spectrum")
axes[0].legend(fontsize=8)
for ax, (name, normalizer) in zip(axes[1:], settings.items(), strict=True):
    ax.plot(channel, normalizer.fit_transform(X_spiked[[i]])[0], color="tab:red")
    ax.plot(channel, normalizer.fit_transform(X_clean[[i]])[0], color="black", lw=1)
    ax.set_ylim(-2.5, 6)
    ax.set_title(f"normalized, {name}")
for ax in axes[2:]:
    ax.set_xlabel("channel")
# sphinx_gallery_start_ignore
save_figure(plt.gcf(), "figure_1")
# sphinx_gallery_end_ignore
plt.show()

# %%
# How much a spike moves the rest of the row
# ------------------------------------------
#
# For a growing spike height we measure, on the channels that were *not* hit, the
# root mean square difference between the normalized spiked spectrum and the
# normalized clean spectrum. A single spike has an unbounded influence on the
# mean and standard deviation: the error keeps growing, up to the point where the
# row is flattened entirely. The median, MAD and IQR have a breakdown point of
# 50% and 25%: a few spikes move them by a bounded amount, however tall the
# spikes are. For spikes no taller than the signal itself, the classical
# statistics do as well or better; robustness pays off for large outliers.
heights = [1, 2, 5, 10, 20, 50, 100]
errors = {name: [] for name in settings}
X_one, _, gain_one = make_spectra(200, np.random.default_rng(1))
for height in heights:
    X_hit, _ = add_spikes(
        X_one, gain_one, fraction=1.0, height=height, rng=np.random.default_rng(2)
    )
    untouched = X_hit == X_one
    for name, normalizer in settings.items():
        diff = normalizer.fit_transform(X_hit) - normalizer.fit_transform(X_one)
        errors[name].append(np.sqrt(np.mean(diff[untouched] ** 2)))

fig, ax = plt.subplots(figsize=(6, 3.4), layout="constrained")
for name, values in errors.items():
    ax.plot(heights, values, marker="o", label=name)
ax.set_xscale("log")
ax.set_ylim(bottom=0)
ax.set_xlabel("spike height (in units of the spectrum's gain)")
ax.set_ylabel("RMS change on the clean channels")
ax.set_title("Influence of spikes on the rest of the row")
ax.legend()
# sphinx_gallery_start_ignore
save_figure(plt.gcf(), "figure_2")
# sphinx_gallery_end_ignore
plt.show()

# %%
# What it does to a classifier
# ----------------------------
#
# Finally we classify the compound with a nearest-neighbors classifier, with each
# normalization, on clean spectra and on spectra of which 30% are spiked.
#
# Robust statistics protect the *rest* of the row, but the spiked entries are still
# in the output, with huge values that dominate any Euclidean distance. Because
# the robust output puts the clean entries of every row on a known scale, a plain
# clip (here to :math:`[-4, 4]`, with a
# :class:`~sklearn.preprocessing.FunctionTransformer`) then removes the spikes'
# remaining influence. After a mean / std normalization the clip cannot help: the
# damage, a squashed row, is already done. 5-fold cross-validated accuracy (the
# mean over the folds; chance, always predicting the more frequent compound, is
# the dashed line of the figure):
import pandas as pd
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer


def clip(Z):
    return np.clip(Z, -4.0, 4.0)


def accuracy(normalizer, X, clipped):
    steps = [normalizer, FunctionTransformer(clip)] if clipped else [normalizer]
    pipeline = make_pipeline(*steps, KNeighborsClassifier())
    return cross_val_score(pipeline, X, compound, cv=5).mean()


scores = pd.DataFrame(
    {
        "clean": {n: accuracy(e, X_clean, False) for n, e in settings.items()},
        "30% spiked": {n: accuracy(e, X_spiked, False) for n, e in settings.items()},
        "30% spiked, then clip": {
            n: accuracy(e, X_spiked, True) for n, e in settings.items()
        },
    }
)
print(scores.round(3).to_string())

# %%
fig, ax = plt.subplots(figsize=(7, 3.8), layout="constrained")
scores.T.plot.bar(
    ax=ax, rot=0, legend=False, color=["tab:blue", "tab:orange", "tab:green"]
)
for container in ax.containers:
    ax.bar_label(container, fmt="%.2f", fontsize=7, padding=1)
chance = np.bincount(compound).max() / len(compound)
ax.axhline(chance, color="black", ls="--", lw=1)
ax.text(-0.45, chance + 0.01, f"chance: {chance:.2f}", fontsize=8)
ax.set_ylim(0.45, 1.05)
ax.set_ylabel("cross-validated accuracy")
ax.set_title("Nearest neighbors after per-sample normalization")
fig.legend(loc="outside lower center", ncols=3)
# sphinx_gallery_start_ignore
save_figure(plt.gcf(), "figure_3")
# sphinx_gallery_end_ignore
plt.show()

# %%
# On clean data the three settings are equivalent. With spikes, every setting
# loses accuracy as long as the spikes stay in the output; once they are clipped,
# the robust settings are back to their clean accuracy while mean / std is not,
# because it flattened the spiked rows before the clip. The price of robustness
# is a little more noise (a median is a less efficient estimator than a mean on
# clean, normal data) and a little more computation (a median per row instead of
# a sum). The :ref:`user_guide` gives the formulas and the consistency constants
# of the MAD and the IQR.
