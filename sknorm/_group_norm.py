"""Group normalization: :class:`GroupNormalizer` and its function twin."""

import numpy as np

from ._base import _BaseNormalizer, normalize_array
from ._validation import resolve_groups


class GroupNormalizer(_BaseNormalizer):
    r"""Normalize each sample within each group of columns.

    Group normalization (Wu & He, 2018) for tabular data: the columns are cut
    into groups (for example the channels of a sensor, or the bands of a
    spectrum) and each sample is centered and scaled separately within each
    group. Every group of every sample loses its location and scale (two
    degrees of freedom); ``keep_stats=True`` keeps them as extra columns.
    :class:`LayerNormalizer` is the one-group case.

    Read more in the :ref:`User Guide <user_guide>` and the example
    :ref:`sphx_glr_auto_examples_plot_pipelines.py`.

    Parameters
    ----------
    groups : int, list of lists or dict
        The column groups. An int ``k``: ``k`` equal contiguous groups
        (``k`` must divide the number of features). A list of column lists,
        or a dict ``name -> columns``: explicit, non-overlapping groups, the
        columns given as integer indices or, when fitted on a pandas
        DataFrame, as column names. Dict keys name the kept statistics'
        columns, as strings (keys equal after ``str()``, like ``1`` and
        ``"1"``, are an error); otherwise groups are named ``group0``,
        ``group1``, ...
    center : {"mean", "median"} or None, default="mean"
        The per-sample, per-group location (see :class:`LayerNormalizer`).
    scale : {"std", "mad", "iqr"} or None, default="std"
        The per-sample, per-group spread (see :class:`LayerNormalizer`).
    eps : float, default=1e-5
        Added to the squared scale under the square root.
    affine : bool, default=False
        Learn a per-feature ``gain_`` and ``bias_`` for the grouped columns by
        least-squares regression of each feature on its normalized value.
    keep_stats : bool, default=False
        Append a center and a scale column per group (``<group>_center``,
        ``<group>_scale``), which makes :meth:`inverse_transform` exact.
    remainder : {"passthrough", "drop"}, default="passthrough"
        What happens to columns in no group: kept unchanged, or dropped.
    copy : bool, default=True
        Set to False to normalize a float array in place when possible.

    Attributes
    ----------
    groups_ : dict of str to ndarray of int
        The resolved groups: group name to the indices of its input columns.
    n_features_in_ : int
        Number of features seen during :term:`fit`.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during :term:`fit`. Defined only when `X`
        has feature names that are all strings.
    n_samples_seen_ : int
        Number of samples seen by :meth:`fit` / :meth:`partial_fit`.
    gain_ : ndarray of shape (`n_features_in_`,)
        Per-feature slope of the affine map (1 for columns in no group; only
        with ``affine=True``).
    bias_ : ndarray of shape (`n_features_in_`,)
        Per-feature intercept of the affine map (0 for columns in no group;
        only with ``affine=True``).

    See Also
    --------
    group_norm : Equivalent function without the estimator API.
    LayerNormalizer : One group holding every column.

    Notes
    -----
    For sample :math:`i` and group :math:`G` of size :math:`|G|`,

    .. math::

        z_{ij} = \frac{x_{ij} - \mu_{iG}}{\sqrt{\sigma_{iG}^2 + \epsilon}},
        \quad j \in G,

    with :math:`\mu_{iG}` and :math:`\sigma_{iG}^2` the mean and biased
    variance of :math:`x_{ij}, j \in G`. Output columns keep the input order
    (columns in no group stay in place, or are dropped), followed by the kept
    statistics. A group of one column always normalizes to 0 (its value is
    its own center): it only makes sense with ``keep_stats=True``, and
    :meth:`fit` warns otherwise
    (:class:`~sknorm.exceptions.SingleColumnGroupWarning`). With the
    default ``eps``, groups whose spread is comparable to ``sqrt(eps)`` keep
    part of their scale.

    References
    ----------
    .. [1] Y. Wu and K. He, "Group Normalization", ECCV, 2018.

    Examples
    --------
    >>> from sknorm import GroupNormalizer
    >>> X = [[1, 3, 10, 30, 7], [2, 4, 20, 40, 8]]
    >>> gn = GroupNormalizer({"a": [0, 1], "b": [2, 3]}, eps=0, keep_stats=True)
    >>> gn.fit_transform(X)
    array([[-1.,  1., -1.,  1.,  7.,  2.,  1., 20., 10.],
           [-1.,  1., -1.,  1.,  8.,  3.,  1., 30., 10.]])
    >>> gn.get_feature_names_out()
    array(['x0', 'x1', 'x2', 'x3', 'x4', 'a_center', 'a_scale', 'b_center',
           'b_scale'], dtype=object)
    """

    def __init__(
        self,
        groups,
        *,
        center="mean",
        scale="std",
        eps=1e-5,
        affine=False,
        keep_stats=False,
        remainder="passthrough",
        copy=True,
    ):
        self.groups = groups
        self.center = center
        self.scale = scale
        self.eps = eps
        self.affine = affine
        self.keep_stats = keep_stats
        self.remainder = remainder
        self.copy = copy

    def _make_spec(self, n_features, feature_names):
        return resolve_groups(self.groups, n_features, feature_names, self.remainder)

    def _requires_fit(self):
        return True

    def _layout_params(self):
        return {"groups": self.groups, "remainder": self.remainder}

    def partial_fit(self, X, y=None, sample_weight=None):
        super().partial_fit(X, y, sample_weight=sample_weight)
        self.groups_ = dict(zip(self._spec_.names, self._spec_.indices, strict=True))
        return self

    partial_fit.__doc__ = _BaseNormalizer.partial_fit.__doc__

    def _reset(self):
        super()._reset()
        if hasattr(self, "groups_"):
            del self.groups_


def group_norm(
    X,
    groups,
    *,
    center="mean",
    scale="std",
    eps=1e-5,
    return_stats=False,
    copy=True,
):
    """Normalize each sample of ``X`` within each group of columns.

    The function twin of :class:`GroupNormalizer`; columns in no group are
    passed through. Read more in the :ref:`User Guide <user_guide>` and the
    example :ref:`sphx_glr_auto_examples_plot_pipelines.py`.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        The data. Sparse input needs ``center=None``.
    groups : int, list of lists or dict
        The column groups, as for :class:`GroupNormalizer`. Column names are
        accepted when ``X`` is a pandas DataFrame.
    center : {"mean", "median"} or None, default="mean"
        The per-sample, per-group location.
    scale : {"std", "mad", "iqr"} or None, default="std"
        The per-sample, per-group spread.
    eps : float, default=1e-5
        Added to the squared scale under the square root.
    return_stats : bool, default=False
        Also return the per-sample, per-group center and scale.
    copy : bool, default=True
        Set to False to normalize a float ndarray in place.

    Returns
    -------
    X_tr : {ndarray, sparse matrix} of shape (n_samples, n_features)
        The normalized data.
    center : ndarray of shape (n_samples, n_groups)
        Per-sample, per-group center (zeros for ``center=None``); with
        ``return_stats``.
    scale : ndarray of shape (n_samples, n_groups)
        Per-sample, per-group scale before ``eps`` (ones for ``scale=None``);
        with ``return_stats``.

    See Also
    --------
    GroupNormalizer : The same normalization as a scikit-learn transformer.

    Examples
    --------
    >>> from sknorm import group_norm
    >>> group_norm([[1, 3, 10, 30], [2, 4, 20, 40]], 2, eps=0)
    array([[-1.,  1., -1.,  1.],
           [-1.,  1., -1.,  1.]])
    """
    names = getattr(X, "columns", None)
    if names is not None:
        names = np.asarray([str(c) for c in names], dtype=object)
    Z, C, S = normalize_array(
        X, lambda X: resolve_groups(groups, X.shape[1], names), center, scale, eps, copy
    )
    if not return_stats:
        return Z
    return Z, C, S
