"""The estimator shared by LayerNormalizer, RMSNormalizer and GroupNormalizer.

The three public classes only say which center and scale they use and how
their column groups are built (:meth:`_BaseNormalizer._options` and
:meth:`_BaseNormalizer._make_spec`); fitting, transforming, inverting, tags and
feature names live here. Each call asks :func:`sknorm._engine.backend` once
for the backend of its input (numpy/numba/sparse or Array API) and uses it
for validation and arithmetic, without asking which one it got.
"""

import copy
import functools
import os
import sys
import types
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from . import _array_api, _config, _engine
from ._affine import AffineMoments
from ._layout import GroupSpec, stat_names
from ._validation import (
    SparseInputError,
    check_bool,
    check_options,
    feature_names_out,
    sparse_message,
)
from .exceptions import InconsistentVersionWarning, SingleColumnGroupWarning


def _sparse_ok(center, scale, affine=False):
    return center is None and scale in ("std", None) and not affine


def normalize_array(X, make_spec, center, scale, eps, copy):
    """The function twins' shared body: validate ``X`` and normalize it.

    Returns ``(Z, C, S)``; ``S`` is ones (in the namespace of ``C``) when
    ``scale`` is None.
    """
    eps = check_options(center, scale, eps)
    if sp.issparse(X) and not _sparse_ok(center, scale):
        raise SparseInputError(sparse_message(center, False))
    backend = _engine.backend(X)
    X = backend.check_input(X, accept_sparse=("csr", "csc"), copy=copy)
    Z, C, S = backend.transform(X, make_spec(X), center, scale, eps, copy=copy)
    # C ** 0 is 1 even where C is NaN (IEEE pow), in C's own namespace.
    return Z, C, (C**0 if S is None else S)


def _check_invertible(estimator):
    """Whether ``inverse_transform`` can exist; else say what to change."""
    if not estimator.keep_stats:
        raise AttributeError(
            "inverse_transform needs keep_stats=True: without the per-sample "
            "center and scale the normalization cannot be undone. Set "
            "keep_stats=True and transform again."
        )
    if getattr(estimator, "remainder", "passthrough") == "drop":
        raise AttributeError(
            "inverse_transform cannot bring back columns dropped by "
            "remainder='drop'; use remainder='passthrough'."
        )
    return True


class _available_if_invertible:
    """``inverse_transform`` exists only when :func:`_check_invertible` passes.

    Like :func:`sklearn.utils.metaestimators.available_if` (``hasattr`` is
    False otherwise), but the ``AttributeError`` users see says why and what to
    change, instead of only "has no attribute 'inverse_transform'".
    """

    def __init__(self, fn):
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __get__(self, obj, owner=None):
        if obj is None:
            return self.fn
        try:
            _check_invertible(obj)
        except AttributeError as exc:
            raise AttributeError(
                f"This {type(obj).__name__!r} has no attribute "
                f"{self.fn.__name__!r}: {exc}"
            ) from exc
        return types.MethodType(self.fn, obj)


def _check_fit_params(estimator, center, scale, eps, fitting=False):
    """Refuse to use a fitted state made under other parameters.

    ``gain_``/``bias_`` and the ``partial_fit`` moments depend on ``affine``,
    ``center``, ``scale`` and ``eps``: after ``set_params`` changes one of
    them, using the old fit would silently leave the affine map out or apply
    one fitted for another normalization.
    """
    fitted = getattr(estimator, "_fit_params_", None)
    if fitted is None:
        return
    # The fitted column groups (GroupNormalizer's groups and remainder) are
    # used by every method, affine or not.
    layout = estimator._layout_params()
    changed = [k for k in layout if _canonical(fitted.get(k)) != _canonical(layout[k])]
    if changed:
        raise NotFittedError(
            f"This {type(estimator).__name__} was fitted with other "
            f"{' and '.join(changed)} than its parameters now (set_params after "
            "fit): its fitted column groups do not match them. Call fit again."
        )
    if not (estimator.affine or fitted["affine"]):
        return
    if not fitting and not estimator.affine:
        return  # no affine map used: the fit does not matter
    now = {"affine": bool(estimator.affine), "center": center, "scale": scale}
    now["eps"] = eps
    changed = [k for k in now if fitted[k] != now[k]]
    if changed:
        was = ", ".join(f"{k}={fitted[k]!r}" for k in changed)
        is_ = ", ".join(f"{k}={now[k]!r}" for k in changed)
        raise NotFittedError(
            f"This {type(estimator).__name__} was fitted with {was}, but its "
            f"parameters are now {is_} (set_params after fit): the fitted "
            "affine map does not match them. Call fit again."
        )


def _canonical(value):
    """A comparable form of a parameter value (ints, lists, dicts, arrays)."""
    if isinstance(value, dict):
        return ("dict", tuple((repr(k), _canonical(v)) for k, v in value.items()))
    if isinstance(value, list | tuple | np.ndarray):
        return ("seq", tuple(_canonical(v) for v in value))
    if isinstance(value, np.generic):
        return value.item()
    return value


def _warn_single_column_groups(estimator, spec, center, scale):
    """Warn when a group of one column normalizes to 0 (or to its sign)."""
    # keep_stats keeps each value; center=None with scale None or "iqr" (an
    # IQR of one value is 0) keeps it up to a constant factor.
    if estimator.keep_stats or (center is None and scale in (None, "iqr")):
        return
    groups = zip(spec.names, spec.indices, strict=True)
    single = [name for name, idx in groups if len(idx) == 1]
    if not single:
        return
    if hasattr(estimator, "groups"):
        what = f"the groups {single} have a single column"
    else:
        what = "X has a single column"
    if center is not None:
        result = "every value becomes 0"
    else:
        result = "every value becomes about +1 or -1 (its sign)"
    warnings.warn(
        f"{type(estimator).__name__}: {what}, so each sample is normalized over "
        f"one value and {result}; the column's information is lost. To scale "
        "a single column across the samples use sklearn.preprocessing."
        "StandardScaler; give the normalizer several columns at once (not one "
        "column at a time, as skrub's TableVectorizer does with a numeric "
        "transformer); or set keep_stats=True to keep each value.",
        SingleColumnGroupWarning,
        stacklevel=_caller_stacklevel(),
    )


def _caller_stacklevel():
    """The ``stacklevel`` of the first frame outside sknorm and scikit-learn."""
    import sklearn

    packages = tuple(
        os.path.dirname(os.path.abspath(m.__file__))
        for m in (sys.modules[__package__], sklearn)
    )
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(packages):
        frame, level = frame.f_back, level + 1
    return level


class _BaseNormalizer(TransformerMixin, BaseEstimator):
    """Per-sample normalization of column groups; see the public subclasses."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Overrides run with the configuration the estimator carries as well.
        for name in ("fit", "partial_fit", "transform", "fit_transform"):
            method = vars(cls).get(name)
            if isinstance(method, types.FunctionType):
                setattr(cls, name, _config.carry_config(method))

    def __sklearn_clone__(self):
        # The clone records sknorm's configuration, to take it to joblib
        # workers (see sknorm.set_config), as set_output's travels.
        new = super().__sklearn_clone__()
        record = _config._record(getattr(self, "_sknorm_config", None))
        if record is not None:
            new._sknorm_config = record
        return new

    # -- configuration hooks -------------------------------------------------
    def _options(self):
        """Return ``(center, scale)``."""
        return self.center, self.scale

    def _make_spec(self, n_features, feature_names):
        """Return the :class:`~sknorm._layout.GroupSpec` for this many columns."""
        return GroupSpec.single(n_features)

    def _requires_fit(self):
        return bool(self.affine)

    def _layout_params(self):
        """The parameters the fitted column groups depend on, by name."""
        return {}

    # -- helpers --------------------------------------------------------------
    def _check_params(self):
        center, scale = self._options()
        eps = check_options(center, scale, self.eps)
        check_bool(self.affine, "affine")
        check_bool(self.keep_stats, "keep_stats")
        check_bool(self.copy, "copy")
        return center, scale, eps

    def _accept_sparse(self, X, center, scale):
        if sp.issparse(X):
            if not _sparse_ok(center, scale, self.affine):
                raise SparseInputError(sparse_message(center, self.affine))
            return ("csr", "csc")
        return False

    def _reset(self):
        for attr in (
            "n_samples_seen_",
            "gain_",
            "bias_",
            "_moments",
            "_spec_",
            "_array_ref_",
            "_fit_params_",
        ):
            if hasattr(self, attr):
                delattr(self, attr)

    # -- fitting --------------------------------------------------------------
    @_config.carry_config
    def fit(self, X, y=None, sample_weight=None):
        """Fit the normalizer to ``X``.

        Without ``affine`` nothing is learned from the values of ``X`` (the
        normalization is per sample); fit records the number of features,
        their names and, for group normalization, the resolved groups. With
        ``affine=True`` it fits ``gain_`` and ``bias_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data. Sparse input needs ``center=None``.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the affine regression.

        Returns
        -------
        self : object
            The fitted normalizer.
        """
        self._reset()
        return self.partial_fit(X, y, sample_weight=sample_weight)

    @_config.carry_config
    def partial_fit(self, X, y=None, sample_weight=None):
        """Update the fit with a batch of samples.

        The affine regression keeps exact sufficient statistics (weighted
        means, centered sums of squares and cross-products), merged across
        batches, so that any sequence of ``partial_fit`` calls equals one
        ``fit`` on the concatenated batches up to rounding.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            A batch of samples.
        y : None
            Ignored.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the affine regression.

        Returns
        -------
        self : object
            The updated normalizer.
        """
        center, scale, eps = self._check_params()
        first = not hasattr(self, "n_samples_seen_")
        if not first:
            _check_fit_params(self, center, scale, eps, fitting=True)
            _array_api.check_fitted_namespace(self, X, "partial_fit")
        backend = _engine.backend(X)
        X = backend.validate(
            self,
            X,
            reset=first,
            accept_sparse=self._accept_sparse(X, center, scale),
            fitting=True,
        )
        w = backend.sample_weight(sample_weight, X.shape[0])
        if first:
            ref = backend.reference()
            if ref is not None:
                self._array_ref_ = ref
            self._spec_ = self._make_spec(
                X.shape[1], getattr(self, "feature_names_in_", None)
            )
            _warn_single_column_groups(self, self._spec_, center, scale)
            self.n_samples_seen_ = 0
            self._fit_params_ = {
                "affine": bool(self.affine),
                "center": center,
                "scale": scale,
                "eps": eps,
                **copy.deepcopy(self._layout_params()),
            }
            if self.affine:
                self._moments = AffineMoments(int(self._spec_.in_group.sum()))
        if self.affine:
            batch = backend.affine_moments(X, w, self._spec_, center, scale, eps)
            self._moments.merge(batch)
            self._refresh_affine()
        self.n_samples_seen_ += X.shape[0]
        return self

    def _refresh_affine(self):
        """Set ``gain_`` and ``bias_`` from the merged regression moments."""
        spec = self._spec_
        cols = np.flatnonzero(spec.in_group)
        # Columns outside every group pass through: identity gain and bias.
        gain = np.ones(spec.n_features)
        bias = np.zeros(spec.n_features)
        gain[cols], bias[cols] = self._moments.gain_bias()
        self.gain_ = _array_api.to_fitted_namespace(self, gain)
        self.bias_ = _array_api.to_fitted_namespace(self, bias)

    def merge(self, other):
        """Add the fit of ``other`` (same parameters, other samples) to this one.

        Fitting an estimator on batch A, a clone on batch B and merging the
        two gives the fit on the rows of A and B, up to rounding: the number
        of samples seen adds up and, with ``affine=True``, the regression
        moments merge by the exact pairwise update of Chan, Golub & LeVeque,
        as in :meth:`partial_fit`. This is how per-partition fits combine on
        a cluster (:mod:`sknorm.dask` and :mod:`sknorm.spark` use it).

        Like :meth:`partial_fit`, the merge is in place: this estimator is
        updated and ``other`` is left unchanged. Merge into a copy
        (``copy.deepcopy(a).merge(b)``) to keep both fits.

        Parameters
        ----------
        other : estimator of the same class and parameters, fitted
            A fit on other samples with the same columns (same number, same
            names in the same order).

        Returns
        -------
        self : object
            This estimator, now fitted on the samples of both.

        Examples
        --------
        >>> import numpy as np
        >>> from sknorm import LayerNormalizer
        >>> X = np.array([[1.0, 2.0, 4.0], [2.0, 0.0, 1.0],
        ...               [3.0, 5.0, 4.0], [0.0, 1.0, 3.0]])
        >>> a = LayerNormalizer(affine=True).fit(X[:2])
        >>> b = LayerNormalizer(affine=True).fit(X[2:])
        >>> merged = a.merge(b)
        >>> merged is a, merged.n_samples_seen_, b.n_samples_seen_
        (True, 4, 2)
        >>> full = LayerNormalizer(affine=True).fit(X)
        >>> bool(np.allclose(merged.gain_, full.gain_))
        True
        """
        check_is_fitted(self, "n_samples_seen_")
        check_is_fitted(other, "n_samples_seen_")
        if type(other) is not type(self):
            raise TypeError(
                f"Cannot merge a {type(other).__name__} into a "
                f"{type(self).__name__}: fit the same estimator on each batch."
            )
        if other.n_features_in_ != self.n_features_in_:
            raise ValueError(
                f"Cannot merge fits on {other.n_features_in_} and "
                f"{self.n_features_in_} features: every batch needs the same "
                "columns."
            )
        names, other_names = (
            getattr(est, "feature_names_in_", None) for est in (self, other)
        )
        if (names is None) != (other_names is None) or (
            names is not None and not np.array_equal(names, other_names)
        ):
            raise ValueError(
                "Cannot merge fits on batches with different column names: every "
                "batch needs the same columns, in the same order."
            )
        if self.affine:
            self._moments.merge(other._moments)
            self._refresh_affine()
        self.n_samples_seen_ += other.n_samples_seen_
        return self

    # -- transforming ---------------------------------------------------------
    def _spec_for(self, n_features):
        if hasattr(self, "_spec_"):
            return self._spec_
        return self._make_spec(n_features, None)

    @_config.carry_config
    def transform(self, X, copy=None):
        """Normalize each sample of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The data to normalize.
        copy : bool, default=None
            Copy ``X`` (default: the ``copy`` parameter). With ``copy=False``
            a float ndarray is normalized in place when the output has the
            same columns as the input (no ``keep_stats``, nothing dropped).

        Returns
        -------
        X_tr : {ndarray, sparse matrix} of shape (n_samples, n_features_out)
            The normalized data, followed by the kept statistics with
            ``keep_stats=True``.
        """
        if self._requires_fit():
            check_is_fitted(self)
        center, scale, eps = self._check_params()
        _check_fit_params(self, center, scale, eps)
        _array_api.check_fitted_namespace(self, X, "transform")
        gain = getattr(self, "gain_", None) if self.affine else None
        bias = getattr(self, "bias_", None) if self.affine else None
        copy = self.copy if copy is None else copy
        backend = _engine.backend(X)
        X = backend.validate(
            self,
            X,
            reset=False,
            accept_sparse=self._accept_sparse(X, center, scale),
            fitting=False,
            copy=copy,
        )
        Z, _, _ = backend.transform(
            X,
            self._spec_for(X.shape[1]),
            center,
            scale,
            eps,
            gain=gain,
            bias=bias,
            keep_stats=self.keep_stats,
            copy=copy,
            stats=False,
        )
        return Z

    @_available_if_invertible
    @_config.carry_config
    def inverse_transform(self, X):
        """Recover the input from the output of :meth:`transform`.

        Exact (up to rounding) with ``keep_stats=True``: the kept per-sample
        center and scale undo the normalization, and ``gain_``/``bias_`` the
        affine map. Without kept statistics the per-sample location and scale
        are lost and no inverse exists: the method is then not available
        (``hasattr(est, "inverse_transform")`` is False, and calling it raises
        an ``AttributeError`` that says to set ``keep_stats=True``), as for
        any scikit-learn estimator that cannot invert.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features_out)
            Output of :meth:`transform`, kept statistics included.

        Returns
        -------
        X_original : {ndarray, sparse matrix} of shape (n_samples, n_features_in)
            The reconstructed input.
        """
        center, scale, eps = self._check_params()
        if self._requires_fit():
            check_is_fitted(self)
        _check_fit_params(self, center, scale, eps)
        _array_api.check_fitted_namespace(self, X, "inverse_transform")
        backend = _engine.backend(X)
        X = backend.check_input(X, accept_sparse=("csr", "csc"), allow_nan=True)
        n_stats = sum(s is not None for s in (center, scale))
        if hasattr(self, "_spec_"):
            spec = self._spec_
        else:
            spec = self._make_spec(max(X.shape[1] - n_stats, 0), None)
        n_out = spec.n_features + n_stats * len(spec.indices)
        if X.shape[1] != n_out:
            raise ValueError(
                f"X has {X.shape[1]} columns, but inverse_transform expects "
                f"{n_out}: the {spec.n_features} transformed features followed "
                f"by {n_stats * len(spec.indices)} kept statistics."
            )
        gain = bias = None
        if self.affine:
            gain, bias = self.gain_, self.bias_
            zero = backend.to_numpy(gain) == 0
            if zero.any():
                raise ValueError(
                    "Cannot invert the affine map: gain_ is 0 for features "
                    f"{np.flatnonzero(zero).tolist()}."
                )
        return backend.inverse_transform(
            X, spec, center, scale, eps, gain=gain, bias=bias
        )

    # -- persistence ----------------------------------------------------------
    def __getstate__(self):
        # object.__getstate__ may return the instance's own __dict__: copy it.
        state = dict(super().__getstate__())
        from . import __version__

        state["_sknorm_version"] = __version__
        return state

    def __setstate__(self, state):
        from . import __version__

        state = dict(state)
        saved = state.pop("_sknorm_version", "unknown")
        if saved != __version__:
            warnings.warn(
                InconsistentVersionWarning(type(self).__name__, __version__, saved),
                stacklevel=2,
            )
        super().__setstate__(state)

    # -- metadata -------------------------------------------------------------
    def _stat_names(self):
        center, scale = self._options()
        if not self.keep_stats:
            return []
        return stat_names(self._spec_, center, scale)

    def get_feature_names_out(self, input_features=None):
        """Get output feature names for transformation.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names. If None, ``feature_names_in_`` is used when
            defined, else ``["x0", "x1", ..., "x(n_features_in_ - 1)"]``.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The kept input names, followed by ``"<group>_center"`` and
            ``"<group>_scale"`` for each group with ``keep_stats=True``.
        """
        check_is_fitted(self, "n_features_in_")
        return feature_names_out(self, input_features, self._stat_names())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        center, scale = self._options()
        tags.input_tags.allow_nan = True
        tags.input_tags.sparse = _sparse_ok(center, scale, self.affine)
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.requires_fit = self._requires_fit()
        # Array API input (with array_api_dispatch) stays in its namespace and
        # on its device; see sknorm._array_api.
        tags.array_api_support = _array_api.supported()
        return tags
