"""Invariance table: which transformations of the data a transformer forgets."""

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import clone
from sklearn.utils import check_random_state

from ._common import (
    as_input,
    as_output_array,
    check_data,
    check_int,
    check_real,
    check_transformer,
)

TRANSFORMATIONS = (
    "sample_shift",
    "sample_scale",
    "feature_shift",
    "feature_scale",
    "dataset_shift",
    "dataset_scale",
    "feature_permutation",
)

# Positive scale factors are drawn log-uniformly with |log a| in this interval, so
# a lies in [1/2, 4/5] or [5/4, 2]: bounded away from 0 (no degenerate data) and
# from 1 (every sample or feature really changes).
_LOG_SCALE_RANGE = (np.log(1.25), np.log(2.0))
# Shifts have a random sign and a magnitude of 1 to 2 times the spread of X.
_SHIFT_RANGE = (1.0, 2.0)
_CALLER = "invariance_table"


def _signed(rng, size, low, high):
    """Draw values with a random sign and a magnitude uniform in [low, high]."""
    return rng.choice([-1.0, 1.0], size=size) * rng.uniform(low, high, size=size)


def _derangement(rng, n):
    """A uniformly drawn permutation of n >= 2 items that moves every item."""
    while True:
        perm = rng.permutation(n)
        if not np.any(perm == np.arange(n)):
            return perm


def _spread(values):
    """A typical magnitude of X: the std of its entries, else max |x|, else 1."""
    finite = values[np.isfinite(values)]
    for candidate in (
        np.std(finite) if finite.size else 0.0,
        np.max(np.abs(finite)) if finite.size else 0.0,
    ):
        if candidate > 0:
            return float(candidate)
    return 1.0


def _transform_data(values, name, rng):
    """Apply one randomly drawn transformation of the named kind.

    Returns the transformed values and, for ``feature_permutation``, the
    permutation ``perm`` such that column ``k`` of the result is column
    ``perm[k]`` of ``values`` (None otherwise).
    """
    n_samples, n_features = values.shape
    spread = _spread(values)
    if name == "sample_shift":
        return values + _signed(rng, (n_samples, 1), *_SHIFT_RANGE) * spread, None
    if name == "sample_scale":
        return values * np.exp(_signed(rng, (n_samples, 1), *_LOG_SCALE_RANGE)), None
    if name == "feature_shift":
        return values + _signed(rng, (1, n_features), *_SHIFT_RANGE) * spread, None
    if name == "feature_scale":
        return values * np.exp(_signed(rng, (1, n_features), *_LOG_SCALE_RANGE)), None
    if name == "dataset_shift":
        return values + _signed(rng, None, *_SHIFT_RANGE) * spread, None
    if name == "dataset_scale":
        return values * np.exp(_signed(rng, None, *_LOG_SCALE_RANGE)), None
    # feature_permutation; with a single feature there is nothing to permute.
    perm = _derangement(rng, n_features) if n_features > 1 else np.arange(1)
    return values[:, perm], perm


def _column_deviation(A, B):
    """Max |A - B| over rows, per pair of columns when A, B are (n, 1) and (n, m).

    Entries that are NaN in both arrays, or the same infinity, count as equal; a NaN
    facing a number is an infinite deviation.
    """
    with np.errstate(invalid="ignore"):
        diff = np.abs(A - B)
    equal = (A == B) | (np.isnan(A) & np.isnan(B))
    diff = np.where(equal, 0.0, diff)
    diff = np.where(np.isnan(diff), np.inf, diff)
    if diff.shape[0] == 0:
        return np.zeros(diff.shape[1])
    return diff.max(axis=0)


def _max_deviation(A, B):
    return float(_column_deviation(A, B).max(initial=0.0))


def _output_deviation(Z_new, Z_ref, perm, tol=0.0):
    """Relative deviation of ``Z_new`` from ``Z_ref`` (see invariance_table Notes).

    For a permutation, the deviation of the best matching of output columns
    found; the search stops at the first matching within ``tol``.
    """
    if Z_new.shape != Z_ref.shape:
        return np.inf
    finite = np.abs(Z_ref[np.isfinite(Z_ref)])
    magnitude = finite.max() if finite.size else 0.0
    magnitude = magnitude if magnitude > 0 else 1.0
    if perm is None:
        return _max_deviation(Z_new, Z_ref) / magnitude

    # Feature permutation: the output may be reordered too. Try the two natural
    # matchings first (output unchanged; output permuted like the input in its
    # first n_features columns, the rest unchanged), then the best matching of
    # output columns, found as a linear assignment on the per-pair deviations.
    n_out = Z_ref.shape[1]
    candidates = [np.arange(n_out)]
    if n_out >= perm.size:
        candidates.append(np.concatenate([perm, np.arange(perm.size, n_out)]))
    best = min(_max_deviation(Z_new, Z_ref[:, order]) for order in candidates)
    if best > tol * magnitude and n_out > 1:
        cost = np.stack([_column_deviation(Z_new[:, [k]], Z_ref) for k in range(n_out)])
        # Costs are >= 0, so the assignment of least total cost has a largest term
        # no bigger than the total of a perfect (all near-zero) matching.
        rows, cols = linear_sum_assignment(np.minimum(cost, 1e100))
        best = min(best, float(cost[rows, cols].max()))
    return best / magnitude


def _label(estimator):
    return " ".join(repr(estimator).split())


def _named_transformers(transformers):
    """Normalize the ``transformers`` argument to a list of (label, estimator)."""
    if isinstance(transformers, Mapping):
        pairs = list(transformers.items())
        for label, estimator in pairs:
            check_transformer(estimator, caller=_CALLER, label=f"key {label!r}")
    elif isinstance(transformers, list | tuple):
        for position, estimator in enumerate(transformers):
            check_transformer(
                estimator, caller=_CALLER, label=f"transformers[{position}]"
            )
        pairs, seen = [], {}
        for estimator in transformers:
            label = _label(estimator)
            seen[label] = seen.get(label, 0) + 1
            if seen[label] > 1:
                label = f"{label} #{seen[label]}"
            pairs.append((label, estimator))
    else:
        check_transformer(transformers, caller=_CALLER)
        pairs = [(_label(transformers), transformers)]
    if not pairs:
        raise ValueError(
            f"{_CALLER} needs at least one transformer; got an empty "
            f"{type(transformers).__name__}."
        )
    return pairs


def _check_transformations(transformations):
    if transformations is None:
        return list(TRANSFORMATIONS)
    if isinstance(transformations, str):
        transformations = [transformations]
    transformations = list(transformations)
    unknown = [t for t in transformations if t not in TRANSFORMATIONS]
    if unknown or not transformations:
        raise ValueError(
            f"{_CALLER} got unknown transformations {unknown!r}; choose a non-empty "
            f"list from {list(TRANSFORMATIONS)!r}, or None for all of them."
        )
    if len(set(transformations)) != len(transformations):
        raise ValueError(
            f"{_CALLER} got repeated transformations {transformations!r}; list each "
            "once (use n_repeats to draw a transformation several times)."
        )
    return transformations


def _refit_output(estimator, values, columns, *, what):
    Z = clone(estimator, safe=False).fit_transform(as_input(values, columns))
    return as_output_array(Z, caller=_CALLER, what=what)


def invariance_table(
    transformers,
    X,
    *,
    transformations=None,
    tol=1e-3,
    n_repeats=1,
    return_deviation=False,
    random_state=None,
):
    r"""Tabulate the transformations of the data that a transformer's output ignores.

    Each transformer is cloned, fitted on ``X`` and applied to it. Then, for each
    transformation ``g`` of the data (a per-sample shift, a per-feature scale, ...),
    a fresh clone is fitted on ``g(X)`` and applied to it. The transformer is
    *invariant* to ``g`` when both outputs agree: whatever ``g`` changed is
    information the transformer throws away. This reproduces, on the user's own
    data and for any scikit-learn transformer or Pipeline, the invariance table of
    the layer-normalization paper.

    Parameters
    ----------
    transformers : transformer, list of transformers or dict of str to transformer
        The transformers (or Pipelines) to inspect. They are cloned, never modified.
        With a dict the keys label the rows of the table; otherwise each row is
        labelled by the transformer's one-line repr (``#2``, ``#3``... are appended
        to repeated labels).

    X : {array-like, DataFrame} of shape (n_samples, n_features)
        Dense data, at least 2 samples. NaN entries are allowed (they stay NaN
        under every transformation); a DataFrame keeps its column labels, which
        move with their columns under ``feature_permutation``.

    transformations : list of str, default=None
        The columns of the table, in order, chosen among (``a`` are positive
        scale factors, ``c`` shifts, all drawn at random; see Notes):

        - ``"sample_shift"``: ``x_i + c_i``, one shift per sample (row);
        - ``"sample_scale"``: ``a_i x_i``, one positive factor per sample;
        - ``"feature_shift"``: ``X[:, j] + c_j``, one shift per feature;
        - ``"feature_scale"``: ``a_j X[:, j]``, one positive factor per feature;
        - ``"dataset_shift"``: ``X + c``, one shift everywhere;
        - ``"dataset_scale"``: ``a X``, one positive factor everywhere;
        - ``"feature_permutation"``: ``X[:, perm]``, the columns reordered by a
          permutation that moves every column.

        None (the default) selects all of them.

    tol : float, default=1e-3
        Largest relative deviation (see Notes) for which the output counts as
        unchanged. The default sits far above rounding errors and far below the
        changes, typically 0.1 to 1, made by a transformation the transformer does
        not forget. It also absorbs the small effect of a variance floor ``eps``:
        a normalizer computing ``(x - mean) / sqrt(var + eps)`` changes by about
        ``1.5 * eps / var`` under the scale factors drawn here, which is below
        1e-3 for the default ``eps=1e-5`` on rows of variance above ~0.015.

    n_repeats : int, default=1
        Number of independent draws of each transformation. A cell is True only if
        the output is unchanged for every draw, and its deviation is the largest
        one. Several draws guard against a draw that happens to respect some
        structure, such as a permutation that keeps groups of columns together.
        The first draw does not depend on ``n_repeats``.

    return_deviation : bool, default=False
        If True, also return the relative deviations behind the table.

    random_state : int, RandomState instance or None, default=None
        Seeds the random transformations. Pass an int for reproducible output
        across calls; each transformation is drawn from its own stream, so
        selecting a subset of ``transformations`` does not change the draws.

    Returns
    -------
    table : DataFrame of shape (n_transformers, n_transformations)
        Index ``"transformer"`` (the row labels), columns ``"transformation"``,
        nullable ``"boolean"`` dtype: True where the output is unchanged, False
        where it changed, ``<NA>`` where the transformer could not be fitted on the
        transformed data (a warning says why).

    deviation : DataFrame of shape (n_transformers, n_transformations)
        Only when ``return_deviation=True``: the relative deviations (float, NaN
        where the refit failed, inf where the output shape changed). ``table`` is
        ``deviation <= tol``.

    See Also
    --------
    collapsed_directions : Number of input directions a fitted transformer
        collapses at each sample.
    reconstruction_r2 : How much of X can be recovered from the output.
    plot_invariance_table : Draw the table as a heatmap.

    Notes
    -----
    **Draws.** Positive factors are drawn log-uniformly in ``[1/2, 4/5]`` or
    ``[5/4, 2]``, bounded away from 0 and from 1. Shifts have a random sign and a
    magnitude between 1 and 2 times the spread of ``X`` (the standard deviation of
    all its entries). Every sample, feature or the whole dataset therefore really
    moves, and by an amount commensurate with the data.

    **Deviation.** With ``Z = T(X)`` the output of the transformer fitted on ``X``
    and ``Z'`` the output of the transformer re-fitted on ``g(X)``, the relative
    deviation is

    .. math::

        \delta = \frac{\max_{ik} |Z'_{ik} - Z_{ik}|}{\max_{ik} |Z_{ik}|}

    (the denominator is 1 when ``Z`` is all zeros). NaN entries must sit at the
    same places in both outputs; an output of another shape is an infinite
    deviation.

    **Feature permutation.** Reordering the input columns cannot leave the output
    of a one-to-one transformer (a scaler) untouched: its output columns are
    reordered the same way. "Invariant" therefore means unchanged *up to a
    reordering of the output columns*: ``T(X P) = T(X) Q`` for some permutation
    ``Q``. For one-to-one transformers this is equivariance, ``Q = P``; for
    transformers that do not depend on the order of the features (PCA, the
    appended row statistics of a normalizer) ``Q`` leaves those columns in place.
    A transformer that treats positions differently, such as one normalizing
    fixed groups of contiguous columns, is not invariant. The best ``Q`` is found
    by linear assignment on per-column deviations when neither ``Q = I`` nor
    ``Q = P`` fits.

    **Refitting.** The table describes the whole recipe "fit, then transform": a
    StandardScaler refitted on per-feature-scaled data gives the same output, so
    it is invariant to per-feature scale, even though a StandardScaler fitted once
    is not. This is the sense of the invariances of batch and layer normalization
    in Ba, Kiros & Hinton (2016), Table 1, here for transformations of the data.
    Its data columns correspond to: "dataset re-scaling" to ``dataset_scale``,
    "dataset re-centering" (one vector added to every sample) to
    ``feature_shift``, and "single training case re-scaling" to
    ``sample_scale``; with StandardScaler standing for batch normalization, the
    table reproduces the paper's entries for both methods. Transformers that
    draw random numbers when fitted (randomized PCA, say) need a fixed
    ``random_state`` of their own, or their refits differ for that reason
    alone.

    References
    ----------
    .. [1] J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer Normalization",
       arXiv:1607.06450, 2016, Table 1.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import Normalizer, StandardScaler
    >>> from sknorm.inspection import invariance_table
    >>> X = np.random.default_rng(0).normal(size=(20, 4))
    >>> table = invariance_table(
    ...     {"standard": StandardScaler(), "l2": Normalizer()}, X, random_state=0
    ... )
    >>> table[["sample_scale", "feature_scale", "dataset_scale"]]
    transformation  sample_scale  feature_scale  dataset_scale
    transformer
    standard               False           True           True
    l2                      True          False           True
    """
    pairs = _named_transformers(transformers)
    transformations = _check_transformations(transformations)
    tol = check_real(tol, name="tol", caller=_CALLER, low=0.0, low_inclusive=True)
    n_repeats = check_int(n_repeats, name="n_repeats", caller=_CALLER, low=1)
    values, columns = check_data(
        X,
        caller=_CALLER,
        min_samples=2,
        allow_nan=True,
        reason="to tell per-sample from per-feature transformations",
    )

    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    draws = {}
    for name in transformations:
        stream = TRANSFORMATIONS.index(name)
        draws[name] = [
            _transform_data(values, name, np.random.default_rng([seed, stream, r]))
            for r in range(n_repeats)
        ]

    deviation = np.full((len(pairs), len(transformations)), np.nan)
    for row, (label, estimator) in enumerate(pairs):
        Z_ref = _refit_output(
            estimator, values, columns, what=f"transformer {label!r} on X"
        )
        for col, name in enumerate(transformations):
            deviations = []
            for values_new, perm in draws[name]:
                columns_new = columns
                if columns is not None and perm is not None:
                    columns_new = columns[perm]
                try:
                    Z_new = _refit_output(
                        estimator,
                        values_new,
                        columns_new,
                        what=f"transformer {label!r} after {name}",
                    )
                except Exception as exc:  # report the cell as missing, go on
                    warnings.warn(
                        f"{_CALLER}: transformer {label!r} failed on the "
                        f"{name!r}-transformed data ({type(exc).__name__}: {exc}); "
                        "its cell is <NA>.",
                        UserWarning,
                        stacklevel=2,
                    )
                    deviations = [np.nan]
                    break
                deviations.append(_output_deviation(Z_new, Z_ref, perm, tol))
            deviation[row, col] = max(deviations)

    index = pd.Index([label for label, _ in pairs], name="transformer")
    header = pd.Index(transformations, name="transformation")
    deviation = pd.DataFrame(deviation, index=index, columns=header)
    table = (deviation <= tol).astype("boolean").mask(deviation.isna())
    if return_deviation:
        return table, deviation
    return table
