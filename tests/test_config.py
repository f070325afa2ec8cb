"""sknorm's configuration: environment variables and set_config's checks."""

import os
import subprocess
import sys

import numpy as np
import pytest

import sknorm


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
