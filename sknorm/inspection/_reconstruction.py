"""How much of the input can be recovered from a transformer's output."""

import numpy as np
from sklearn.base import clone
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from ._common import (
    as_input,
    as_output_array,
    check_data,
    check_option,
    check_transformer,
)

_CALLER = "reconstruction_r2"
_METHODS = ("auto", "inverse_transform", "linear")
_MULTIOUTPUT = ("uniform_average", "variance_weighted", "raw_values")
# Errors by which an inverse_transform says it cannot invert (for instance a
# normalizer that did not keep its statistics); method="auto" then goes linear.
_INVERSE_ERRORS = (AttributeError, NotImplementedError, TypeError, ValueError)


def _linear_reconstruction(Z_train, X_train, Z_test):
    """Least-squares affine map from outputs back to inputs, fitted on train."""
    design = np.column_stack([Z_train, np.ones(Z_train.shape[0])])
    coef, *_ = np.linalg.lstsq(design, X_train, rcond=None)
    return np.column_stack([Z_test, np.ones(Z_test.shape[0])]) @ coef


def reconstruction_r2(
    transformer,
    X,
    *,
    method="auto",
    test_size=0.5,
    multioutput="uniform_average",
    random_state=None,
):
    """Measure how much of X can be recovered from a transformer's output.

    ``X`` is split in two. A clone of the transformer is fitted on the training
    part; its outputs on the test part are mapped back to the input space, and
    the reconstruction is scored against the held-out samples with the
    coefficient of determination R^2: 1 means nothing was lost, 0 means the
    reconstruction is no better than each feature's mean.

    Parameters
    ----------
    transformer : transformer
        A transformer or Pipeline; it is cloned, never fitted or modified.

    X : {array-like, DataFrame} of shape (n_samples, n_features)
        Dense, finite data with at least 4 samples (2 to fit on and 2 to score
        on). A DataFrame keeps its column labels.

    method : {"auto", "inverse_transform", "linear"}, default="auto"
        How outputs are mapped back to inputs:

        - ``"inverse_transform"``: the fitted transformer's own
          ``inverse_transform``;
        - ``"linear"``: the least-squares affine map from the outputs to the
          inputs, fitted on the training part;
        - ``"auto"``: the better of the two on the test part, by overall R^2;
          only the linear map when the transformer has no ``inverse_transform``
          or its ``inverse_transform`` refuses (for instance a layer normalizer
          without kept statistics).

    test_size : float or int, default=0.5
        The fraction (float in (0, 1)) or number (int) of samples held out for
        scoring, as in :func:`~sklearn.model_selection.train_test_split`.

    multioutput : {"uniform_average", "variance_weighted", "raw_values"}, \
            default="uniform_average"
        How the per-feature R^2 are combined, as in
        :func:`~sklearn.metrics.r2_score`: their mean, their mean weighted by
        each feature's variance (the fraction of the total variance recovered),
        or no combination (one score per feature).

    random_state : int, RandomState instance or None, default=None
        Seeds the train/test split. Pass an int for reproducible output.

    Returns
    -------
    float or ndarray of shape (n_features,)
        The R^2 of the reconstruction on the test part; an array with
        ``multioutput="raw_values"``.

    See Also
    --------
    invariance_table : Which transformations of the data leave the output
        unchanged.
    collapsed_directions : Number of input directions a fitted transformer
        collapses at each sample.

    Notes
    -----
    For feature ``j`` with held-out values :math:`x_{ij}`, their mean
    :math:`\\bar x_j` and reconstructions :math:`\\hat x_{ij}`,

    .. math::

        R^2_j = 1 - \\frac{\\sum_i (x_{ij} - \\hat x_{ij})^2}
                         {\\sum_i (x_{ij} - \\bar x_j)^2}.

    A feature constant on the test part scores 1 if reconstructed exactly and 0
    otherwise.

    Layer normalization discards each sample's location and scale (Ba, Kiros &
    Hinton 2016). An affine map cannot bring them back when they vary from
    sample to sample, so the R^2 falls below 1; keeping the statistics as extra
    outputs makes the inverse exact and the R^2 equal to 1.

    The linear map has ``n_outputs + 1`` coefficients per feature; with fewer
    training samples than that it interpolates the training part (minimum-norm
    least squares) and generalizes poorly. With ``method="auto"`` the better of
    two reconstructions is picked on the test part itself, a slightly optimistic
    choice when both are close.

    References
    ----------
    .. [1] J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer Normalization",
       arXiv:1607.06450, 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sknorm.inspection import reconstruction_r2
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(40, 2)) @ [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]]
    >>> round(reconstruction_r2(StandardScaler(), X, random_state=0), 6)
    1.0
    >>> round(reconstruction_r2(PCA(n_components=2), X, random_state=0), 6)
    1.0
    >>> reconstruction_r2(PCA(n_components=1), X, random_state=0) < 0.9
    True
    """
    check_transformer(transformer, caller=_CALLER)
    method = check_option(method, name="method", caller=_CALLER, options=_METHODS)
    multioutput = check_option(
        multioutput, name="multioutput", caller=_CALLER, options=_MULTIOUTPUT
    )
    values, columns = check_data(
        X,
        caller=_CALLER,
        min_samples=4,
        allow_nan=False,
        reason="(2 to fit on and 2 to score on)",
    )
    X_train, X_test = train_test_split(
        values, test_size=test_size, random_state=random_state
    )
    if X_train.shape[0] < 2 or X_test.shape[0] < 2:
        raise ValueError(
            f"{_CALLER} needs at least 2 training and 2 test samples; "
            f"test_size={test_size!r} splits {values.shape[0]} samples into "
            f"{X_train.shape[0]} and {X_test.shape[0]}. Pass a test_size that "
            "leaves at least 2 on each side."
        )

    fitted = clone(transformer, safe=False).fit(as_input(X_train, columns))
    Z_train_raw = fitted.transform(as_input(X_train, columns))
    Z_test_raw = fitted.transform(as_input(X_test, columns))

    candidates = []
    if method != "linear":
        if not hasattr(fitted, "inverse_transform"):
            if method == "inverse_transform":
                raise TypeError(
                    f"{_CALLER} got method='inverse_transform', but "
                    f"{type(transformer).__name__} has no inverse_transform. Pass "
                    "method='linear' or 'auto'."
                )
        else:
            try:
                X_hat = as_output_array(
                    fitted.inverse_transform(Z_test_raw),
                    caller=_CALLER,
                    what="inverse_transform",
                )
                if X_hat.shape != X_test.shape:
                    raise ValueError(
                        f"{_CALLER}: inverse_transform returned shape "
                        f"{X_hat.shape}, expected {X_test.shape}."
                    )
            except _INVERSE_ERRORS:
                if method == "inverse_transform":
                    raise
            else:
                candidates.append(X_hat)
    if method != "inverse_transform":
        Z_train = as_output_array(Z_train_raw, caller=_CALLER, what="transform")
        Z_test = as_output_array(Z_test_raw, caller=_CALLER, what="transform")
        candidates.append(_linear_reconstruction(Z_train, X_train, Z_test))

    # With two candidates (method="auto"), keep the better by overall R^2.
    overall = "uniform_average" if multioutput == "raw_values" else multioutput
    best = max(
        candidates, key=lambda X_hat: r2_score(X_test, X_hat, multioutput=overall)
    )
    r2 = r2_score(X_test, best, multioutput=multioutput)
    return r2 if multioutput == "raw_values" else float(r2)
