"""sknorm's configuration: environment variables and set_config's checks."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.base import clone

import sknorm
from sknorm import LayerNormalizer


def _import_sknorm_with(env_updates):
    env = {**os.environ, **env_updates}
    return subprocess.run(
        [sys.executable, "-c", "import sknorm; print(sknorm.get_config())"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5"])
def test_bad_num_threads_env_names_the_variable(value):
    result = _import_sknorm_with({"SKNORM_NUM_THREADS": value})
    assert result.returncode != 0
    assert "SKNORM_NUM_THREADS" in result.stderr
    assert "positive integer" in result.stderr
    assert "invalid literal" not in result.stderr


def test_bad_engine_env_names_the_variable():
    result = _import_sknorm_with({"SKNORM_ENGINE": "fortran"})
    assert result.returncode != 0
    assert "SKNORM_ENGINE" in result.stderr
    assert "'numpy'" in result.stderr


def test_good_env_values_are_read():
    result = _import_sknorm_with(
        {"SKNORM_NUM_THREADS": " 3 ", "SKNORM_ENGINE": "NumPy"}
    )
    assert result.returncode == 0, result.stderr
    assert "'engine': 'numpy'" in result.stdout
    assert "'n_threads': 3" in result.stdout


@pytest.mark.parametrize("n", [np.int64(2), np.int32(3), np.uint8(1)])
def test_numpy_integers_are_accepted(n):
    with sknorm.config_context(n_threads=n):
        got = sknorm.get_config()["n_threads"]
        assert got == int(n) and type(got) is int
        Z = sknorm.layer_norm(np.array([[1.0, 2.0, 3.0]]), eps=0)
    np.testing.assert_allclose(Z, [[-np.sqrt(1.5), 0.0, np.sqrt(1.5)]])


@pytest.mark.parametrize("n", [True, 2.0, "2", np.float64(2.0)])
def test_non_integer_n_threads_are_refused(n):
    with pytest.raises(TypeError, match="n_threads"):
        sknorm.set_config(n_threads=n)


@pytest.mark.parametrize("n", [0, -1, np.int64(0)])
def test_non_positive_n_threads_are_refused(n):
    with pytest.raises(ValueError, match="positive int"):
        sknorm.set_config(n_threads=n)


# -- the configuration reaches joblib workers through the estimators ------------
def _code(config):
    """One number for a configuration (engine and thread count)."""
    return 100 * sknorm._config.ENGINES.index(config["engine"]) + (
        config["n_threads"] or 0
    )


def _probe_class():
    """A LayerNormalizer that reports the sknorm configuration its methods see.

    Defined in a function so that loky workers receive the class by value.
    """

    class ConfigProbe(LayerNormalizer):
        def fit(self, X, y=None, sample_weight=None):
            self.seen_config_ = sknorm.get_config()
            self.seen_pid_ = os.getpid()
            return super().fit(X, y, sample_weight=sample_weight)

        def transform(self, X, copy=None):
            Z = super().transform(X, copy=copy)
            return np.full((Z.shape[0], 1), float(_code(sknorm.get_config())))

        def score(self, X, y=None):
            return float(_code(self.seen_config_))

    return ConfigProbe


PARENT = {"engine": "numpy", "n_threads": 3}
X = np.arange(48.0).reshape(12, 4) ** 1.5


def test_defaults_differ_from_the_parent_config():
    assert sknorm.get_config() != PARENT  # else the tests below prove nothing


def test_grid_search_workers_get_the_config():
    from sklearn.model_selection import GridSearchCV

    probe = _probe_class()()
    search = GridSearchCV(probe, {"eps": [1e-5, 1e-3]}, cv=3, n_jobs=2)
    with sknorm.config_context(**PARENT):
        search.fit(X)
    assert list(search.cv_results_["mean_test_score"]) == [_code(PARENT)] * 2


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_cross_validate_workers_get_the_config(backend):
    from joblib import parallel_config
    from sklearn.model_selection import cross_validate

    with sknorm.config_context(**PARENT), parallel_config(backend=backend):
        result = cross_validate(
            _probe_class()(), X, cv=4, n_jobs=2, return_estimator=True
        )
    for est in result["estimator"]:
        assert est.seen_config_ == PARENT
        if backend == "loky":
            assert est.seen_pid_ != os.getpid()


@pytest.mark.parametrize("parallel", ["joblib", "sklearn"])
def test_parallel_transform_of_a_model_fitted_under_the_config(parallel):
    if parallel == "joblib":
        from joblib import Parallel, delayed
    else:
        from sklearn.utils.parallel import Parallel, delayed

    with sknorm.config_context(**PARENT):
        est = _probe_class()().fit(X)
        codes = Parallel(n_jobs=2, backend="loky")(
            delayed(est.transform)(X[i : i + 3]) for i in range(0, 12, 3)
        )
    np.testing.assert_array_equal(np.vstack(codes), _code(PARENT))


def test_the_recording_thread_uses_its_current_config():
    with sknorm.config_context(**PARENT):
        est = clone(_probe_class()())
    # back outside the block, this thread's own configuration applies
    assert est.fit(X).seen_config_ == sknorm.get_config() != PARENT


def test_other_threads_use_the_recorded_config_unless_they_set_their_own():
    with sknorm.config_context(**PARENT):
        est = clone(_probe_class()())

    def fit_with_own_config():
        with sknorm.config_context(n_threads=2):
            return clone(est).fit(X).seen_config_

    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(lambda: clone(est).fit(X).seen_config_).result() == PARENT
        own = pool.submit(fit_with_own_config).result()
    assert own["n_threads"] == 2


def test_clone_without_configuration_records_nothing():
    est = clone(_probe_class()())
    with ThreadPoolExecutor(1) as pool:
        seen = pool.submit(lambda: est.fit(X).seen_config_).result()
    assert seen == sknorm.get_config()
