"""Local rank of a fitted transformer: how many input directions it collapses."""

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._common import (
    as_input,
    as_output_array,
    check_data,
    check_real,
    check_transformer,
)

_CALLER = "collapsed_directions"
# Largest number of float64 entries in one batch of perturbed inputs or outputs.
_BATCH_ENTRIES = 2**21


def _feature_scales(values):
    """Per-column standard deviations, with fallbacks for constant columns.

    A constant column (or a single sample) gets the mean absolute value of all
    entries, and 1 if that is 0 too.
    """
    scales = values.std(axis=0) if values.shape[0] > 1 else np.zeros(values.shape[1])
    fallback = np.mean(np.abs(values)) if values.size else 0.0
    fallback = fallback if fallback > 0 else 1.0
    return np.where(scales > 0, scales, fallback)


def collapsed_directions(
    transformer, X, *, rel_step=None, rtol=1e-4, return_singular_values=False
):
    r"""Count the input directions a fitted transformer collapses at each sample.

    At a sample ``x``, the Jacobian ``J = dT/dx`` of the transformer's ``transform``
    says how the output responds to a small move of the input. A direction ``v``
    with ``J v = 0`` is *collapsed*: moving the sample along it does not change
    the output, so that information is lost. This function returns the number of
    such directions, ``n_features - rank(J)``, at every sample: 2 for layer
    normalization (the sample's location and scale), 1 for RMS normalization or
    the L2 :class:`~sklearn.preprocessing.Normalizer` (its scale), 0 for an
    invertible map such as :class:`~sklearn.preprocessing.StandardScaler`.

    Parameters
    ----------
    transformer : fitted transformer
        A fitted transformer or Pipeline (stateless ones, such as
        :class:`~sklearn.preprocessing.Normalizer`, may be unfitted). Its
        ``transform`` must treat samples independently, as scikit-learn
        transformers do once fitted; it is called on batches of perturbed samples.

    X : {array-like, DataFrame} of shape (n_samples, n_features)
        The samples at which the Jacobian is evaluated. Dense and finite. A
        DataFrame keeps its column labels when the transformer was fitted on
        one (it has ``feature_names_in_``).

    rel_step : float, default=None
        Finite-difference step, relative to each feature's standard deviation in
        ``X``. None uses the cube root of the float64 machine epsilon (about
        6e-6), which balances truncation and rounding errors of central
        differences.

    rtol : float, default=1e-4
        A singular value of the standardized Jacobian (see Notes) counts as zero
        when it is at most ``rtol`` times the largest one at that sample, or at
        most ``rtol`` itself when the largest one is below 1.

    return_singular_values : bool, default=False
        If True, also return the singular values behind the counts.

    Returns
    -------
    n_collapsed : ndarray of shape (n_samples,), dtype int
        ``n_features - rank(J)`` at each sample.

    singular_values : ndarray of shape (n_samples, min(n_features, n_outputs))
        Only when ``return_singular_values=True``: the singular values of the
        standardized Jacobian (see Notes) at each sample, in decreasing order.

    See Also
    --------
    invariance_table : Which transformations of the data leave the output
        unchanged.
    reconstruction_r2 : How much of X can be recovered from the output.

    Notes
    -----
    The Jacobian is estimated by central differences, one input feature at a
    time, with the step :math:`h_j = \mathrm{rel\_step} \cdot s_j` where
    :math:`s_j` is the standard deviation of feature ``j`` in ``X`` (the mean
    absolute entry for a constant feature). It is then expressed in standardized
    units, input feature ``j`` measured in units of :math:`s_j` and output
    ``k`` in units of its standard deviation :math:`t_k` over ``T(X)``:

    .. math::

        \tilde J_{kj} = \frac{s_j}{t_k}
            \frac{T_k(x + h_j e_j) - T_k(x - h_j e_j)}{2 h_j}.

    Such a diagonal rescaling does not change the rank, but it makes the
    relative threshold ``rtol`` independent of the features' units: a
    StandardScaler of features in millimetres and kilometres collapses nothing.

    The rank is the number of singular values of :math:`\tilde J` above
    ``rtol * max(1, largest singular value)``. The relative part makes the count
    independent of how sensitive the transformer is overall; the absolute floor,
    in standardized units "moving the input by one standard deviation moves the
    output by less than ``rtol`` standard deviations", catches transformers that
    collapse every direction up to a small leak (a normalizer of groups of two
    columns, say), where the largest singular value is tiny too.

    Collapse need not be exact to be counted: a
    normalizer computing ``(x - mean) / sqrt(var + eps)`` still responds to the
    sample's scale, with a relative singular value of ``eps / (var + eps)``,
    about 1e-5 for the default ``eps=1e-5`` on a sample of variance 1. It counts
    as collapsed with the default ``rtol`` when the sample's variance is above
    about ``eps / rtol = 0.1``; nearly constant samples keep their scale and
    report one collapsed direction fewer.

    For a transformer with fewer outputs than inputs (PCA with
    ``n_components=k``) the rank is at most the number of outputs, so at least
    ``n_features - k`` directions are collapsed. Piecewise-constant transformers
    (binning) have a zero Jacobian almost everywhere and collapse all directions.

    Central differences need the step to be resolvable: data with a huge offset
    and a tiny spread (``1e8 + 1e-3 * noise``) cannot be perturbed by ``h_j``
    and raise an error; center such data first.

    References
    ----------
    .. [1] J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer Normalization",
       arXiv:1607.06450, 2016, Table 1.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import Normalizer, StandardScaler
    >>> from sknorm.inspection import collapsed_directions
    >>> X = np.array([[1.0, 2.0, 4.0], [3.0, 1.0, 2.0], [2.0, 5.0, 1.0]])
    >>> collapsed_directions(StandardScaler().fit(X), X)
    array([0, 0, 0])
    >>> collapsed_directions(Normalizer().fit(X), X)
    array([1, 1, 1])
    """
    check_transformer(transformer, caller=_CALLER)
    check_is_fitted(transformer)
    if rel_step is None:
        rel_step = np.finfo(np.float64).eps ** (1 / 3)
    rel_step = check_real(
        rel_step, name="rel_step", caller=_CALLER, low=0.0, low_inclusive=False
    )
    rtol = check_real(
        rtol, name="rtol", caller=_CALLER, low=0.0, low_inclusive=True, high=1.0
    )
    values, columns = check_data(
        X, caller=_CALLER, min_samples=1, allow_nan=False, reason="to evaluate at"
    )
    if not hasattr(transformer, "feature_names_in_"):
        # Fitted without column names: a DataFrame would only cause warnings.
        columns = None
    n_samples, n_features = values.shape

    def transform(batch, what):
        Z = transformer.transform(as_input(batch, columns))
        return as_output_array(Z, caller=_CALLER, what=what)

    output = transform(values, "transformer.transform(X)")
    n_outputs = output.shape[1]
    if output.shape[0] != n_samples:
        raise ValueError(
            f"{_CALLER} needs a transform that returns one row per sample; it "
            f"returned {output.shape[0]} rows for {n_samples} samples."
        )
    in_scales = _feature_scales(values)
    out_scales = _feature_scales(output)

    steps = np.diag(rel_step * in_scales)
    batch = max(1, _BATCH_ENTRIES // (2 * n_features * max(n_features, n_outputs)))
    jacobians = np.empty((n_samples, n_outputs, n_features))
    for start in range(0, n_samples, batch):
        # Perturbed copies of each sample: (sample, +/-, feature moved, feature).
        center = values[start : start + batch, None, :]
        moved_in = np.stack([center + steps, center - steps], axis=1)
        # The steps actually taken after rounding, in units of s_j.
        taken = np.diagonal(moved_in[:, 0] - moved_in[:, 1], axis1=1, axis2=2)
        if np.any(taken <= 0):
            raise ValueError(
                f"{_CALLER} could not perturb X: the finite-difference step "
                "rel_step * std(feature) vanishes next to |X| "
                f"(rel_step={rel_step:g}). Center X (or each sample) first, or "
                "pass a larger rel_step."
            )
        taken = taken / in_scales
        moved_out = transform(
            moved_in.reshape(-1, n_features), "transformer.transform(perturbed X)"
        )
        if moved_out.shape[1] != n_outputs:
            raise ValueError(
                f"{_CALLER} needs a transform with a fixed number of outputs; it "
                f"returned {moved_out.shape[1]} columns for perturbed samples and "
                f"{n_outputs} for X."
            )
        moved_out = moved_out.reshape(center.shape[0], 2, n_features, n_outputs)
        difference = (moved_out[:, 0] - moved_out[:, 1]) / out_scales
        jacobians[start : start + batch] = np.swapaxes(
            difference / taken[:, :, None], 1, 2
        )
    if not np.all(np.isfinite(jacobians)):
        bad = np.flatnonzero(~np.isfinite(jacobians).all(axis=(1, 2)))
        raise ValueError(
            f"{_CALLER} got non-finite outputs near samples {bad[:10].tolist()}; "
            "the transformer is not differentiable there (NaN or inf output)."
        )

    singular_values = np.linalg.svd(jacobians, compute_uv=False)
    largest = singular_values.max(axis=1, initial=0.0)
    threshold = rtol * np.maximum(largest, 1.0)
    rank = np.sum(singular_values > threshold[:, None], axis=1)
    n_collapsed = (n_features - rank).astype(np.intp)
    if return_singular_values:
        return n_collapsed, singular_values
    return n_collapsed
