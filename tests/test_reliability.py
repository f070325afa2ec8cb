"""Regression tests for issue 12: no silent wrong answers, errors that say what to do.

Each test goes through the public API and failed before its fix.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer, group_norm
from sknorm.exceptions import SingleColumnGroupWarning

X4 = np.array([[1.0, 2.0, 10.0, 40.0], [3.0, 7.0, 5.0, 6.0]])


# -- group names that collide after str() ---------------------------------------
@pytest.mark.parametrize(
    "groups",
    [{1: [0, 1], "1": [2, 3]}, {"a": [0], 1.0: [1], "1.0": [2, 3]}],
)
def test_group_names_equal_after_str_are_an_error(groups):
    with pytest.raises(ValueError, match="must differ after str") as err:
        GroupNormalizer(groups, keep_stats=True).fit(X4)
    assert "Rename the groups" in str(err.value)
    with pytest.raises(ValueError, match="must differ after str"):
        group_norm(X4, groups)


def test_distinct_group_names_keep_every_group():
    gn = GroupNormalizer({1: [0, 1], "2": [2, 3]}, keep_stats=True, eps=0).fit(X4)
    assert list(gn.groups_) == ["1", "2"]
    names = gn.get_feature_names_out()
    assert len(set(names)) == len(names) == 8
    Z = gn.transform(X4)
    # each pair of two columns normalizes to -1, 1 (or 1, -1)
    np.testing.assert_allclose(np.abs(Z[:, :4]), 1.0)


# -- set_params after fit: the fitted affine map must match the parameters ------
def _affine_reference(X, Z_fit, Z):
    """Least-squares gain/bias of each column of X on Z_fit, applied to Z."""
    out = np.empty_like(Z)
    for j in range(X.shape[1]):
        A = np.column_stack([Z_fit[:, j], np.ones(len(X))])
        (g, b), *_ = np.linalg.lstsq(A, X[:, j], rcond=None)
        out[:, j] = g * Z[:, j] + b
    return out


@pytest.mark.parametrize("Est", [LayerNormalizer, RMSNormalizer])
def test_affine_switched_on_after_fit_says_to_refit(Est, rng):
    X = rng.normal(size=(30, 5)) * rng.uniform(0.5, 3, size=5) + rng.normal(size=5)
    est = Est(keep_stats=True).fit(X)
    est.set_params(affine=True)
    for method in ("transform", "inverse_transform", "partial_fit"):
        arg = X if method != "inverse_transform" else np.zeros((3, 7))
        with pytest.raises(NotFittedError, match="affine=False.*Call fit again"):
            getattr(est, method)(arg)
    # after a refit the affine map is there
    Z = est.fit(X).transform(X)[:, :5]
    Z_plain = Est().fit_transform(X)
    np.testing.assert_allclose(Z, _affine_reference(X, Z_plain, Z_plain), atol=1e-9)


def test_normalization_changed_after_affine_fit_says_to_refit(rng):
    X = rng.normal(size=(20, 4))
    ln = LayerNormalizer(affine=True).fit(X)
    ln.set_params(center="median", scale="mad")
    with pytest.raises(NotFittedError, match="center='mean', scale='std'"):
        ln.transform(X)
    ln.set_params(center="mean", scale="std", eps=0.5)
    with pytest.raises(NotFittedError, match="eps=1e-05"):
        ln.transform(X)


def test_group_normalizer_affine_switched_on_after_fit(rng):
    X = rng.normal(size=(10, 4))
    gn = GroupNormalizer(2).fit(X)
    gn.set_params(affine=True)
    with pytest.raises(NotFittedError, match="affine=False"):
        gn.transform(X)


@pytest.mark.parametrize(
    "change", [{"groups": 3}, {"groups": [[0, 1, 2], [3, 4, 5]]}, {"remainder": "drop"}]
)
def test_group_normalizer_groups_changed_after_fit_says_to_refit(rng, change):
    # Before, transform silently used the groups resolved at fit.
    X = rng.normal(size=(10, 6))
    gn = GroupNormalizer({"a": [0, 1], "b": [2, 3, 4]}).fit(X)
    gn.set_params(**change)
    for method in (gn.transform, gn.partial_fit):
        with pytest.raises(NotFittedError, match=f"{next(iter(change))}.*fit again"):
            method(X)
    gn.fit(X)  # refitting takes the new groups
    fresh = GroupNormalizer({"a": [0, 1], "b": [2, 3, 4]}).set_params(**change)
    np.testing.assert_array_equal(gn.transform(X), fresh.fit_transform(X))


def test_group_normalizer_same_groups_given_again_need_no_refit(rng):
    X = rng.normal(size=(10, 4))
    gn = GroupNormalizer([np.array([0, 1]), [2, 3]]).fit(X)
    gn.set_params(groups=[[0, 1], [np.int64(2), 3]])
    np.testing.assert_allclose(gn.transform(X), group_norm(X, [[0, 1], [2, 3]]))


def test_parameters_the_fit_does_not_depend_on_can_change(rng):
    X = rng.normal(size=(10, 4))
    ln = LayerNormalizer(affine=True).fit(X)
    Z = ln.transform(X)
    ln.set_params(keep_stats=True)
    np.testing.assert_array_equal(ln.transform(X)[:, :4], Z)
    # switching the affine map off uses no fitted state: plain normalization
    ln.set_params(affine=False, keep_stats=False, center="median")
    np.testing.assert_allclose(
        ln.transform(X), LayerNormalizer(center="median").fit_transform(X)
    )


# -- inverse_transform without keep_stats: the message says what to change ------
@pytest.mark.parametrize(
    "est, hint",
    [
        (LayerNormalizer(), "keep_stats=True"),
        (RMSNormalizer(affine=True), "keep_stats=True"),
        (GroupNormalizer(2, keep_stats=True, remainder="drop"), "remainder"),
    ],
)
def test_missing_inverse_transform_message_names_the_fix(est, hint):
    X = np.array([[1.0, 2.0, 3.0, 5.0], [2.0, 0.0, 1.0, 4.0]])
    est.fit(X)
    assert not hasattr(est, "inverse_transform")
    with pytest.raises(AttributeError) as err:
        est.inverse_transform(X)
    message = str(err.value)
    assert hint in message
    assert "has no attribute 'inverse_transform'" in message
    assert type(est).__name__ in message


def test_inverse_transform_available_with_keep_stats():
    X = np.array([[1.0, 2.0, 3.0, 5.0], [2.0, 0.0, 1.0, 4.0]])
    ln = LayerNormalizer(keep_stats=True).fit(X)
    assert hasattr(ln, "inverse_transform")
    np.testing.assert_allclose(ln.inverse_transform(ln.transform(X)), X)
    # the class attribute is the documented method
    assert "keep_stats" in LayerNormalizer.inverse_transform.__doc__


# -- a single column (or a group of one) normalizes to nothing: warn ------------
@pytest.mark.parametrize(
    "est, zero",
    [
        (LayerNormalizer(), True),
        (LayerNormalizer(center="median", scale="mad"), True),
        (LayerNormalizer(center=None), False),
        (RMSNormalizer(), False),
    ],
)
def test_single_column_warns_and_says_what_to_use(est, zero):
    X = np.array([[3.0], [-2.0], [7.5]])
    with pytest.warns(SingleColumnGroupWarning) as record:
        Z = est.fit_transform(X)
    message = str(record[0].message)
    assert record[0].filename == __file__  # points at the caller's line
    assert type(est).__name__ in message and "single column" in message
    assert "StandardScaler" in message and "keep_stats=True" in message
    if zero:
        np.testing.assert_array_equal(Z, 0.0)
        assert "becomes 0" in message
    else:
        # x / sqrt(c * x**2 + eps) keeps only the sign of x
        np.testing.assert_array_equal(np.sign(Z), np.sign(X))
        assert "its sign" in message


def test_group_of_one_column_warns_naming_the_group():
    X = np.array([[1.0, 2.0, 4.0], [3.0, 5.0, 0.0]])
    gn = GroupNormalizer({"pair": [0, 1], "alone": [2]})
    with pytest.warns(SingleColumnGroupWarning, match=r"groups \['alone'\]"):
        Z = gn.fit(X).transform(X)
    np.testing.assert_array_equal(Z[:, 2], 0.0)


@pytest.mark.parametrize(
    "est",
    [
        LayerNormalizer(keep_stats=True),  # the value is kept as a column
        LayerNormalizer(center=None, scale=None),  # identity
        LayerNormalizer(center=None, scale="iqr", eps=0.0),  # identity
        GroupNormalizer([[0, 1]]),  # the lone column is passed through
    ],
)
def test_no_warning_when_nothing_is_lost(est):
    X = np.array([[1.0, 2.0], [3.0, 5.0]]) if hasattr(est, "groups") else [[1.0], [3.0]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est.fit_transform(X)


def test_table_vectorizer_style_column_by_column_use_warns():
    """ColumnTransformer with one normalizer per column, as skrub does."""
    from sklearn.compose import ColumnTransformer

    X = np.array([[1.0, 10.0], [2.0, 30.0], [4.0, 20.0]])
    ct = ColumnTransformer([(f"c{j}", LayerNormalizer(), [j]) for j in range(2)])
    with pytest.warns(SingleColumnGroupWarning):
        Z = ct.fit_transform(X)
    np.testing.assert_array_equal(Z, 0.0)


# -- fork() after the engines ran on threads: forked workers must work ----------
def _child_layer_norm(args):
    import sknorm

    engine, X = args
    with sknorm.config_context(engine=engine, n_threads=2):
        return sknorm.layer_norm(X, eps=1e-5)


# Forking a process that runs threads is what is tested: Python 3.12+ warns
# about it with a DeprecationWarning (an error in this suite).
@pytest.mark.filterwarnings(
    "ignore:This process .*is multi-threaded:DeprecationWarning"
)
@pytest.mark.parametrize("engine", ["numba", "numpy"])
def test_forked_workers_after_threaded_kernels_work(engine):
    import multiprocessing

    import sknorm

    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork start method on this platform")
    if engine == "numba":
        numba = pytest.importorskip("numba")
        if numba.config.NUMBA_NUM_THREADS < 2:
            pytest.skip("numba runs one thread here: no parallel kernel")
    rng = np.random.default_rng(0)
    # large enough for several threads in the parent and in each child
    X = rng.normal(size=(16384, 64)) * rng.uniform(0.5, 4, size=(16384, 1)) + 3
    with sknorm.config_context(engine=engine, n_threads=2):
        sknorm.layer_norm(X)  # the parent runs its threads first
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool:
        # a killed worker leaves the pool waiting forever: the timeout fails
        result = pool.map_async(_child_layer_norm, [(engine, X)] * 2)
        parts = result.get(timeout=60)
    mean = X.mean(axis=1, keepdims=True)
    var = ((X - mean) ** 2).mean(axis=1, keepdims=True)
    expected = (X - mean) / np.sqrt(var + 1e-5)
    for part in parts:
        np.testing.assert_allclose(part, expected, rtol=1e-12, atol=1e-12)
