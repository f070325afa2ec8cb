"""Input checks and container helpers shared by the inspection tools.

The inspection functions accept any scikit-learn transformer (or ``Pipeline``) and
dense data as a NumPy array or a DataFrame. They work on float64 copies of the
data and rebuild a DataFrame with the original column labels whenever the user
passed one, so that transformers selecting columns by name keep working.
"""

import numbers

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.utils import check_array


def check_transformer(transformer, *, caller, label="transformer"):
    """Raise a TypeError unless ``transformer`` looks like a fitted-or-not transformer.

    A transformer is an instance with ``fit`` and ``transform`` methods. Pipelines
    qualify when their last step is a transformer (``Pipeline.transform`` is only
    available then).
    """
    if isinstance(transformer, type):
        name = transformer.__name__
        raise TypeError(
            f"{caller} expects a transformer instance for {label}, got the class "
            f"{name} itself; pass {name}() instead."
        )
    if not (hasattr(transformer, "fit") and hasattr(transformer, "transform")):
        raise TypeError(
            f"{caller} expects a scikit-learn transformer for {label}: an object "
            "with fit and transform methods, such as StandardScaler() or a Pipeline "
            f"whose last step is a transformer. Got an object of type "
            f"{type(transformer).__name__}."
        )


def check_data(X, *, caller, min_samples, allow_nan, reason):
    """Validate a dense 2-D data matrix.

    Parameters
    ----------
    X : array-like or DataFrame of shape (n_samples, n_features)
        The user's data.
    caller : str
        Name of the public function, used in error messages.
    min_samples : int
        Smallest accepted number of rows.
    allow_nan : bool
        Whether NaN entries are accepted (infinities never are).
    reason : str
        Why ``min_samples`` rows are needed, completing the sentence "... needs
        at least k samples ...".

    Returns
    -------
    values : ndarray of shape (n_samples, n_features), dtype float64
        A float64 array; never the caller's own buffer, so it may be modified.
    columns : pandas.Index or None
        The column labels when ``X`` is a DataFrame, else None.
    """
    if sparse.issparse(X):
        raise TypeError(
            f"{caller} needs dense X, got a sparse {type(X).__name__}: its "
            "transformations (shifts in particular) densify the data. Pass "
            "X.toarray() instead."
        )
    columns = None
    if hasattr(X, "columns") and hasattr(X, "shape"):
        columns = pd.Index(list(X.columns))
    ndim = len(X.shape) if hasattr(X, "shape") else np.ndim(X)
    if ndim != 2:
        raise ValueError(
            f"{caller} needs a 2-D X of shape (n_samples, n_features), got a "
            f"{ndim}-D input. Reshape a single feature with X.reshape(-1, 1) or a "
            "single sample with X.reshape(1, -1)."
        )
    n_samples = X.shape[0] if hasattr(X, "shape") else len(X)
    if n_samples < min_samples:
        raise ValueError(
            f"{caller} needs at least {min_samples} "
            f"sample{'s' if min_samples > 1 else ''} {reason}; got "
            f"n_samples={n_samples}."
        )
    values = check_array(
        X,
        dtype=np.float64,
        ensure_all_finite="allow-nan" if allow_nan else True,
        ensure_min_samples=min_samples,
        input_name="X",
    )
    # check_array may hand back the caller's own float64 buffer: copy it so that
    # neither the inspection code nor a transformer with copy=False can modify it.
    return np.array(values, dtype=np.float64, copy=True), columns


def as_input(values, columns):
    """Wrap ``values`` in a DataFrame when the user's data had column labels.

    A fresh array is passed each time, so a transformer working in place
    (``copy=False``) cannot corrupt the data the inspection code keeps.
    """
    values = np.array(values, dtype=np.float64, copy=True)
    if columns is None:
        return values
    return pd.DataFrame(values, columns=columns)


def as_output_array(Z, *, caller, what):
    """Convert a transformer's output (array, sparse, DataFrame) to 2-D float64."""
    if sparse.issparse(Z):
        Z = Z.toarray()
    elif hasattr(Z, "to_numpy"):
        Z = Z.to_numpy()
    try:
        Z = np.asarray(Z, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{caller} compares numeric outputs, but {what} returned non-numeric "
            f"values ({exc}). Inspect a transformer or Pipeline whose output is "
            "numeric."
        ) from exc
    if Z.ndim == 1:
        Z = Z.reshape(-1, 1)
    if Z.ndim != 2:
        raise ValueError(
            f"{caller} expects {what} to return a 2-D output, got {Z.ndim}-D."
        )
    return Z


def check_real(value, *, name, caller, low, low_inclusive, high=None):
    """Check that ``value`` is a real number in an interval; return it as float."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{caller} expects a real number for {name}, got "
            f"{type(value).__name__} {value!r}."
        )
    value = float(value)
    too_low = value < low if low_inclusive else value <= low
    too_high = high is not None and value >= high
    if not np.isfinite(value) or too_low or too_high:
        bound = f"{'>=' if low_inclusive else '>'} {low}"
        if high is not None:
            bound += f" and < {high}"
        raise ValueError(f"{caller} expects {name} {bound}, got {name}={value!r}.")
    return value


def check_int(value, *, name, caller, low):
    """Check that ``value`` is an integer >= ``low``; return it as int."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{caller} expects an integer for {name}, got "
            f"{type(value).__name__} {value!r}."
        )
    if value < low:
        raise ValueError(f"{caller} expects {name} >= {low}, got {name}={value!r}.")
    return int(value)


def check_option(value, *, name, caller, options):
    """Check that ``value`` is one of the strings in ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(
            f"{caller} expects {name} to be one of {', '.join(map(repr, options))}; "
            f"got {name}={value!r}."
        )
    return value
