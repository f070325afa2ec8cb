"""RMS normalization: :class:`RMSNormalizer` and its function twin."""

from ._base import _BaseNormalizer, normalize_array
from ._layout import GroupSpec


class RMSNormalizer(_BaseNormalizer):
    r"""Divide each sample (row) by its root mean square.

    RMSNorm (Zhang & Sennrich, 2019): layer normalization without centering.
    The output is invariant to a positive re-scaling of each sample, but not
    to a shift. Because it does not center, it accepts sparse input (CSR or
    CSC) and keeps it sparse.

    Equivalent to ``LayerNormalizer(center=None, scale="std")``. Read more in
    the :ref:`User Guide <user_guide>` and the example
    :ref:`sphx_glr_auto_examples_plot_what_layer_norm_forgets.py`.

    Parameters
    ----------
    eps : float, default=1e-5
        Added to the mean square: the denominator is
        ``sqrt(mean(x**2) + eps)``, so an all-zero row stays zero.
    affine : bool, default=False
        Learn a per-feature ``gain_`` and ``bias_`` by least-squares
        regression of each feature on its normalized value (dense input only:
        the bias would make sparse output dense).
    keep_stats : bool, default=False
        Append the per-sample RMS as an extra column (``sample_scale``), which
        makes :meth:`inverse_transform` exact.
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
    rms_norm : Equivalent function without the estimator API.
    LayerNormalizer : Center and scale each sample.
    sklearn.preprocessing.Normalizer : Divide each sample by its L2 norm.

    Notes
    -----
    .. math::

        z_{ij} = \frac{x_{ij}}{\sqrt{\frac{1}{d}\sum_j x_{ij}^2 + \epsilon}}

    NaN values are ignored in the row's mean square and kept in the output.
    For a sparse row the implicit zeros count as values. Rows near ``1e300``,
    ``1e-300`` or of subnormal numbers are rescaled by a power of two (exact)
    before their mean square is formed, on every path (dense, sparse, Array
    API), so they normalize as rows near 1 do. Without ``affine``
    the transformer is stateless; it is recommended to call
    ``fit_transform`` in pipelines.

    References
    ----------
    .. [1] B. Zhang and R. Sennrich, "Root Mean Square Layer Normalization",
       NeurIPS, 2019.

    Examples
    --------
    >>> from sknorm import RMSNormalizer
    >>> X = [[3, 4], [6, 8], [0, 0]]
    >>> RMSNormalizer(eps=0).fit_transform(X).round(4)
    array([[0.8485, 1.1314],
           [0.8485, 1.1314],
           [0.    , 0.    ]])
    """

    def __init__(self, *, eps=1e-5, affine=False, keep_stats=False, copy=True):
        self.eps = eps
        self.affine = affine
        self.keep_stats = keep_stats
        self.copy = copy

    def _options(self):
        return None, "std"


def rms_norm(X, *, eps=1e-5, return_stats=False, copy=True):
    """Divide each sample (row) of ``X`` by its root mean square.

    The function twin of :class:`RMSNormalizer`. Read more in the
    :ref:`User Guide <user_guide>` and the example
    :ref:`sphx_glr_auto_examples_plot_what_layer_norm_forgets.py`.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data; CSR/CSC input stays sparse.
    eps : float, default=1e-5
        Added to the mean square under the square root.
    return_stats : bool, default=False
        Also return the per-sample RMS.
    copy : bool, default=True
        Set to False to normalize a float ndarray in place.

    Returns
    -------
    X_tr : {ndarray, sparse matrix} of shape (n_samples, n_features)
        The normalized data.
    scale : ndarray of shape (n_samples,)
        The per-sample RMS (before ``eps``); with ``return_stats``.

    See Also
    --------
    RMSNormalizer : The same normalization as a scikit-learn transformer.

    Examples
    --------
    >>> from sknorm import rms_norm
    >>> Z, rms = rms_norm([[3, 4], [6, 8]], eps=0, return_stats=True)
    >>> Z.round(4), rms.round(4)
    (array([[0.8485, 1.1314],
           [0.8485, 1.1314]]), array([3.5355, 7.0711]))
    """
    Z, _, S = normalize_array(
        X, lambda X: GroupSpec.single(X.shape[1]), None, "std", eps, copy
    )
    return (Z, S[:, 0]) if return_stats else Z
