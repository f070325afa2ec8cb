"""scikit-learn's estimator checks on every sknorm estimator.

Default and non-default instances run the whole ``check_estimator`` suite
with an empty list of expected failures: each entry would need a real reason.
"""

import importlib.util

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer

ESTIMATORS = [
    LayerNormalizer(),
    LayerNormalizer(affine=True),
    LayerNormalizer(keep_stats=True),
    LayerNormalizer(affine=True, keep_stats=True),
    LayerNormalizer(center="median", scale="mad"),
    LayerNormalizer(center="median", scale="iqr", keep_stats=True),
    LayerNormalizer(center=None),
    LayerNormalizer(center=None, scale=None, keep_stats=True),
    LayerNormalizer(scale=None, affine=True),
    RMSNormalizer(),
    RMSNormalizer(affine=True, keep_stats=True),
    RMSNormalizer(keep_stats=True, eps=0.0),
    GroupNormalizer(groups=1),
    GroupNormalizer(groups=1, affine=True, keep_stats=True),
    GroupNormalizer(groups=[[0]], center="median", scale="iqr"),
    GroupNormalizer(groups={"first": [0]}, remainder="drop", keep_stats=True),
    GroupNormalizer(groups=1, center=None),
]

# Every entry needs a real reason; there are none.
EXPECTED_FAILED_CHECKS = {}


# GroupNormalizer(groups=[[0]]) normalizes a group of one column on purpose: the
# checks must pass while it warns (SingleColumnGroupWarning), without the noise.
_checks = parametrize_with_checks(
    ESTIMATORS,
    expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est), {}),
)
# scikit-learn 1.6 gives pytest a generator of checks, which pytest 9 deprecates
# (an error here): the same parametrization with the checks in a list.
# scikit-learn also yields its Array API checks for namespaces and devices that
# are not installed here (dpnp, cupy, torch on CUDA), each a skip: only the ones
# that can run are generated.


def _device_available(namespace, device):
    if namespace != "torch" or device in (None, "cpu"):
        return True
    import torch

    if device == "cuda":
        return torch.cuda.is_available()
    backend = getattr(torch.backends, device, None)
    return backend is not None and backend.is_available()


def _runnable(param):
    keywords = getattr(param[1], "keywords", {})
    pairs = [(keywords.get("array_namespace"), keywords.get("device_name"))]
    # the mixed-input checks name two (namespace, device) pairs
    pairs += [(v.xp, v.device) for v in keywords.values() if hasattr(v, "xp")]
    return all(
        namespace is None
        or namespace == "numpy"
        or (
            importlib.util.find_spec(namespace) is not None
            and _device_available(namespace, device)
        )
        for namespace, device in pairs
    )


_checks = pytest.mark.parametrize(
    _checks.args[0],
    [p for p in _checks.args[1] if _runnable(p)],
    *_checks.args[2:],
    **_checks.kwargs,
)


@pytest.mark.filterwarnings("ignore::sknorm.exceptions.SingleColumnGroupWarning")
@_checks
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
def test_html_repr(estimator):
    html = estimator._repr_html_()
    assert type(estimator).__name__ in html
