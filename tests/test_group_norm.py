"""GroupNormalizer and group_norm: group specs, remainder, stats, errors."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import NotFittedError

from sknorm import GroupNormalizer, LayerNormalizer, group_norm, layer_norm


def test_int_groups_are_contiguous_layer_norms(reference, rng):
    X = rng.normal(3, 2, size=(15, 12))
    Z = GroupNormalizer(3).fit_transform(X)
    for g in range(3):
        cols = slice(4 * g, 4 * g + 4)
        assert_allclose(Z[:, cols], layer_norm(X[:, cols]), rtol=1e-14)
    Z_ref, _, _ = reference(X, groups=[list(range(4 * g, 4 * g + 4)) for g in range(3)])
    assert_allclose(Z, Z_ref.astype(float), rtol=1e-12)


def test_one_group_is_layer_norm(rng):
    X = rng.normal(size=(10, 5))
    for kw in ({}, {"center": "median", "scale": "mad"}, {"affine": True}):
        assert_allclose(
            GroupNormalizer(1, **kw).fit_transform(X),
            LayerNormalizer(**kw).fit_transform(X),
            rtol=1e-14,
        )


@pytest.mark.parametrize("center", ["mean", "median", None])
@pytest.mark.parametrize("scale", ["std", "mad", "iqr", None])
def test_list_groups_non_contiguous(center, scale, reference, rng):
    X = rng.normal(1, 2, size=(20, 7))
    X[rng.random(X.shape) < 0.1] = np.nan
    groups = [[0, 3, 5], [6, 1]]
    est = GroupNormalizer(groups, center=center, scale=scale)
    Z = est.fit_transform(X)
    Z_ref, _, _ = reference(X, center, scale, 1e-5, groups=groups)
    assert_allclose(Z, Z_ref.astype(float), rtol=1e-12, atol=1e-14)
    # passthrough columns are untouched and stay in place
    assert_array_equal(Z[:, [2, 4]], X[:, [2, 4]])
    assert_array_equal(np.isnan(Z), np.isnan(X))
    Zf = group_norm(X, groups, center=center, scale=scale)
    assert_array_equal(Zf, Z)


def test_remainder_drop_and_keep_stats_names(rng):
    X = rng.normal(size=(6, 5))
    est = GroupNormalizer({"a": [3, 0], "b": [4]}, remainder="drop", keep_stats=True)
    Y = est.fit_transform(X)
    assert_array_equal(
        est.get_feature_names_out(),
        ["x0", "x3", "x4", "a_center", "a_scale", "b_center", "b_scale"],
    )
    assert_allclose(Y[:, 0], group_norm(X, [[0, 3]])[:, 0])
    assert_allclose(Y[:, 3], X[:, [0, 3]].mean(axis=1))
    assert_allclose(Y[:, 4], X[:, [0, 3]].std(axis=1))
    assert_allclose(Y[:, 5], X[:, 4])
    assert_array_equal(Y[:, 6], 0.0)
    assert not hasattr(est, "inverse_transform")
    with pytest.raises(AttributeError, match="inverse_transform") as e:
        est.inverse_transform(Y)
    assert "remainder='passthrough'" in str(e.value.__cause__)
    assert_array_equal(est.groups_["a"], [3, 0])


@pytest.mark.parametrize("affine", [False, True])
def test_keep_stats_inverse_exact(affine, rng):
    X = rng.normal(4, 3, size=(40, 9)) * rng.uniform(0.5, 8, size=(40, 1))
    est = GroupNormalizer([[0, 1, 2], [5, 7, 8, 3]], keep_stats=True, affine=affine)
    Y = est.fit_transform(X)
    assert Y.shape == (40, 9 + 4)
    assert_allclose(est.inverse_transform(Y), X, rtol=1e-12)
    if affine:
        assert_array_equal(est.gain_[[4, 6]], 1.0)
        assert_array_equal(est.bias_[[4, 6]], 0.0)


def test_dict_groups_with_dataframe_names():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(10, 5)), columns=["a", "b", "c", "d", "e"])
    est = GroupNormalizer({"left": ["a", "b"], "right": ["d", "e"]}, keep_stats=True)
    est.set_output(transform="pandas")
    out = est.fit_transform(df)
    assert list(out.columns) == [
        *"abcde",
        "left_center",
        "left_scale",
        "right_center",
        "right_scale",
    ]
    assert_allclose(out[["a", "b"]].to_numpy(), layer_norm(df[["a", "b"]].to_numpy()))
    assert_array_equal(out["c"], df["c"])
    assert_allclose(group_norm(df, {"g": ["d", "e"]})[:, 3:], out[["d", "e"]])


@pytest.mark.parametrize(
    "groups, n_features, error, match",
    [
        (3, 10, ValueError, "groups=3 does not divide n_features=10"),
        (0, 4, ValueError, "groups"),
        ([[0, 1], [1, 2]], 4, ValueError, "overlap"),
        ([[0, 1], []], 4, ValueError, "empty"),
        ([[0, 4]], 4, ValueError, "out of range"),
        ([[0, -1]], 4, ValueError, "out of range"),
        ([[0, 0, 1]], 4, ValueError, "twice"),
        ([], 4, ValueError, "empty"),
        ({}, 4, ValueError, "empty"),
        ([0, 1], 4, TypeError, "list of columns"),
        ("abc", 4, TypeError, "expected an int"),
        ([["a"]], 4, ValueError, "no column names"),
        ([[0.5]], 4, TypeError, "int index or a column name"),
        (2.0, 4, TypeError, "expected an int"),
    ],
)
def test_bad_groups(groups, n_features, error, match):
    X = np.ones((3, n_features))
    with pytest.raises(error, match=match):
        GroupNormalizer(groups).fit(X)
    with pytest.raises(error, match=match):
        group_norm(X, groups)


def test_unknown_column_name():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 1.0]})
    with pytest.raises(ValueError, match="'zz', which is not a column"):
        GroupNormalizer([["a", "zz"]]).fit(df)


def test_bad_remainder():
    with pytest.raises(ValueError, match="remainder='keep'"):
        GroupNormalizer(1, remainder="keep").fit(np.ones((2, 2)))


def test_requires_fit():
    with pytest.raises(NotFittedError):
        GroupNormalizer(1).transform(np.ones((2, 2)))


def test_sparse_groups_uncentered(rng):
    dense = sp.random(10, 6, density=0.5, random_state=3).toarray()
    dense[0, [4, 5]] = 0.0  # a row with an all-zero group: scale 0
    dense[1, [4, 5]] = [1.0, 2.0]
    X = sp.csr_matrix(dense)
    est = GroupNormalizer([[0, 1, 2], [4, 5]], center=None, keep_stats=True)
    Y = est.fit_transform(X)
    assert sp.issparse(Y)
    Y_dense = est.fit_transform(dense)
    assert_allclose(Y.toarray(), Y_dense, rtol=1e-14)
    assert_allclose(est.inverse_transform(Y).toarray(), dense, rtol=1e-13)
    with pytest.raises(ValueError, match="sparse"):
        GroupNormalizer(2).fit(sp.csr_matrix(np.ones((2, 4))))


def test_two_degrees_of_freedom_lost_per_group(rng):
    # per-group shift and scale of each sample do not change the output
    X = rng.normal(size=(8, 6))
    Y = X.copy()
    Y[:, :3] = Y[:, :3] * rng.uniform(1, 5, size=(8, 1)) + rng.normal(size=(8, 1))
    Y[:, 3:] = Y[:, 3:] * rng.uniform(1, 5, size=(8, 1)) + rng.normal(size=(8, 1))
    assert_allclose(group_norm(X, 2, eps=0), group_norm(Y, 2, eps=0), atol=1e-12)
