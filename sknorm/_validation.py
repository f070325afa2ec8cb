"""Small parameter and input checks shared by the estimators and functions.

Built on public scikit-learn helpers only; messages say what was got and what
is expected, so that the user knows which parameter to change.
"""

import numbers

import numpy as np
from sklearn.utils import check_scalar

from ._layout import GroupSpec

CENTERS = ("mean", "median", None)
SCALES = ("std", "mad", "iqr", None)
FLOAT_DTYPES = (np.float64, np.float32)


def check_options(center, scale, eps):
    """Validate ``center``, ``scale`` and ``eps``; return ``eps`` as a float."""
    if center not in CENTERS:
        raise ValueError(
            f"Got center={center!r}, expected one of 'mean', 'median' or None."
        )
    if scale not in SCALES:
        raise ValueError(
            f"Got scale={scale!r}, expected one of 'std', 'mad', 'iqr' or None."
        )
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"Got eps={eps!r}, expected a non-negative float.")
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"Got eps={eps!r}, expected a non-negative finite float.")
    return float(eps)


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Got {name}={value!r}, expected True or False.")


class SparseInputError(TypeError, ValueError):
    """Sparse input where the configuration would make it dense.

    Both a ``TypeError`` (as scikit-learn's ``check_array`` raises for sparse
    input it cannot take) and a ``ValueError`` (as ``StandardScaler`` raises
    for sparse input it cannot center), so that code and checks catching
    either keep working.
    """


def sparse_message(center, affine):
    """Why sparse input is refused, naming the parameter to change."""
    if center is not None:
        return (
            "Cannot center sparse matrices: centering would make them dense. "
            "Pass center=None (RMS normalization, which keeps sparse input "
            "sparse) or convert X to a dense array with X.toarray()."
        )
    if affine:
        return (
            "affine=True adds a bias, which would make sparse input dense. "
            "Pass affine=False, or convert X to a dense array with X.toarray()."
        )
    return (
        "Sparse input is only supported with center=None and scale='std' or "
        "None; the robust scales need dense rows. Convert X with X.toarray()."
    )


def check_sample_weight(sample_weight, n_samples):
    """Return sample weights as a float64 array of shape (n_samples,)."""
    if sample_weight is None:
        return np.ones(n_samples)
    if isinstance(sample_weight, numbers.Number):
        return np.full(n_samples, float(sample_weight))
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight has shape {w.shape}, expected ({n_samples},): "
            "one weight per sample of X."
        )
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or inf; expected finite weights.")
    if (w < 0).any():
        raise ValueError("sample_weight has negative values; expected weights >= 0.")
    if n_samples and not w.any():
        raise ValueError(
            "sample_weight is all zero; at least one weight must be non-zero."
        )
    return w


def resolve_groups(groups, n_features, feature_names=None, remainder="passthrough"):
    """Turn a ``groups`` parameter into a :class:`GroupSpec`.

    ``groups`` is an int (that many equal contiguous groups), a list of column
    lists, or a dict ``name -> columns``; columns are integer indices or, when
    ``feature_names`` is given (fitted on a DataFrame), column names.
    """
    if remainder not in ("passthrough", "drop"):
        raise ValueError(
            f"Got remainder={remainder!r}, expected 'passthrough' or 'drop'."
        )
    if isinstance(groups, numbers.Integral) and not isinstance(groups, bool):
        check_scalar(groups, "groups", numbers.Integral, min_val=1)
        if n_features % groups:
            raise ValueError(
                f"groups={groups} does not divide n_features={n_features}: pass a "
                f"divisor of {n_features}, or explicit column lists."
            )
        size = n_features // groups
        names = [f"group{g}" for g in range(groups)]
        cols = [np.arange(g * size, (g + 1) * size) for g in range(groups)]
    elif isinstance(groups, dict):
        if not groups:
            raise ValueError("groups is an empty dict; expected at least one group.")
        names = [str(k) for k in groups]
        # Names are used as strings (groups_, output column names): keys that
        # differ only by type, like 1 and "1", would silently merge.
        by_name = {}
        for key in groups:
            by_name.setdefault(str(key), []).append(key)
        clashes = [keys for keys in by_name.values() if len(keys) > 1]
        if clashes:
            raise ValueError(
                f"The group names {clashes[0]!r} are the same string "
                f"{str(clashes[0][0])!r}: group names are used as strings (in "
                "groups_ and the output column names), so they must differ "
                "after str(). Rename the groups."
            )
        cols = [_columns(v, k, n_features, feature_names) for k, v in groups.items()]
    elif isinstance(groups, (list, tuple)):
        if not groups:
            raise ValueError("groups is empty; expected at least one column list.")
        names = [f"group{g}" for g in range(len(groups))]
        cols = [_columns(v, g, n_features, feature_names) for g, v in enumerate(groups)]
    else:
        raise TypeError(
            f"Got groups={groups!r}, expected an int, a list of column lists or a "
            "dict mapping a group name to its columns."
        )
    seen = {}
    for name, idx in zip(names, cols, strict=True):
        for j in idx:
            if j in seen:
                raise ValueError(
                    f"Column {_col_label(j, feature_names)} is in group "
                    f"{seen[j]!r} and in group {name!r}: groups must not overlap."
                )
            seen[j] = name
    in_group = np.zeros(n_features, dtype=bool)
    for idx in cols:
        in_group[idx] = True
    keep = (
        np.arange(n_features)
        if remainder == "passthrough"
        else np.flatnonzero(in_group)
    )
    return GroupSpec(n_features, tuple(names), tuple(cols), keep)


def _col_label(j, feature_names):
    return repr(feature_names[j]) if feature_names is not None else str(j)


def _columns(spec, group, n_features, feature_names):
    if isinstance(spec, (str, numbers.Integral)) or np.ndim(spec) == 0:
        raise TypeError(
            f"Group {group!r} is {spec!r}; expected a list of columns, "
            f"for example [{spec!r}]."
        )
    spec = list(spec)
    if not spec:
        raise ValueError(f"Group {group!r} is empty; every group needs a column.")
    out = []
    for col in spec:
        if isinstance(col, str):
            if feature_names is None:
                raise ValueError(
                    f"Group {group!r} names column {col!r}, but X has no column "
                    "names: fit on a pandas DataFrame, or give integer indices."
                )
            hits = np.flatnonzero(np.asarray(feature_names) == col)
            if not hits.size:
                raise ValueError(
                    f"Group {group!r} names column {col!r}, which is not a column "
                    f"of X (columns: {list(feature_names)})."
                )
            out.append(int(hits[0]))
        elif isinstance(col, numbers.Integral) and not isinstance(col, bool):
            if not 0 <= col < n_features:
                raise ValueError(
                    f"Group {group!r} has column index {col}, out of range for X "
                    f"with n_features={n_features}: use 0 <= index < {n_features}."
                )
            out.append(int(col))
        else:
            raise TypeError(
                f"Group {group!r} has column {col!r}; expected an int index or a "
                "column name."
            )
    if len(set(out)) != len(out):
        raise ValueError(f"Group {group!r} lists a column twice: {spec}.")
    return np.asarray(out, dtype=np.intp)


def feature_names_out(estimator, input_features, names_after):
    """Input feature names (checked like sklearn does) kept plus ``names_after``."""
    n = estimator.n_features_in_
    names_in = getattr(estimator, "feature_names_in_", None)
    if input_features is None:
        if names_in is not None:
            input_features = names_in
        else:
            input_features = [f"x{i}" for i in range(n)]
    else:
        input_features = np.asarray(input_features, dtype=object)
        if input_features.ndim != 1 or len(input_features) != n:
            raise ValueError(
                f"input_features should have length equal to n_features_in_ "
                f"({n}), got {len(input_features)}."
            )
        if names_in is not None and not np.array_equal(names_in, input_features):
            raise ValueError(
                "input_features is not equal to feature_names_in_: pass the "
                "names X was fitted with, or None."
            )
    names = [str(input_features[j]) for j in estimator._spec_.keep]
    clash = set(names) & set(names_after)
    if clash:
        raise ValueError(
            f"Input column names {sorted(clash)} clash with the kept statistics' "
            "column names: rename them, or set keep_stats=False."
        )
    return np.asarray(names + list(names_after), dtype=object)
