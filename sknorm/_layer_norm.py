"""Layer normalization: :class:`LayerNormalizer` and its function twin."""

from ._base import _BaseNormalizer, normalize_array
from ._layout import GroupSpec


class LayerNormalizer(_BaseNormalizer):
    r"""Normalize each sample (row) to zero center and unit scale.

    Layer normalization (Ba, Kiros & Hinton, 2016) applied to tabular data:
    every sample is centered by its own mean and divided by its own standard
    deviation across the features. The output is invariant to any per-sample
    shift and positive re-scaling: ``[1, 2, 3, 4]`` and ``[4, 5, 6, 7]`` give
    the same row. Those two degrees of freedom per sample are thrown away;
    ``keep_stats=True`` keeps them as two extra columns.

    This is the one-group case of :class:`GroupNormalizer`. Read more in the
    :ref:`User Guide <user_guide>` and the examples
    :ref:`sphx_glr_auto_examples_plot_what_layer_norm_forgets.py` (what is
    lost), :ref:`sphx_glr_auto_examples_plot_recover_lost_information.py`
    (getting it back) and
    :ref:`sphx_glr_auto_examples_plot_when_forgetting_helps.py` (when losing
    it helps a model, and when it hurts).

    Parameters
    ----------
    center : {"mean", "median"} or None, default="mean"
        The per-sample location subtracted from each row. ``None``: no
        centering.
    scale : {"std", "mad", "iqr"} or None, default="std"
        The per-sample spread each row is divided by. ``"std"``: root mean
        square deviation about the center (biased, as in the paper and in
        PyTorch); with ``center=None`` it is the root mean square (RMS
        normalization). ``"mad"``: 1.4826 times the median absolute deviation
        about the center. ``"iqr"``: the interquartile range divided by 1.349.
        Both robust scales estimate the standard deviation for normal data;
        see :ref:`sphx_glr_auto_examples_plot_robust_normalization.py`.
        ``None``: no scaling.
    eps : float, default=1e-5
        Added to the squared scale: the denominator is
        ``sqrt(scale**2 + eps)``, so a constant row maps to zeros.
    affine : bool, default=False
        Learn a per-feature ``gain_`` and ``bias_`` in :meth:`fit` by
        least-squares regression of each original feature on its normalized
        value, and output ``gain_ * z + bias_``.
    keep_stats : bool, default=False
        Append the per-sample center and scale as two extra output columns
        (``sample_center``, ``sample_scale``), which makes
        :meth:`inverse_transform` exact.
    copy : bool, default=True
        Set to False to normalize a float array in place when possible.

    Attributes
    ----------
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.
    n_samples_seen_ : int
        Number of samples seen by :meth:`fit` / :meth:`partial_fit`.
    gain_ : ndarray of shape (`n_features_in_`,)
        Per-feature slope of the affine map (only with ``affine=True``).
    bias_ : ndarray of shape (`n_features_in_`,)
        Per-feature intercept of the affine map (only with ``affine=True``).

    See Also
    --------
    layer_norm : Equivalent function without the estimator API.
    RMSNormalizer : Divide by the row RMS without centering.
    GroupNormalizer : Normalize groups of columns separately.
    sklearn.preprocessing.StandardScaler : Standardize columns, not rows.

    Notes
    -----
    For sample :math:`x_i` with :math:`d` features,

    .. math::

        \mu_i = \frac{1}{d}\sum_j x_{ij}, \qquad
        \sigma_i^2 = \frac{1}{d}\sum_j (x_{ij} - \mu_i)^2, \qquad
        z_{ij} = \frac{x_{ij} - \mu_i}{\sqrt{\sigma_i^2 + \epsilon}} .

    NaN values are ignored in a row's statistics and kept as NaN in the
    output. The mean and variance are computed by the corrected two-pass
    algorithm of Chan, Golub & LeVeque (never :math:`E[x^2] - E[x]^2`), so
    rows like ``1e12 + noise`` are exact to rounding; rows near ``1e300``,
    ``1e-300`` or of subnormal numbers are first rescaled by a power of two
    (exact), so they normalize as rows near 1 do. Every path (numpy and
    numba engines, Array API arrays, Dask) follows this one algorithm; see
    the user guide's section on numerical stability. Where a robust scale
    (``"mad"``, ``"iqr"``) is 0 in a row whose values are not all equal, the
    scale is ``sqrt(pi / 2)`` times the row's mean absolute deviation about
    its center, whatever ``eps``. With ``affine=True``, for each feature
    :math:`j`, ``gain_[j]`` and ``bias_[j]`` minimize
    :math:`\sum_i w_i (x_{ij} - g_j z_{ij} - b_j)^2`; if :math:`z_j` has
    variance below 1e-12 the fallback is ``gain_[j] = 1`` and
    ``bias_[j] = mean(x_j) - mean(z_j)``. The affine map is applied in
    float64 and rounded once to the output dtype; a float32 result beyond the
    float32 range raises a ``ValueError``.

    Without ``affine`` the transformer is stateless: ``fit`` only checks the
    data, and it is recommended to call ``fit_transform`` in pipelines.

    References
    ----------
    .. [1] J. L. Ba, J. R. Kiros and G. E. Hinton, "Layer Normalization",
       arXiv:1607.06450, 2016.

    Examples
    --------
    >>> from sknorm import LayerNormalizer
    >>> X = [[1, 2, 3, 4], [4, 5, 6, 7], [2, 4, 6, 8]]
    >>> LayerNormalizer().fit_transform(X).round(3)
    array([[-1.342, -0.447,  0.447,  1.342],
           [-1.342, -0.447,  0.447,  1.342],
           [-1.342, -0.447,  0.447,  1.342]])
    >>> ln = LayerNormalizer(keep_stats=True).fit(X)
    >>> ln.get_feature_names_out()
    array(['x0', 'x1', 'x2', 'x3', 'sample_center', 'sample_scale'], dtype=object)
    >>> ln.inverse_transform(ln.transform(X)).round(6)
    array([[1., 2., 3., 4.],
           [4., 5., 6., 7.],
           [2., 4., 6., 8.]])
    """

    def __init__(
        self,
        *,
        center="mean",
        scale="std",
        eps=1e-5,
        affine=False,
        keep_stats=False,
        copy=True,
    ):
        self.center = center
        self.scale = scale
        self.eps = eps
        self.affine = affine
        self.keep_stats = keep_stats
        self.copy = copy


def layer_norm(
    X, *, center="mean", scale="std", eps=1e-5, return_stats=False, copy=True
):
    """Normalize each sample (row) of ``X`` to zero center and unit scale.

    The function twin of :class:`LayerNormalizer`, as
    :func:`sklearn.preprocessing.scale` is to ``StandardScaler``. Read more
    in the :ref:`User Guide <user_guide>` and the example
    :ref:`sphx_glr_auto_examples_plot_what_layer_norm_forgets.py`.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data. Sparse input needs ``center=None``.
    center : {"mean", "median"} or None, default="mean"
        The per-sample location subtracted from each row.
    scale : {"std", "mad", "iqr"} or None, default="std"
        The per-sample spread each row is divided by (see
        :class:`LayerNormalizer`).
    eps : float, default=1e-5
        Added to the squared scale under the square root.
    return_stats : bool, default=False
        Also return the per-sample center and scale.
    copy : bool, default=True
        Set to False to normalize a float ndarray in place.

    Returns
    -------
    X_tr : {ndarray, sparse matrix} of shape (n_samples, n_features)
        The normalized data.
    center : ndarray of shape (n_samples,)
        Per-sample center (zeros for ``center=None``); with ``return_stats``.
    scale : ndarray of shape (n_samples,)
        Per-sample scale before ``eps`` (ones for ``scale=None``); with
        ``return_stats``.

    See Also
    --------
    LayerNormalizer : The same normalization as a scikit-learn transformer.

    Examples
    --------
    >>> from sknorm import layer_norm
    >>> Z, center, scale = layer_norm([[1, 2, 3, 4], [4, 5, 6, 7]], return_stats=True)
    >>> Z.round(3)
    array([[-1.342, -0.447,  0.447,  1.342],
           [-1.342, -0.447,  0.447,  1.342]])
    >>> center, scale.round(4)
    (array([2.5, 5.5]), array([1.118, 1.118]))
    """
    Z, C, S = normalize_array(
        X, lambda X: GroupSpec.single(X.shape[1]), center, scale, eps, copy
    )
    return (Z, C[:, 0], S[:, 0]) if return_stats else Z
