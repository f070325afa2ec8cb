"""sknorm estimators inside scikit-learn's composition and model-selection tools."""

import pickle

import joblib
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer

ESTIMATORS = [
    LayerNormalizer(affine=True, keep_stats=True),
    RMSNormalizer(keep_stats=True),
    GroupNormalizer([[0, 1], [2, 3, 4]], keep_stats=True, affine=True),
]


def _shape_data(rng, n=200):
    """Class = shape of the row; every row has a random gain and offset."""
    y = rng.integers(0, 2, size=n)
    shapes = np.array([[0, 1, 2, 3, 4.0], [4, 3, 2, 1, 0.0]])
    X = shapes[y] + rng.normal(0, 0.3, size=(n, 5))
    X = X * rng.uniform(0.1, 10, size=(n, 1)) + rng.normal(0, 50, size=(n, 1))
    return X, y


def test_pipeline_layer_norm_beats_standard_scaler(rng):
    X, y = _shape_data(rng)
    ln = cross_val_score(make_pipeline(LayerNormalizer(), LogisticRegression()), X, y)
    ss = cross_val_score(make_pipeline(StandardScaler(), LogisticRegression()), X, y)
    assert ln.mean() >= 0.98
    assert ln.mean() > ss.mean()


def test_grid_search_over_affine_and_keep_stats(rng):
    X, y = _shape_data(rng)
    search = GridSearchCV(
        make_pipeline(LayerNormalizer(), LogisticRegression()),
        {
            "layernormalizer__affine": [False, True],
            "layernormalizer__keep_stats": [False, True],
        },
        cv=3,
    ).fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_score_ > 0.95


def test_column_transformer_with_pandas_names():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(12, 5)), columns=["a", "b", "c", "d", "kind"])
    ct = ColumnTransformer(
        [
            ("ln", LayerNormalizer(keep_stats=True), ["a", "b", "c"]),
            ("gn", GroupNormalizer({"pair": ["d", "kind"]}), ["d", "kind"]),
        ]
    ).set_output(transform="pandas")
    out = ct.fit_transform(df)
    assert list(out.columns) == [
        "ln__a",
        "ln__b",
        "ln__c",
        "ln__sample_center",
        "ln__sample_scale",
        "gn__d",
        "gn__kind",
    ]
    assert_allclose(out["ln__sample_center"], df[["a", "b", "c"]].mean(axis=1))


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_clone_pickle_joblib(est, rng, tmp_path):
    X = rng.normal(size=(30, 5))
    fitted = clone(est).fit(X)
    expected = fitted.transform(X)
    again = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(again.transform(X), expected)
    joblib.dump(fitted, tmp_path / "est.joblib")
    assert_array_equal(joblib.load(tmp_path / "est.joblib").transform(X), expected)
    fresh = clone(fitted)
    assert not hasattr(fresh, "n_features_in_")
    assert fresh.get_params() == est.get_params()


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_set_output_pandas(est, rng):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(
        rng.normal(size=(9, 5)), columns=list("pqrst"), index=range(100, 109)
    )
    est = clone(est).set_output(transform="pandas")
    out = est.fit_transform(df)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(est.get_feature_names_out())
    assert list(out.index) == list(df.index)
    assert_allclose(
        out.to_numpy(),
        clone(est).set_output(transform="default").fit_transform(df.to_numpy()),
    )
    # the kept statistics make the round trip from a DataFrame exact
    assert_allclose(est.inverse_transform(out), df.to_numpy(), rtol=1e-12)


def test_set_output_polars(rng):
    pl = pytest.importorskip("polars")
    df = pl.DataFrame(
        {"a": [1.0, 2.0, 3.0], "b": [4.0, 6.0, 1.0], "c": [0.0, 1.0, 1.0]}
    )
    out = (
        LayerNormalizer(keep_stats=True)
        .set_output(transform="polars")
        .fit_transform(df)
    )
    assert isinstance(out, pl.DataFrame)
    assert out.columns == ["a", "b", "c", "sample_center", "sample_scale"]
    assert_allclose(out["sample_center"].to_numpy(), df.to_numpy().mean(axis=1))


def test_html_repr_in_pipeline():
    pipe = make_pipeline(GroupNormalizer(2, keep_stats=True), LogisticRegression())
    html = pipe._repr_html_()
    assert "GroupNormalizer" in html and "keep_stats" in html
