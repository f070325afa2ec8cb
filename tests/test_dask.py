"""sknorm.dask on a real distributed.LocalCluster (2 worker processes).

Fits and transforms on Dask Arrays and DataFrames must equal the in-memory
ones (<= 1e-12); transforms are lazy, with the right dtype, columns and meta.
The whole module skips when dask[dataframe] or distributed is not installed
(``pip install sknorm[dask]``; dask-ml for the ParallelPostFit test).
"""

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler

from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer

pd = pytest.importorskip("pandas")
dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
sknorm_dask = pytest.importorskip("sknorm.dask")


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        # Cluster start-up may warn about ports or resources; not our concern.
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            memory_limit="1GiB",
        )
    with cluster, distributed.Client(cluster) as client:
        yield client


ESTIMATORS = [
    LayerNormalizer(),
    LayerNormalizer(affine=True),
    LayerNormalizer(affine=True, keep_stats=True),
    LayerNormalizer(center="median", scale="iqr", affine=True, keep_stats=True),
    RMSNormalizer(affine=True, keep_stats=True),
    GroupNormalizer(groups=[[0, 2], [1, 4, 5]], affine=True, keep_stats=True),
    GroupNormalizer(groups=2, remainder="drop", keep_stats=True),
]


def _data(n_samples=203, n_features=6, dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features)) * rng.uniform(0.5, 3, (n_samples, 1))
    X += rng.normal(scale=20, size=(n_samples, 1))
    X[5, 1] = np.nan
    X[9, :] = 4.0
    return X.astype(dtype)


def _frame(X):
    return pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])


def _to_dask(X, container, n_parts=7):
    """Uneven row partitions; the DataFrame gets an empty one too."""
    if container == "array":
        bounds = np.linspace(0, X.shape[0], n_parts + 1).astype(int)
        chunks = tuple(np.diff(bounds).tolist())
        return da.from_array(X, chunks=(chunks, 2))  # columns are rechunked
    df = dd.from_pandas(_frame(X), npartitions=n_parts)
    empty = dd.from_pandas(_frame(X[:0]), npartitions=1)
    return dd.concat([df, empty])


def _assert_fits_equal(fitted, ref):
    assert fitted.n_samples_seen_ == ref.n_samples_seen_
    assert fitted.n_features_in_ == ref.n_features_in_
    if hasattr(ref, "feature_names_in_"):
        assert_array_equal(fitted.feature_names_in_, ref.feature_names_in_)
    if ref.affine:
        assert_allclose(fitted.gain_, ref.gain_, rtol=1e-12, atol=1e-12)
        assert_allclose(fitted.bias_, ref.bias_, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("container", ["array", "frame"])
@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
def test_fit_and_transform_equal_in_memory(client, estimator, container):
    X = _data()
    X_in = X if container == "array" else _frame(X)
    ref = clone(estimator).fit(X_in)
    dX = _to_dask(X, container)
    fitted = sknorm_dask.fit(estimator, dX, split_every=2)
    assert not hasattr(estimator, "n_samples_seen_")  # cloned, not modified
    _assert_fits_equal(fitted, ref)

    Y = sknorm_dask.transform(fitted, dX)
    expected = ref.transform(X_in)
    if container == "array":
        assert isinstance(Y, da.Array)
        assert Y.shape == expected.shape and Y.dtype == expected.dtype
        assert isinstance(Y._meta, np.ndarray) and Y._meta.dtype == expected.dtype
        assert Y.chunks[0] == dX.chunks[0]
        out = Y.compute()
    else:
        assert isinstance(Y, dd.DataFrame)
        names = list(ref.get_feature_names_out())
        assert list(Y.columns) == names
        assert list(Y._meta.dtypes) == [np.dtype("float64")] * len(names)
        assert Y.npartitions == dX.npartitions
        out = Y.compute()
        assert_array_equal(out.index, X_in.index)
        out = out.to_numpy()
    assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_float32_is_kept(client):
    X = _data(dtype="float32")
    est = LayerNormalizer(affine=True, keep_stats=True)
    for container in ("array", "frame"):
        dX = _to_dask(X, container)
        Y = sknorm_dask.transform(sknorm_dask.fit(est, dX), dX)
        dtypes = [Y.dtype] if container == "array" else list(Y._meta.dtypes)
        assert set(dtypes) == {np.dtype("float32")}
        assert np.asarray(Y.compute()).dtype == np.float32


@pytest.mark.parametrize("split_every", [2, 3, 100])
def test_sample_weight_and_tree_reduction(client, split_every):
    X = _data()
    w = np.random.default_rng(2).uniform(0, 2, size=X.shape[0])
    est = GroupNormalizer(groups=3, affine=True)
    ref = clone(est).fit(X, sample_weight=w)
    dX = _to_dask(X, "array", n_parts=9)
    for weights in (w, da.from_array(w, chunks=50)):
        fitted = sknorm_dask.fit(
            est, dX, sample_weight=weights, split_every=split_every
        )
        _assert_fits_equal(fitted, ref)
    df = dd.from_pandas(_frame(X).assign(w=w), npartitions=5)
    fitted = sknorm_dask.fit(
        est, df.drop(columns="w"), sample_weight=df["w"], split_every=split_every
    )
    _assert_fits_equal(fitted, clone(est).fit(_frame(X), sample_weight=w))


def test_fit_is_a_tree_of_partial_fits_and_can_stay_lazy(client):
    dX = _to_dask(_data(), "array", n_parts=8)
    lazy = sknorm_dask.fit(
        LayerNormalizer(affine=True), dX, split_every=2, compute=False
    )
    graph = dict(lazy.__dask_graph__())
    merges = [k for k in graph if str(k).startswith("_merge_fits")]
    assert len(merges) == 4 + 2 + 1  # 8 partition fits merged pairwise
    assert lazy.compute().n_samples_seen_ == dX.shape[0]


def test_transform_is_lazy_and_stateless_needs_no_fit(client):
    X = _data()
    dX = _to_dask(X, "frame")
    Y = sknorm_dask.transform(LayerNormalizer(keep_stats=True), dX)
    assert isinstance(Y, dd.DataFrame)  # nothing computed yet
    assert list(Y.columns) == [*_frame(X).columns, "sample_center", "sample_scale"]
    expected = LayerNormalizer(keep_stats=True).fit_transform(_frame(X))
    assert_allclose(Y.compute().to_numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("container", ["array", "frame"])
def test_inverse_transform_round_trip(client, container):
    X = _data()
    dX = _to_dask(X, container)
    est = sknorm_dask.fit(GroupNormalizer(groups=2, affine=True, keep_stats=True), dX)
    back = sknorm_dask.inverse_transform(est, sknorm_dask.transform(est, dX))
    if container == "frame":
        assert list(back.columns) == list(_frame(X).columns)
    assert_allclose(np.asarray(back.compute()), X, rtol=1e-10)


def test_set_output_does_not_leak_into_partitions(client):
    X = _data()
    est = LayerNormalizer(affine=True).set_output(transform="pandas")
    fitted = sknorm_dask.fit(est, _to_dask(X, "array"))
    Y = sknorm_dask.transform(fitted, _to_dask(X, "array"))
    assert isinstance(Y, da.Array)
    assert isinstance(Y.compute(), np.ndarray)
    assert fitted.get_params() == est.get_params()


def test_parallel_post_fit_transform(client):
    """dask-ml's ParallelPostFit is an alternative path for transform."""
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X = _data()
    ln = LayerNormalizer(affine=True)
    ppf = wrappers.ParallelPostFit(estimator=ln).fit(X)
    Y = ppf.transform(_to_dask(X, "array"))
    assert isinstance(Y, da.Array)
    assert_allclose(Y.compute(), clone(ln).fit(X).transform(X), rtol=1e-12)
    # The estimator fitted by sknorm.dask plugs in as well.
    fitted = sknorm_dask.fit(ln, _to_dask(X, "array"))
    Y = wrappers.ParallelPostFit(estimator=fitted).transform(_to_dask(X, "array"))
    assert_allclose(Y.compute(), clone(ln).fit(X).transform(X), rtol=1e-12)


def test_errors():
    X = _data(n_samples=20)
    dX = da.from_array(X, chunks=5)
    with pytest.raises(TypeError, match="sknorm estimators"):
        sknorm_dask.fit(StandardScaler(), dX)
    with pytest.raises(ValueError, match="split_every"):
        sknorm_dask.fit(LayerNormalizer(), dX, split_every=1)
    with pytest.raises(NotFittedError):
        sknorm_dask.transform(LayerNormalizer(affine=True), dX)
    with pytest.raises(TypeError, match="dask Array or DataFrame"):
        sknorm_dask.transform(LayerNormalizer(), X)
    with pytest.raises(ValueError, match="one weight per sample"):
        sknorm_dask.fit(LayerNormalizer(affine=True), dX, sample_weight=np.ones(3))
    df = dd.from_pandas(_frame(X), npartitions=2)
    with pytest.raises(TypeError, match="dask Series"):
        sknorm_dask.fit(LayerNormalizer(affine=True), df, sample_weight=np.ones(20))
    weights = dd.from_pandas(pd.Series(np.ones(20)), npartitions=3)
    with pytest.raises(ValueError, match="partitions"):
        sknorm_dask.fit(LayerNormalizer(affine=True), df, sample_weight=weights)
    fitted = LayerNormalizer(affine=True).fit(X)
    with pytest.raises(ValueError, match="features"):
        sknorm_dask.transform(fitted, da.from_array(X[:, :3], chunks=5))
    # In-memory input is fitted in memory.
    assert sknorm_dask.fit(LayerNormalizer(), X).n_samples_seen_ == 20


def test_merge_equals_fit_on_concatenation():
    X = _data()
    w = np.random.default_rng(3).uniform(0, 2, size=X.shape[0])
    est = GroupNormalizer(groups=[[0, 1, 2], [3, 5]], affine=True)
    a = clone(est).fit(X[:50], sample_weight=w[:50])
    b = clone(est).fit(X[50:], sample_weight=w[50:])
    b_gain = b.gain_.copy()
    assert a.merge(b) is a  # in place, like partial_fit
    _assert_fits_equal(a, clone(est).fit(X, sample_weight=w))
    assert b.n_samples_seen_ == X.shape[0] - 50  # the other fit is unchanged
    assert_array_equal(b.gain_, b_gain)
    with pytest.raises(TypeError, match="Cannot merge"):
        a.merge(LayerNormalizer(affine=True).fit(X))
    with pytest.raises(ValueError, match="features"):
        a.merge(clone(est).fit(X[:, :5]))
    with pytest.raises(ValueError, match="column names"):
        LayerNormalizer().fit(X).merge(LayerNormalizer().fit(_frame(X)))


@pytest.mark.parametrize("n_parts", [8, 2])
def test_lazy_fits_sharing_partitions_do_not_mutate_each_other(n_parts):
    """Two lazy fits over the same partitions share their (pure) partition tasks:
    merging must not mutate a fit that the other reduction also holds, and the
    two results must be distinct objects (regression: n_samples_seen_ 2000 for
    800 rows, one object returned twice)."""
    X = _data(n_samples=800)
    dX = da.from_array(X, chunks=(800 // n_parts, 6))
    est = LayerNormalizer(affine=True)
    lazy_a = sknorm_dask.fit(est, dX, split_every=2, compute=False)
    lazy_b = sknorm_dask.fit(est, dX, split_every=4, compute=False)
    # The synchronous scheduler hands the very same objects to both reductions.
    a, b = dask.compute(lazy_a, lazy_b, scheduler="sync")
    ref = clone(est).fit(X)
    assert a is not b
    _assert_fits_equal(a, ref)
    _assert_fits_equal(b, ref)
    a.partial_fit(X[:10])
    assert b.n_samples_seen_ == 800


def test_unknown_chunk_sizes_with_sample_weight(client):
    X = _data()
    w = np.random.default_rng(4).uniform(0, 2, size=X.shape[0])
    df = dd.from_pandas(_frame(X).assign(w=w), npartitions=4)
    dX = df.drop(columns="w").to_dask_array()  # row chunks unknown (nan)
    assert np.isnan(dX.shape[0])
    est = RMSNormalizer(affine=True)
    ref = clone(est).fit(X, sample_weight=w)
    # Weights from the same DataFrame: paired block by block.
    fitted = sknorm_dask.fit(est, dX, sample_weight=df["w"].to_dask_array())
    _assert_fits_equal(fitted, ref)
    # In-memory weights cannot be cut to unknown chunks: say how to fix it.
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
        sknorm_dask.fit(est, dX, sample_weight=w)
    # Blocks of other sizes are named at compute time.
    other = da.from_array(w, chunks=(50, 50, 50, 53)).to_delayed()
    uneven = da.concatenate(
        [da.from_delayed(b, shape=(np.nan,), dtype=w.dtype) for b in other]
    )
    with pytest.raises(ValueError, match="block of sample_weight"):
        sknorm_dask.fit(est, dX, sample_weight=uneven)
    # ... and with known chunks in X, unknown ones in the weights are named.
    known = df.drop(columns="w").to_dask_array(lengths=True)
    with pytest.raises(ValueError, match=r"sample_weight has unknown chunk"):
        three = da.concatenate(
            [da.from_delayed(b, shape=(np.nan,), dtype=w.dtype) for b in other[:3]]
        )
        sknorm_dask.fit(est, known, sample_weight=three)
    # In-memory weights work once the chunk sizes are known.
    fitted = sknorm_dask.fit(est, dX.compute_chunk_sizes(), sample_weight=w)
    _assert_fits_equal(fitted, ref)


@pytest.mark.parametrize("categories", ["known", "unknown"])
def test_transform_frame_with_categorical_column(client, categories):
    """No pandas deprecation from sknorm's probe row (the suite makes it an
    error); numeric categories are normalized like in memory."""
    X = _data(n_samples=40, n_features=3)
    frame = _frame(X).assign(c=pd.Categorical(np.tile([1.0, 2.0], 20)))
    ddf = dd.from_pandas(frame, npartitions=3)
    if categories == "unknown":
        ddf = dd.from_pandas(_frame(X).assign(c=np.tile([1.0, 2.0], 20)), 3)
        ddf["c"] = ddf["c"].astype("category")  # categories unknown to dask
    est = LayerNormalizer(keep_stats=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = sknorm_dask.transform(est, ddf).compute()
    expected = clone(est).fit_transform(frame.astype({"c": "float64"}))
    assert list(out.columns) == [*frame.columns, "sample_center", "sample_scale"]
    assert_allclose(out.to_numpy(), expected, rtol=1e-12, atol=1e-12)


def test_dask_ml_incremental_with_a_dummy_scoring(client):
    """dask-ml's Incremental needs a scoring (sknorm's transformers have no
    score): with a dummy one it fits by partial_fit, block by block."""
    wrappers = pytest.importorskip("dask_ml.wrappers")
    X = _data()
    inc = wrappers.Incremental(
        LayerNormalizer(affine=True), scoring=lambda est, X, y=None: 0.0
    )
    # Incremental feeds blocks as they are: one block across the columns.
    dX = _to_dask(X, "array").rechunk({1: -1})
    inc.fit(dX)
    ref = LayerNormalizer(affine=True).fit(X)
    _assert_fits_equal(inc.estimator_, ref)
    Y = inc.transform(dX)
    assert_allclose(Y.compute(), ref.transform(X), rtol=1e-12, atol=1e-12)


def test_missing_dask_names_the_extra(monkeypatch):
    monkeypatch.setattr(sknorm_dask, "_DASK_IMPORT_ERROR", ImportError("no dask"))
    with pytest.raises(ImportError, match=r"pip install sknorm\[dask\]"):
        sknorm_dask.fit(LayerNormalizer(), None)
    with pytest.raises(ImportError, match=r"pip install sknorm\[dask\]"):
        sknorm_dask.transform(LayerNormalizer(), None)
