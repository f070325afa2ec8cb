"""Tests for sknorm.inspection: invariances, collapsed directions, reconstruction.

Expected invariances and collapse counts come from the formulas of the
transformers (written out in comments), and numerical results are compared with
independent numpy computations, never with earlier outputs of the code under test.
"""

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import sparse
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits, load_iris, load_wine
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MinMaxScaler,
    Normalizer,
    PowerTransformer,
    RobustScaler,
    StandardScaler,
)

from sknorm.inspection import _jacobian as jacobian_module
from sknorm.inspection import (
    collapsed_directions,
    invariance_table,
    plot_invariance_table,
    reconstruction_r2,
)
from sknorm.inspection._invariance import (
    TRANSFORMATIONS,
    _output_deviation,
    _transform_data,
)

ALL = list(TRANSFORMATIONS)


def rows_data(n_samples=40, n_features=8, seed=0):
    """Rows with very different locations (sd 20) and spreads (std 2 to 10).

    The spreads keep eps=1e-5 of the normalizers negligible (eps / var <= 3e-6).
    """
    rng = np.random.default_rng(seed)
    spread = rng.uniform(2, 10, size=(n_samples, 1))
    location = rng.normal(0, 20, size=(n_samples, 1))
    feature_offset = rng.normal(0, 3, size=n_features)
    return rng.normal(size=(n_samples, n_features)) * spread + location + feature_offset


def datasets():
    """Several datasets, all with row variances far above eps=1e-5."""
    iris = load_iris().data
    wine = load_wine().data  # features from ~0.1 to ~1000: mixed units
    digits = load_digits().data[:60]  # 64 pixels in 0..16, some always 0
    return {
        "rows": rows_data(),
        "iris": iris[::3],
        "wine": wine[::3],
        "digits": digits,
    }


def layer_normalizer(**params):
    from sknorm import LayerNormalizer

    return LayerNormalizer(**params)


def row_center(X):
    return X - X.mean(axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# invariance_table: expected cells from the transformers' formulas.
# Order of the tuples: TRANSFORMATIONS
# (sample_shift, sample_scale, feature_shift, feature_scale, dataset_shift,
#  dataset_scale, feature_permutation).

SKLEARN_EXPECTED = {
    # (x_j - mean_j) / std_j: per-feature location and scale are refitted away;
    # a per-sample factor changes the rows relative to each other.
    "standard": (StandardScaler(), (0, 0, 1, 1, 1, 1, 1)),
    "robust": (RobustScaler(), (0, 0, 1, 1, 1, 1, 1)),
    "minmax": (MinMaxScaler(), (0, 0, 1, 1, 1, 1, 1)),
    # x_i / ||x_i||: only a positive factor per sample (or for all) cancels.
    "l2": (Normalizer(), (0, 1, 0, 0, 0, 1, 1)),
    # Centered projection: shifts per feature cancel; scale factors do not;
    # the scores do not depend on the order of the features.
    "pca3": (PCA(n_components=3), (0, 0, 1, 0, 1, 0, 1)),
    # Whitening also removes a global factor.
    "pca_white": (PCA(whiten=True), (0, 0, 1, 0, 1, 1, 1)),
    "identity": (FunctionTransformer(), (0, 0, 0, 0, 0, 0, 1)),
    # x_i - mean(x_i) 1: per-sample (hence dataset) shifts cancel.
    "row_center": (FunctionTransformer(row_center), (1, 0, 0, 0, 1, 0, 1)),
    # Sorting each row forgets the order of the features entirely.
    "row_sort": (
        FunctionTransformer(lambda X: np.sort(X, axis=1)),
        (0, 0, 0, 0, 0, 0, 1),
    ),
    # Cumulative sums along a row depend on the order of the features.
    "row_cumsum": (
        FunctionTransformer(lambda X: np.cumsum(X, axis=1)),
        (0, 0, 0, 0, 0, 0, 0),
    ),
    # The first step removes per-feature location/scale, the second is then
    # applied to identical data.
    "standard_then_l2": (
        make_pipeline(StandardScaler(), Normalizer()),
        (0, 0, 1, 1, 1, 1, 1),
    ),
}


def expected_frame(expected):
    return pd.DataFrame(
        [np.array(cells, dtype=bool) for _, cells in expected.values()],
        index=list(expected),
        columns=ALL,
    )


def assert_table_equal(table, expected):
    assert_array_equal(table.columns, expected.columns)
    assert_array_equal(table.index, expected.index)
    mismatches = [
        (row, col)
        for row in expected.index
        for col in expected.columns
        if table.loc[row, col] is pd.NA or table.loc[row, col] != expected.loc[row, col]
    ]
    assert not mismatches, f"cells differ from the expected table: {mismatches}"


def test_invariance_table_sklearn_transformers():
    table = invariance_table(
        {name: est for name, (est, _) in SKLEARN_EXPECTED.items()},
        rows_data(),
        n_repeats=2,
        random_state=0,
    )
    assert table.index.name == "transformer"
    assert table.columns.name == "transformation"
    assert all(dtype == "boolean" for dtype in table.dtypes)
    assert_table_equal(table, expected_frame(SKLEARN_EXPECTED))


@pytest.mark.parametrize("dataset", ["rows", "iris", "wine", "digits"])
def test_invariance_table_issue_expectations_on_datasets(dataset):
    from sknorm import LayerNormalizer

    expected = {
        # (x - mean_i) / sqrt(var_i + eps): per-sample shift and scale cancel.
        "layer": (LayerNormalizer(), (1, 1, 0, 0, 1, 1, 1)),
        # The appended mean_i and std_i move with every per-sample change, and
        # with a dataset-wide one; only the order of the features is forgotten.
        "layer_keep_stats": (
            LayerNormalizer(keep_stats=True),
            (0, 0, 0, 0, 0, 0, 1),
        ),
        "standard": SKLEARN_EXPECTED["standard"],
        "l2": SKLEARN_EXPECTED["l2"],
    }
    table = invariance_table(
        {name: est for name, (est, _) in expected.items()},
        datasets()[dataset],
        random_state=1,
    )
    assert_table_equal(table, expected_frame(expected))


def test_invariance_table_sknorm_normalizers():
    from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer

    expected = {
        # x / sqrt(mean(x^2) + eps): only positive factors cancel.
        "rms": (RMSNormalizer(), (0, 1, 0, 0, 0, 1, 1)),
        "rms_keep_stats": (RMSNormalizer(keep_stats=True), (0, 0, 0, 0, 0, 0, 1)),
        # Each group of a row is shifted and scaled by the same c_i, a_i, so
        # per-sample changes cancel; a permutation mixing the fixed groups of
        # contiguous columns changes which values are normalized together.
        "group2": (GroupNormalizer(groups=2), (1, 1, 0, 0, 1, 1, 0)),
        "group2_keep_stats": (
            GroupNormalizer(groups=2, keep_stats=True),
            (0, 0, 0, 0, 0, 0, 0),
        ),
        "layer_median_mad": (
            LayerNormalizer(center="median", scale="mad"),
            (1, 1, 0, 0, 1, 1, 1),
        ),
        # A per-sample step first: anything after it sees unchanged data.
        "layer_then_pca": (
            make_pipeline(LayerNormalizer(), PCA(n_components=3)),
            (1, 1, 0, 0, 1, 1, 1),
        ),
    }
    table = invariance_table(
        {name: est for name, (est, _) in expected.items()},
        rows_data(n_features=8),
        n_repeats=3,
        random_state=0,
    )
    assert_table_equal(table, expected_frame(expected))


def test_invariance_table_matches_layer_norm_paper_table_1():
    # Ba, Kiros & Hinton (2016), Table 1, the data-space columns. The paper's
    # "dataset re-centering" adds one vector to every sample (our
    # feature_shift); "dataset re-scaling" multiplies everything by one factor;
    # "single training case re-scaling" is our sample_scale. Batch norm is
    # StandardScaler's per-feature standardization.
    from sknorm import LayerNormalizer

    columns = ["dataset_scale", "feature_shift", "sample_scale"]
    table = invariance_table(
        {"batch norm": StandardScaler(), "layer norm": LayerNormalizer()},
        rows_data(),
        transformations=columns,
        random_state=0,
    )
    paper = pd.DataFrame(
        [[True, True, False], [True, False, True]],
        index=["batch norm", "layer norm"],
        columns=columns,
    )
    assert_table_equal(table, paper)


def test_invariance_table_deviation_matches_the_documented_definition():
    X = rows_data()
    table, deviation = invariance_table(
        FunctionTransformer(),
        X,
        transformations=["dataset_scale", "dataset_shift", "sample_shift"],
        return_deviation=True,
        random_state=3,
    )
    label = "FunctionTransformer()"
    assert_array_equal(deviation.index, [label])
    assert deviation.to_numpy().dtype == np.float64
    magnitude = np.abs(X).max()
    # Identity under X -> aX: max|aX - X| / max|X| = |a - 1|, with a drawn in
    # [1/2, 4/5] or [5/4, 2].
    assert 0.2 <= deviation.loc[label, "dataset_scale"] <= 1.0
    # Under X -> X + c: |c| / max|X|, |c| between 1 and 2 times std(X).
    ratio = deviation.loc[label, "dataset_shift"] * magnitude / X.std()
    assert 1.0 <= ratio <= 2.0
    ratio = deviation.loc[label, "sample_shift"] * magnitude / X.std()
    assert 1.0 <= ratio <= 2.0
    assert_array_equal(table.to_numpy(dtype=bool), deviation.to_numpy() <= 1e-3)


def test_invariance_table_tol_decides_the_cells():
    # StandardScaler refitted after X -> X + c: equal up to rounding (~1e-15).
    X = rows_data()
    _, deviation = invariance_table(
        StandardScaler(),
        X,
        transformations=["feature_shift", "sample_scale"],
        return_deviation=True,
        random_state=0,
    )
    small, large = deviation.iloc[0]
    assert small < 1e-12 < 0.1 < large
    for tol in [0.0, small / 2, (small + large) / 2, 2 * large]:
        table = invariance_table(
            StandardScaler(),
            X,
            transformations=["feature_shift", "sample_scale"],
            tol=tol,
            random_state=0,
        )
        assert list(table.iloc[0]) == [bool(small <= tol), bool(large <= tol)]


def test_invariance_table_is_reproducible_and_subsets_share_draws():
    X = rows_data()
    est = {"identity": FunctionTransformer()}
    _, dev_a = invariance_table(est, X, return_deviation=True, random_state=5)
    _, dev_b = invariance_table(est, X, return_deviation=True, random_state=5)
    _, dev_c = invariance_table(est, X, return_deviation=True, random_state=6)
    _, dev_subset = invariance_table(
        est,
        X,
        transformations=["feature_scale", "sample_shift"],
        return_deviation=True,
        random_state=5,
    )
    pd.testing.assert_frame_equal(dev_a, dev_b)
    assert not np.allclose(dev_a.to_numpy()[:, :-1], dev_c.to_numpy()[:, :-1])
    pd.testing.assert_frame_equal(dev_subset, dev_a[["feature_scale", "sample_shift"]])
    # More repeats add draws to the first one: the largest deviation can only
    # grow.
    _, dev_more = invariance_table(
        est, X, n_repeats=4, return_deviation=True, random_state=5
    )
    assert np.all(dev_more.to_numpy() >= dev_a.to_numpy())


@pytest.mark.parametrize("name", ALL)
def test_transformations_are_drawn_as_documented(name):
    X = rows_data(n_samples=30, n_features=6)
    spread = X.std()
    rng = np.random.default_rng(0)
    X_new, perm = _transform_data(X, name, rng)
    assert X_new.shape == X.shape
    if name == "feature_permutation":
        assert sorted(perm) == list(range(X.shape[1]))
        assert not np.any(perm == np.arange(X.shape[1]))  # every column moves
        assert_array_equal(X_new, X[:, perm])
        return
    assert perm is None
    axis = {"sample": 1, "feature": 0, "dataset": None}[name.split("_")[0]]
    if name.endswith("shift"):
        shift = X_new - X
        assert_allclose(
            shift, np.broadcast_to(shift.mean(axis=axis, keepdims=True), X.shape)
        )
        magnitude = np.abs(shift) / spread
        assert np.all((magnitude > 1 - 1e-9) & (magnitude < 2 + 1e-9))
    else:
        factor = X_new / X
        assert_allclose(
            factor, np.broadcast_to(factor.mean(axis=axis, keepdims=True), X.shape)
        )
        log_factor = np.abs(np.log(factor))
        assert np.all(log_factor > np.log(1.25) - 1e-9)
        assert np.all(log_factor < np.log(2.0) + 1e-9)


def test_output_deviation_definition():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(10, 5))
    Z[0, 0] = -4.0  # the largest magnitude
    Z[3, 2] = np.nan
    changed = Z.copy()
    changed[1, 1] += 0.5
    assert _output_deviation(Z.copy(), Z, None) == 0.0
    assert_allclose(_output_deviation(changed, Z, None), 0.5 / 4.0)
    # NaN must face NaN.
    moved_nan = Z.copy()
    moved_nan[3, 2], moved_nan[4, 2] = 0.0, np.nan
    assert _output_deviation(moved_nan, Z, None) == np.inf
    # Another shape is an infinite deviation.
    assert _output_deviation(Z[:, :4], Z, None) == np.inf
    # All-zero reference: absolute deviation.
    assert_allclose(
        _output_deviation(np.full((3, 2), 0.25), np.zeros((3, 2)), None), 0.25
    )
    # Permutation: any reordering of the output columns is accepted ...
    perm = np.array([1, 2, 0, 4, 3])
    order = np.array([3, 0, 4, 2, 1])
    assert _output_deviation(Z[:, order], Z, perm) == 0.0
    # ... but not a changed column.
    assert_allclose(_output_deviation(changed[:, order], Z, perm), 0.5 / 4.0)


def test_invariance_table_feature_permutation_with_extra_output_columns():
    # Outputs: the features (permuted like the input) plus row statistics
    # (unchanged): equivariant on the first columns, invariant on the rest.
    def with_stats(X):
        return np.column_stack([X, X.mean(axis=1), X.max(axis=1)])

    def first_two(X):
        return X[:, :2]

    table = invariance_table(
        {
            "stats": FunctionTransformer(with_stats),
            "first_two": FunctionTransformer(first_two),
        },
        rows_data(),
        transformations=["feature_permutation"],
        n_repeats=3,
        random_state=0,
    )
    assert table.loc["stats", "feature_permutation"]
    assert not table.loc["first_two", "feature_permutation"]


def test_invariance_table_dataframe_columns_travel_with_permutation():
    from sknorm import LayerNormalizer

    X = pd.DataFrame(rows_data(n_features=5), columns=list("abcde"))
    by_name = ColumnTransformer(
        [
            ("layer", LayerNormalizer(), ["a", "b", "c"]),
            ("std", StandardScaler(), ["d", "e"]),
        ]
    )
    by_position = ColumnTransformer(
        [("layer", LayerNormalizer(), [0, 1, 2]), ("std", StandardScaler(), [3, 4])]
    )
    pandas_out = make_pipeline(StandardScaler(), Normalizer()).set_output(
        transform="pandas"
    )
    table = invariance_table(
        {"by_name": by_name, "by_position": by_position, "pandas_out": pandas_out},
        X,
        n_repeats=2,
        random_state=0,
    )
    # A name-based selection sees the same columns whatever their order.
    assert table.loc["by_name", "feature_permutation"]
    assert not table.loc["by_position", "feature_permutation"]
    # Per-sample changes are forgotten by the normalized block only.
    assert not table.loc["by_name", "sample_scale"]
    assert table.loc["pandas_out", "feature_scale"]
    assert not table.loc["pandas_out", "sample_scale"]


def test_invariance_table_with_nan_entries():
    X = rows_data()
    X[::7, 2] = np.nan
    X[3, 5] = np.nan
    table = invariance_table(
        {"standard": StandardScaler(), "identity": FunctionTransformer()},
        X,
        random_state=0,
    )
    assert_table_equal(
        table,
        expected_frame(
            {
                "standard": SKLEARN_EXPECTED["standard"],
                "identity": SKLEARN_EXPECTED["identity"],
            }
        ),
    )


def test_invariance_table_failed_refit_is_missing_with_a_warning():
    X = np.abs(rows_data()) + 1.0  # strictly positive, as Box-Cox requires
    with pytest.warns(UserWarning, match="failed on the 'sample_shift'"):
        table, deviation = invariance_table(
            {"box-cox": PowerTransformer(method="box-cox")},
            X,
            transformations=["sample_shift", "sample_scale"],
            return_deviation=True,
            random_state=0,
        )
    # Some shifted values are negative (shift >= std(X) > min(X) - 0): no fit.
    assert table.loc["box-cox", "sample_shift"] is pd.NA
    assert np.isnan(deviation.loc["box-cox", "sample_shift"])
    assert table.loc["box-cox", "sample_scale"] is not pd.NA


def test_invariance_table_labels_and_containers():
    X = rows_data()
    table = invariance_table(
        [StandardScaler(), StandardScaler(), Normalizer(norm="l1")],
        X,
        transformations="dataset_scale",
        random_state=0,
    )
    assert list(table.index) == [
        "StandardScaler()",
        "StandardScaler() #2",
        "Normalizer(norm='l1')",
    ]
    assert list(table.columns) == ["dataset_scale"]
    single = invariance_table(Normalizer(), X.tolist(), random_state=0)
    assert list(single.index) == ["Normalizer()"]


@pytest.mark.parametrize(
    "make_est",
    [
        lambda: StandardScaler(copy=False),
        lambda: Normalizer(copy=False),
        lambda: layer_normalizer(copy=False),
    ],
)
def test_inspection_does_not_modify_x_or_the_transformer(make_est):
    X = rows_data()
    X_before = X.copy()
    est = make_est()
    params = est.get_params()
    invariance_table(est, X, random_state=0)
    reconstruction_r2(est, X, random_state=0)
    assert_array_equal(X, X_before)
    assert est.get_params() == params
    assert not hasattr(est, "n_features_in_")
    collapsed_directions(make_est().fit(X.copy()), X)
    assert_array_equal(X, X_before)


# ---------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "func, extra",
    [
        (invariance_table, {}),
        (reconstruction_r2, {}),
        (collapsed_directions, {}),
    ],
)
def test_reject_non_transformers(func, extra):
    X = rows_data()
    with pytest.raises(TypeError, match="fit and transform"):
        func(LogisticRegression(), X, **extra)
    with pytest.raises(TypeError, match="fit and transform"):
        func(make_pipeline(StandardScaler(), LogisticRegression()), X, **extra)
    with pytest.raises(TypeError, match=r"pass StandardScaler\(\) instead"):
        func(StandardScaler, X, **extra)


@pytest.mark.parametrize(
    "func, min_samples",
    [(invariance_table, 2), (reconstruction_r2, 4), (collapsed_directions, 1)],
)
def test_reject_bad_x(func, min_samples):
    est = StandardScaler().fit(rows_data())
    with pytest.raises(ValueError, match=r"2-D X.*reshape\(-1, 1\)"):
        func(est, np.arange(8.0))
    with pytest.raises(ValueError, match=r"2-D X"):
        func(est, pd.Series(np.arange(8.0)))
    with pytest.raises(TypeError, match=r"dense X.*toarray"):
        func(est, sparse.csr_matrix(rows_data()))
    too_few = rows_data()[: min_samples - 1]
    with pytest.raises(ValueError, match=f"at least {min_samples} sample"):
        func(est, too_few)
    X = rows_data()
    X[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        func(est, X)


def test_invariance_table_rejects_bad_parameters():
    X = rows_data()
    with pytest.raises(ValueError, match="unknown transformations.*'sample_scale'"):
        invariance_table(StandardScaler(), X, transformations=["row_scale"])
    with pytest.raises(ValueError, match="non-empty"):
        invariance_table(StandardScaler(), X, transformations=[])
    with pytest.raises(ValueError, match="repeated"):
        invariance_table(StandardScaler(), X, transformations=["sample_shift"] * 2)
    with pytest.raises(ValueError, match="tol >= 0"):
        invariance_table(StandardScaler(), X, tol=-1)
    with pytest.raises(TypeError, match="real number for tol"):
        invariance_table(StandardScaler(), X, tol="small")
    with pytest.raises(ValueError, match="n_repeats >= 1"):
        invariance_table(StandardScaler(), X, n_repeats=0)
    with pytest.raises(TypeError, match="integer for n_repeats"):
        invariance_table(StandardScaler(), X, n_repeats=1.5)
    with pytest.raises(ValueError, match="at least one transformer"):
        invariance_table({}, X)
    with pytest.raises(TypeError, match="key 'bad'"):
        invariance_table({"ok": StandardScaler(), "bad": LogisticRegression()}, X)
    with pytest.raises(TypeError, match=r"transformers\[1\]"):
        invariance_table([StandardScaler(), "scaler"], X)


def test_nan_rejected_where_undefined():
    X = rows_data()
    X[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        collapsed_directions(StandardScaler().fit(rows_data()), X)
    with pytest.raises(ValueError, match="NaN"):
        reconstruction_r2(StandardScaler(), X)


# ---------------------------------------------------------------------------
# collapsed_directions


def normalizer_jacobian(x):
    # d(x / ||x||)/dx = (I - u u^T) / ||x||, u = x / ||x||.
    norm = np.linalg.norm(x)
    u = x / norm
    return (np.eye(x.size) - np.outer(u, u)) / norm


def layer_norm_jacobian(x, eps):
    # z = (x - m) / s, s = sqrt(v + eps), v = mean((x - m)^2):
    # dz/dx = (I - 11^T/d) / s - (x - m)(x - m)^T / (d s^3).
    d = x.size
    centered = x - x.mean()
    s = np.sqrt(np.mean(centered**2) + eps)
    return (np.eye(d) - np.ones((d, d)) / d) / s - np.outer(centered, centered) / (
        d * s**3
    )


def standardized_singular_values(jacobian, in_scale, out_scale):
    return np.linalg.svd(
        jacobian * in_scale[None, :] / out_scale[:, None], compute_uv=False
    )


@pytest.mark.parametrize(
    "est, expected",
    [
        (StandardScaler(), 0),  # diag(1 / std_j): invertible
        (RobustScaler(), 0),
        (FunctionTransformer(), 0),
        (Normalizer(), 1),  # the radial direction x
        (FunctionTransformer(row_center), 1),  # the direction 1
        (make_pipeline(StandardScaler(), Normalizer()), 1),
        (PCA(n_components=3), 8 - 3),  # rank <= 3 outputs
        (PCA(whiten=True), 0),
        (
            KBinsDiscretizer(n_bins=3, encode="onehot-dense", strategy="uniform"),
            8,
        ),  # piecewise constant
    ],
)
def test_collapsed_directions_sklearn(est, expected):
    X = rows_data(n_samples=25, n_features=8)
    n_collapsed = collapsed_directions(est.fit(X), X)
    assert n_collapsed.shape == (25,)
    assert n_collapsed.dtype.kind == "i"
    assert_array_equal(n_collapsed, expected)


def test_collapsed_directions_sknorm():
    from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer

    X = rows_data(n_samples=25, n_features=8)
    expected = [
        # Location (the direction 1) and scale (the direction x - mean 1).
        (LayerNormalizer(), 2),
        (LayerNormalizer(center="median", scale="iqr"), 2),
        # An invertible per-feature affine map after the normalization.
        (LayerNormalizer(affine=True), 2),
        # The kept mean and std recover both directions.
        (LayerNormalizer(keep_stats=True), 0),
        (RMSNormalizer(), 1),  # the radial direction
        (RMSNormalizer(keep_stats=True), 0),
        (GroupNormalizer(groups=2), 2 * 2),
        # Groups of two columns lose everything (location and scale of each
        # pair). With the default eps a pair of nearly equal values keeps a
        # little of its scale (eps / var is not small); a tiny eps does not.
        (GroupNormalizer(groups=4, eps=1e-12), 2 * 4),
        (GroupNormalizer(groups=2, keep_stats=True), 0),
        # Two groups of 3, two columns passed through untouched.
        (GroupNormalizer(groups=[[0, 1, 2], [3, 4, 5]]), 2 * 2),
        (make_pipeline(LayerNormalizer(), StandardScaler()), 2),
    ]
    for est, n_expected in expected:
        assert_array_equal(collapsed_directions(est.fit(X), X), n_expected), est


def test_collapsed_directions_ignores_feature_units():
    # Features in units from 1e-3 to 1e3: the Jacobian of StandardScaler spans
    # 6 orders of magnitude, but nothing is collapsed.
    X = rows_data(n_samples=20, n_features=7) * np.logspace(-3, 3, 7)
    assert_array_equal(collapsed_directions(StandardScaler().fit(X), X), 0)
    assert_array_equal(collapsed_directions(Normalizer().fit(X), X), 1)


@pytest.mark.parametrize("dataset", ["rows", "iris", "wine"])
def test_collapsed_directions_singular_values_match_analytic_jacobians(dataset):
    from sknorm import LayerNormalizer

    X = datasets()[dataset][:15]
    in_scale = X.std(axis=0)
    for est, jacobian in [
        (Normalizer(), normalizer_jacobian),
        (LayerNormalizer(eps=1e-5), lambda x: layer_norm_jacobian(x, 1e-5)),
    ]:
        est.fit(X)
        out_scale = np.asarray(est.transform(X)).std(axis=0)
        _, singular_values = collapsed_directions(est, X, return_singular_values=True)
        expected = np.array(
            [standardized_singular_values(jacobian(x), in_scale, out_scale) for x in X]
        )
        assert singular_values.shape == expected.shape
        assert_allclose(singular_values, expected, rtol=0, atol=1e-6 * expected.max())


def test_collapsed_directions_eps_dominated_rows_keep_their_scale():
    # With eps >> var, (x - m) / sqrt(var + eps) ~ (x - m) / sqrt(eps): only the
    # location is removed, the scale passes through.
    from sknorm import LayerNormalizer

    X = rows_data(n_samples=10, n_features=6)
    est = LayerNormalizer(eps=1e8).fit(X)
    assert_array_equal(collapsed_directions(est, X), 1)


def test_collapsed_directions_dataframe_and_batches(monkeypatch):
    X = pd.DataFrame(rows_data(n_samples=30, n_features=6), columns=list("uvwxyz"))
    est = make_pipeline(StandardScaler(), PCA(n_components=4)).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "X does not have valid feature names"
        whole = collapsed_directions(est, X, return_singular_values=True)
    # Tiny batches (one sample each) give the same result.
    monkeypatch.setattr(jacobian_module, "_BATCH_ENTRIES", 1)
    batched = collapsed_directions(est, X, return_singular_values=True)
    assert_array_equal(whole[0], 6 - 4)
    assert_array_equal(whole[0], batched[0])
    assert_allclose(whole[1], batched[1])


def test_collapsed_directions_column_selection_on_polars():
    pl = pytest.importorskip("polars")
    X = pd.DataFrame(rows_data(n_samples=12, n_features=4), columns=list("abcd"))
    X_polars = pl.from_pandas(X)
    # Column "d" is dropped: its direction is collapsed everywhere.
    by_name = ColumnTransformer([("std", StandardScaler(), ["a", "b", "c"])])
    assert_array_equal(collapsed_directions(by_name.fit(X_polars), X_polars), 1)
    # Fitted without names, evaluated on a DataFrame: no feature-name warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plain = StandardScaler().fit(X.to_numpy())
        assert_array_equal(collapsed_directions(plain, X), 0)


def test_collapsed_directions_rtol():
    # Normalizer's nonzero singular values are equal in raw units; with rtol
    # just below 1 and a tiny rel_step they still count, rtol=0 counts
    # everything except exact zeros.
    X = rows_data(n_samples=5, n_features=4)
    est = Normalizer().fit(X)
    _, sv = collapsed_directions(est, X, return_singular_values=True)
    ratio = sv[:, -2] / sv[:, 0]  # the smallest non-collapsed
    n = collapsed_directions(est, X, rtol=float(ratio.min()) / 2)
    assert_array_equal(n, 1)
    n = collapsed_directions(est, X, rtol=float(ratio.max()) * 1.01)
    assert np.all(n >= 2)


def test_collapsed_directions_rejects_bad_input():
    X = rows_data()
    with pytest.raises(NotFittedError):
        collapsed_directions(StandardScaler(), X)
    # Stateless transformers need no fit.
    assert_array_equal(collapsed_directions(Normalizer(), X), 1)
    est = StandardScaler().fit(X)
    with pytest.raises(ValueError, match="rel_step > 0"):
        collapsed_directions(est, X, rel_step=0)
    with pytest.raises(ValueError, match="rtol >= 0.0 and < 1.0"):
        collapsed_directions(est, X, rtol=1.0)
    huge_offset = 1e8 + 1e-3 * np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match="could not perturb X.*Center X"):
        collapsed_directions(StandardScaler().fit(huge_offset), huge_offset)
    with np.errstate(invalid="ignore"), pytest.raises(ValueError, match="non-finite"):
        collapsed_directions(FunctionTransformer(np.log), -np.abs(X) - 1)


# ---------------------------------------------------------------------------
# reconstruction_r2


def r2_per_feature(X_true, X_hat):
    sse = ((X_true - X_hat) ** 2).sum(axis=0)
    sst = ((X_true - X_true.mean(axis=0)) ** 2).sum(axis=0)
    return 1 - sse / sst


def split(X, random_state, test_size=0.5):
    return train_test_split(X, test_size=test_size, random_state=random_state)


def test_reconstruction_r2_exact_inverses():
    from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer

    X = rows_data(n_samples=60)
    for est in [
        StandardScaler(),
        RobustScaler(),
        PCA(),  # all components: an orthogonal change of basis
        LayerNormalizer(keep_stats=True),
        RMSNormalizer(keep_stats=True),
        GroupNormalizer(groups=2, keep_stats=True),
    ]:
        for method in ["auto", "inverse_transform"]:
            r2 = reconstruction_r2(est, X, method=method, random_state=0)
            assert isinstance(r2, float)
            assert_allclose(r2, 1.0, atol=1e-10, err_msg=repr(est))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_reconstruction_r2_pca_matches_projection(k):
    X = rows_data(n_samples=60, n_features=8)
    X_train, X_test = split(X, random_state=2)
    mean = X_train.mean(axis=0)
    _, _, vt = np.linalg.svd(X_train - mean, full_matrices=False)
    basis = vt[:k]
    X_hat = mean + (X_test - mean) @ basis.T @ basis
    expected = r2_per_feature(X_test, X_hat)
    for method in ["auto", "inverse_transform", "linear"]:
        per_feature = reconstruction_r2(
            PCA(n_components=k),
            X,
            method=method,
            multioutput="raw_values",
            random_state=2,
        )
        assert_allclose(per_feature, expected, rtol=1e-9)
        overall = reconstruction_r2(PCA(n_components=k), X, random_state=2)
        assert_allclose(overall, expected.mean(), rtol=1e-9)


def linear_reconstruction_r2(Z_train, X_train, Z_test, X_test):
    # Least squares with an intercept: min ||[Z 1] W - X||.
    W = np.linalg.pinv(np.column_stack([Z_train, np.ones(len(Z_train))])) @ X_train
    X_hat = np.column_stack([Z_test, np.ones(len(Z_test))]) @ W
    return r2_per_feature(X_test, X_hat)


@pytest.mark.parametrize("dataset", ["rows", "iris", "wine"])
def test_reconstruction_r2_lossy_transformers_use_linear_map(dataset):
    from sknorm import LayerNormalizer

    X = datasets()[dataset]
    X_train, X_test = split(X, random_state=0)

    def l2(A):
        return A / np.linalg.norm(A, axis=1, keepdims=True)

    def layer(A):
        centered = A - A.mean(axis=1, keepdims=True)
        return centered / np.sqrt(np.mean(centered**2, axis=1, keepdims=True) + 1e-5)

    for est, formula in [(Normalizer(), l2), (LayerNormalizer(), layer)]:
        expected = linear_reconstruction_r2(
            formula(X_train), X_train, formula(X_test), X_test
        )
        per_feature = reconstruction_r2(
            est, X, multioutput="raw_values", random_state=0
        )
        assert_allclose(per_feature, expected, rtol=1e-6, atol=1e-9)
        sse_over_sst = 1 - expected
        weights = ((X_test - X_test.mean(axis=0)) ** 2).sum(axis=0)
        assert_allclose(
            reconstruction_r2(est, X, multioutput="variance_weighted", random_state=0),
            1 - (sse_over_sst * weights).sum() / weights.sum(),
            rtol=1e-6,
        )


def test_reconstruction_r2_keep_stats_recovers_what_layer_norm_loses():
    from sknorm import LayerNormalizer

    # Row locations and spreads dominate the variance of every feature.
    X = rows_data(n_samples=80)
    lossy = reconstruction_r2(LayerNormalizer(), X, random_state=0)
    kept = reconstruction_r2(LayerNormalizer(keep_stats=True), X, random_state=0)
    assert lossy < 0.5
    assert_allclose(kept, 1.0, atol=1e-10)
    # Without kept statistics LayerNormalizer has no inverse_transform at all.
    with pytest.raises(TypeError, match="has no inverse_transform"):
        reconstruction_r2(LayerNormalizer(), X, method="inverse_transform")


def test_reconstruction_r2_auto_takes_the_better_reconstruction():
    # FunctionTransformer(2x) without inverse_func has an identity inverse:
    # x_hat = 2x, a poor reconstruction; the linear map undoes the factor.
    X = rows_data(n_samples=40)
    doubler = FunctionTransformer(lambda A: 2 * A)
    _, X_test = split(X, random_state=0)
    identity_inverse = r2_per_feature(X_test, 2 * X_test).mean()
    assert_allclose(
        reconstruction_r2(doubler, X, method="inverse_transform", random_state=0),
        identity_inverse,
    )
    assert identity_inverse < 0.9
    assert_allclose(reconstruction_r2(doubler, X, random_state=0), 1.0)
    assert_allclose(reconstruction_r2(doubler, X, method="linear", random_state=0), 1.0)


def test_reconstruction_r2_split_and_dataframe():
    X = rows_data(n_samples=30, n_features=4)
    frame = pd.DataFrame(X, columns=["p", "q", "r", "s"])
    est = ColumnTransformer([("pca", PCA(n_components=2), ["p", "q", "r", "s"])])
    X_train, X_test = split(X, random_state=4, test_size=10)
    mean = X_train.mean(axis=0)
    _, _, vt = np.linalg.svd(X_train - mean, full_matrices=False)
    X_hat = mean + (X_test - mean) @ vt[:2].T @ vt[:2]
    assert_allclose(
        reconstruction_r2(est, frame, test_size=10, random_state=4),
        r2_per_feature(X_test, X_hat).mean(),
        rtol=1e-9,
    )


def test_reconstruction_r2_rejects_bad_parameters():
    X = rows_data(n_samples=10)
    with pytest.raises(ValueError, match="method to be one of"):
        reconstruction_r2(StandardScaler(), X, method="pinv")
    with pytest.raises(ValueError, match="multioutput to be one of"):
        reconstruction_r2(StandardScaler(), X, multioutput="mean")
    with pytest.raises(ValueError, match="at least 2 training and 2 test"):
        reconstruction_r2(StandardScaler(), X, test_size=1)
    with pytest.raises(TypeError, match="Normalizer has no inverse_transform"):
        reconstruction_r2(Normalizer(), X, method="inverse_transform")


# ---------------------------------------------------------------------------
# plot_invariance_table


def test_plot_invariance_table_boolean_and_deviation():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    X = np.abs(rows_data()) + 1.0
    with pytest.warns(UserWarning, match="failed"):
        table, deviation = invariance_table(
            {"std": StandardScaler(), "box-cox": PowerTransformer(method="box-cox")},
            X,
            return_deviation=True,
            random_state=0,
        )
    ax = plot_invariance_table(table)
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == table.size
    expected = [
        "n/a" if cell is pd.NA else ("yes" if cell else "no")
        for cell in table.to_numpy(dtype=object).ravel()
    ]
    assert texts == expected
    assert [t.get_text() for t in ax.get_yticklabels()] == ["std", "box-cox"]
    assert [t.get_text() for t in ax.get_xticklabels()][0] == "sample\nshift"
    plt.close(ax.figure)

    fig, ax = plt.subplots()
    returned = plot_invariance_table(deviation, ax=ax, annotate=False)
    assert returned is ax
    assert not ax.texts
    assert len(fig.axes) == 2  # the colorbar
    plt.close(fig)

    with pytest.raises(TypeError, match="DataFrame returned by invariance_table"):
        plot_invariance_table(table.to_numpy())
    with pytest.raises(TypeError, match="boolean table or a numeric"):
        plot_invariance_table(table.astype(str))


def test_plot_invariance_table_without_matplotlib(monkeypatch):
    for name in ["matplotlib", "matplotlib.pyplot", "matplotlib.colors"]:
        monkeypatch.setitem(sys.modules, name, None)
    table = invariance_table(StandardScaler(), rows_data(), random_state=0)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_invariance_table(table)


def test_importing_inspection_does_not_import_matplotlib():
    root = Path(__file__).resolve().parents[1]
    code = "import sys, sknorm.inspection; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip() == "False"
