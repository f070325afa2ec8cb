"""What the partitioned backends (:mod:`sknorm.dask`, :mod:`sknorm.spark`) share.

Both cut the rows into partitions, fit a clone of the estimator on each one,
merge the fits with the public :meth:`merge` (never mutating a fit that another
task may hold), and map a private copy of the fitted estimator over the
partitions, with the output's column names and dtype found in advance on a
one-row probe.
"""

import copy

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ._base import _BaseNormalizer


def check_estimator(estimator, backend, hint=""):
    """Only sknorm's normalizers have mergeable fits and row-local transforms."""
    if not isinstance(estimator, _BaseNormalizer):
        raise TypeError(
            f"sknorm.{backend} fits and applies sknorm estimators (LayerNormalizer, "
            f"RMSNormalizer, GroupNormalizer); got {type(estimator).__name__}."
            + (f" {hint}" if hint else "")
        )


# -- fit --------------------------------------------------------------------------
def fit_partition(estimator, X, sample_weight=None):
    """A clone of ``estimator`` fitted on one partition; None if it is empty."""
    if X.shape[0] == 0:
        return None
    return clone(estimator).fit(X, sample_weight=sample_weight)


def merge_fits(fits):
    """The merge of the partition fits (None ones skipped) into a new estimator.

    The inputs are left unchanged: a scheduler may hand the same fit object to
    several merges (two lazy fits sharing their partition tasks), so merging in
    place would count its samples twice.
    """
    fits = [f for f in fits if f is not None]
    if not fits:
        return None
    merged = copy.deepcopy(fits[0])
    for other in fits[1:]:
        merged.merge(other)
    return merged


def finish(fitted):
    """The result of a distributed fit: a private copy, or an error if no rows."""
    if fitted is None:
        raise ValueError("Found array with 0 sample(s): X has no rows to fit on.")
    return copy.deepcopy(fitted)


# -- transform ------------------------------------------------------------------
def prepare(estimator, probe, *, fit_stateless):
    """A private, default-output copy of the estimator, ready to map.

    ``probe`` is one row of ones with the columns and dtypes of the data. An
    unfitted stateless normalizer (without ``affine``) is fitted on it, which
    only records the columns; an unfitted one that needs a fit raises
    ``NotFittedError``.
    """
    if fit_stateless and not hasattr(estimator, "n_samples_seen_"):
        if estimator.__sklearn_tags__().requires_fit:
            check_is_fitted(estimator)
        est = clone(estimator).fit(probe)
    else:
        est = copy.deepcopy(estimator)
    est.set_output(transform="default")
    return est


def probe_output(est, method, probe):
    """Run ``est.<method>`` on the probe: the output's width and dtype.

    It raises at once, on the driver, when the data does not fit the estimator
    (wrong number of columns, other names), instead of inside every task.
    """
    out = getattr(est, method)(probe)
    return out.shape[1], out.dtype


def input_names(est, method):
    """The column names ``est.<method>`` was fitted to take, or None."""
    if method == "transform":
        names = getattr(est, "feature_names_in_", None)
        return None if names is None else [str(n) for n in names]
    if hasattr(est, "feature_names_in_"):
        return [str(n) for n in est.get_feature_names_out()]
    return None


def output_names(est, method, columns):
    """The output's column names.

    ``columns`` are the input's names, in the order the estimator takes them.
    ``transform``: ``get_feature_names_out`` (the input names of an estimator
    fitted without names). ``inverse_transform``: the names the estimator was
    fitted on, else the first ``n_features_in_`` input names, which are the
    transformed features (the kept statistics follow them).
    """
    if method == "transform":
        if hasattr(est, "feature_names_in_"):
            names = est.get_feature_names_out()
        else:
            names = est.get_feature_names_out(list(columns))
    elif hasattr(est, "feature_names_in_"):
        names = est.feature_names_in_
    else:
        names = list(columns)[: est.n_features_in_]
    return [str(n) for n in names]


def probe_frame(dtypes):
    """One row of ones with the given ``{name: dtype}`` (a pandas DataFrame).

    A categorical column gets its first category (or 1.0 when the categories
    are not known yet): building a Categorical from values outside its
    categories is deprecated in pandas.
    """
    data = {}
    for name, dtype in dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            cats = dtype.categories
            if len(cats) and not (cats == "__UNKNOWN_CATEGORIES__").any():
                data[name] = pd.Series(pd.Categorical.from_codes([0], dtype=dtype))
            else:  # dask's placeholder: the partitions will tell
                data[name] = pd.Series([1.0])
        else:
            data[name] = pd.Series([1], dtype=dtype)
    return pd.DataFrame(data, columns=list(dtypes))


def row_slices(n_rows, batch_size):
    """Slices of at most ``batch_size`` rows covering ``range(n_rows)``."""
    if batch_size is None or n_rows <= batch_size:
        return [slice(0, n_rows)]
    return [slice(i, min(i + batch_size, n_rows)) for i in range(0, n_rows, batch_size)]


def check_batch_size(batch_size):
    if batch_size is None:
        return None
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(
            f"Got batch_size={batch_size!r}, expected a positive int or None."
        )
    if batch_size < 1:
        raise ValueError(
            f"Got batch_size={batch_size!r}, expected a positive int or None."
        )
    return int(batch_size)
