"""Saving and loading: pickle, joblib and skops give identical transforms.

Within one version of sknorm and scikit-learn a loaded estimator must behave
exactly (bit for bit) as the saved one: transform, inverse_transform, feature
names, set_output, and further partial_fit calls. docs/persistence.rst
documents this; its examples run here too.
"""

import copy
import doctest
import io
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.base import clone

import sknorm
from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer, config_context
from sknorm.exceptions import InconsistentVersionWarning

# One estimator below has a group of one column on purpose (it must persist too).
pytestmark = pytest.mark.filterwarnings(
    "ignore::sknorm.exceptions.SingleColumnGroupWarning"
)

DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "persistence.rst"

ESTIMATORS = [
    LayerNormalizer(),
    LayerNormalizer(eps=0.0, keep_stats=True),
    LayerNormalizer(affine=True, keep_stats=True),
    LayerNormalizer(center="median", scale="iqr", affine=True),
    LayerNormalizer(center=None, scale="mad", keep_stats=True),
    RMSNormalizer(),
    RMSNormalizer(affine=True, keep_stats=True),
    GroupNormalizer(2, keep_stats=True),
    GroupNormalizer({"a": [0, 2], "b": [3, 5]}, affine=True, keep_stats=True),
    GroupNormalizer([[4, 1], [0]], center="median", scale="mad", remainder="drop"),
]
FITTED_ATTRIBUTES = (
    "n_features_in_",
    "n_samples_seen_",
    "gain_",
    "bias_",
    "groups_",
    "feature_names_in_",
)


def _data(seed=0, n=30):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6)) * rng.uniform(0.1, 10, size=(n, 1)) + 3
    X[rng.random(X.shape) < 0.05] = np.nan
    return X


def _fitted(est, X):
    """A fitted clone, the affine ones by two partial_fit calls."""
    est = clone(est)
    if getattr(est, "affine", False):
        est.partial_fit(X[:10]).partial_fit(X[10:])
    else:
        est.fit(X)
    return est


def _assert_same_estimator(loaded, est, X):
    assert type(loaded) is type(est)
    assert repr(loaded.get_params()) == repr(est.get_params())
    for attr in FITTED_ATTRIBUTES:
        assert hasattr(loaded, attr) == hasattr(est, attr), attr
        if hasattr(est, attr):
            a, b = getattr(loaded, attr), getattr(est, attr)
            if isinstance(b, dict):
                assert list(a) == list(b)
                for k in b:
                    assert_array_equal(a[k], b[k])
            else:
                assert_array_equal(a, b)
    Y = est.transform(X)
    assert_array_equal(loaded.transform(X), Y)
    assert_array_equal(loaded.get_feature_names_out(), est.get_feature_names_out())
    if est.keep_stats and getattr(est, "remainder", "passthrough") == "passthrough":
        assert_array_equal(loaded.inverse_transform(Y), est.inverse_transform(Y))


def _no_warning_loads(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return pickle.loads(data)


@pytest.mark.parametrize("est", ESTIMATORS, ids=repr)
@pytest.mark.parametrize("protocol", sorted({0, pickle.DEFAULT_PROTOCOL, 5}))
def test_pickle_round_trip_gives_identical_transform(est, protocol):
    X = _data()
    est = _fitted(est, X)
    loaded = _no_warning_loads(pickle.dumps(est, protocol=protocol))
    _assert_same_estimator(loaded, est, _data(seed=1))


@pytest.mark.parametrize("est", ESTIMATORS, ids=repr)
def test_transform_leaves_the_saved_state_unchanged(est):
    # What transform keeps for its next calls (layouts) is not fitted state:
    # a model saved after transforming is the model saved before.
    X = _data()
    est = _fitted(est, X)
    before = pickle.dumps(est)
    est.transform(X)
    est.transform(_data(seed=1))
    assert pickle.dumps(est) == before


@pytest.mark.parametrize("est", ESTIMATORS, ids=repr)
def test_unfitted_estimator_round_trips(est):
    loaded = _no_warning_loads(pickle.dumps(est))
    assert repr(loaded) == repr(est)
    assert not hasattr(loaded, "n_features_in_")
    X = _data()
    assert_array_equal(_fitted(loaded, X).transform(X), _fitted(est, X).transform(X))


@pytest.mark.parametrize("compress", [0, 3])
@pytest.mark.parametrize("est", ESTIMATORS, ids=repr)
def test_joblib_round_trip_gives_identical_transform(est, compress, tmp_path):
    X = _data()
    est = _fitted(est, X)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path, compress=compress)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = joblib.load(path)
    _assert_same_estimator(loaded, est, _data(seed=1))


@pytest.mark.parametrize(
    "est", [e for e in ESTIMATORS if getattr(e, "affine", False)], ids=repr
)
def test_partial_fit_resumes_after_loading(est):
    """The running sums are saved: learning goes on as if never interrupted."""
    X = _data(n=40)
    first = clone(est).partial_fit(X[:20])
    loaded = pickle.loads(pickle.dumps(first))
    loaded.partial_fit(X[20:])
    first.partial_fit(X[20:])
    assert loaded.n_samples_seen_ == first.n_samples_seen_ == 40
    assert_array_equal(loaded.gain_, first.gain_)
    assert_array_equal(loaded.bias_, first.bias_)
    assert_array_equal(loaded.transform(X), first.transform(X))


def test_sparse_rms_normalizer_round_trips():
    X = sp.random(20, 8, density=0.3, format="csr", random_state=0)
    est = RMSNormalizer(keep_stats=True).fit(X)
    loaded = pickle.loads(pickle.dumps(est))
    Y = est.transform(X)
    Y_loaded = loaded.transform(X)
    assert sp.issparse(Y_loaded) and Y_loaded.format == Y.format
    assert_array_equal(Y_loaded.toarray(), Y.toarray())


def test_dataframe_fit_and_set_output_are_saved():
    pd = pytest.importorskip("pandas")
    X = _data()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    est = GroupNormalizer({"a": ["f0", "f1", "f2"], "b": ["f4", "f5"]}, affine=True)
    est.set_output(transform="pandas").fit(df)
    loaded = pickle.loads(pickle.dumps(est))
    out = loaded.transform(df)
    assert isinstance(out, pd.DataFrame)
    pd.testing.assert_frame_equal(out, est.transform(df))
    assert_array_equal(loaded.feature_names_in_, df.columns)


def test_pickle_loads_in_a_fresh_process(tmp_path):
    """No state of the saving process is needed: same engine, same bits.

    The engine configuration (sknorm.set_config) belongs to the process and
    may change results by rounding, so both sides use the numpy engine.
    """
    X = _data()
    ests = [_fitted(est, X) for est in ESTIMATORS]
    (tmp_path / "models.pkl").write_bytes(pickle.dumps(ests))
    np.save(tmp_path / "X.npy", X)
    code = (
        "import pickle, sys, warnings, numpy as np, sknorm\n"
        "warnings.simplefilter('error')\n"
        "sknorm.set_config(engine='numpy')\n"
        "d = sys.argv[1]\n"
        "ests = pickle.load(open(d + '/models.pkl', 'rb'))\n"
        "X = np.load(d + '/X.npy')\n"
        "np.save(d + '/Y.npy', np.hstack([e.transform(X) for e in ests]))\n"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)
    with config_context(engine="numpy"):
        expected = np.hstack([est.transform(X) for est in ests])
    assert_array_equal(np.load(tmp_path / "Y.npy"), expected)


@pytest.mark.parametrize("est", ESTIMATORS, ids=repr)
def test_skops_round_trip_trusts_only_sknorm_types(est):
    sio = pytest.importorskip("skops.io")
    X = _data()
    est = _fitted(est, X)
    data = sio.dumps(est)
    untrusted = sio.get_untrusted_types(data=data)
    assert all(t.startswith("sknorm.") for t in untrusted), untrusted
    with pytest.raises(Exception, match="[Uu]ntrusted"):
        sio.loads(data)
    loaded = sio.loads(data, trusted=untrusted)
    _assert_same_estimator(loaded, est, _data(seed=1))


def test_docs_page_examples_run():
    pytest.importorskip("skops.io")
    assert DOCS_PAGE.exists(), DOCS_PAGE
    parser = doctest.DocTestParser()
    test = parser.get_doctest(
        DOCS_PAGE.read_text(), {}, DOCS_PAGE.name, str(DOCS_PAGE), 0
    )
    assert len(test.examples) > 10
    out = io.StringIO()
    runner = doctest.DocTestRunner(
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    )
    runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()


# -- the sknorm version stamped into pickles ------------------------------------
def _restamped(est, version):
    """A pickle of ``est`` whose state says it was made by ``version``."""
    state = est.__getstate__()
    assert state["_sknorm_version"] == sknorm.__version__
    if version is None:
        del state["_sknorm_version"]
    else:
        state["_sknorm_version"] = version
    return pickle.dumps((type(est), state))


def _load_restamped(data):
    cls, state = pickle.loads(data)
    est = cls.__new__(cls)
    est.__setstate__(state)
    return est


@pytest.mark.parametrize("est", ESTIMATORS[:3] + ESTIMATORS[-3:], ids=repr)
def test_pickle_from_another_version_warns(est):
    X = _data()
    est = _fitted(est, X)
    blob = pickle.dumps(est)
    # the stamp is in the pickle itself, as its version string
    assert sknorm.__version__.encode() in blob
    other = blob.replace(
        sknorm.__version__.encode(), b"9.9.9" + b"x" * (len(sknorm.__version__) - 5)
    )
    with pytest.warns(InconsistentVersionWarning) as record:
        loaded = pickle.loads(other)
    (warning,) = record
    message = str(warning.message)
    assert type(est).__name__ in message and sknorm.__version__ in message
    assert warning.message.original_sknorm_version.startswith("9.9.9")
    assert warning.message.current_sknorm_version == sknorm.__version__
    # the stamp does not become an attribute
    assert "_sknorm_version" not in vars(loaded)
    assert_array_equal(loaded.transform(X), est.transform(X))


def test_pickle_without_stamp_warns_unknown_version():
    est = _fitted(LayerNormalizer(affine=True), _data())
    with pytest.warns(InconsistentVersionWarning, match="version unknown"):
        _load_restamped(_restamped(est, None))
    with pytest.warns(InconsistentVersionWarning, match="version 0.0.1 when"):
        _load_restamped(_restamped(est, "0.0.1"))


def test_stamp_does_not_touch_the_estimator():
    est = _fitted(GroupNormalizer(2, affine=True), _data())
    before = set(vars(est))
    pickle.dumps(est)
    copy.deepcopy(est)
    assert set(vars(est)) == before and "_sknorm_version" not in before


def test_deepcopy_and_same_version_load_do_not_warn():
    est = _fitted(RMSNormalizer(affine=True, keep_stats=True), _data())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        copy.deepcopy(est)
        pickle.loads(pickle.dumps(est))
        _load_restamped(_restamped(est, sknorm.__version__))


def test_skops_file_from_another_version_warns(monkeypatch):
    sio = pytest.importorskip("skops.io")
    X = _data()
    est = _fitted(LayerNormalizer(affine=True, keep_stats=True), X)
    data = sio.dumps(est)
    trusted = sio.get_untrusted_types(data=data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = sio.loads(data, trusted=trusted)
    assert_array_equal(loaded.transform(X), est.transform(X))
    # the same file loaded by a newer sknorm
    monkeypatch.setattr(sknorm, "__version__", "99.0")
    with pytest.warns(InconsistentVersionWarning, match="using version 99.0"):
        sio.loads(data, trusted=trusted)
