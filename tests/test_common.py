"""scikit-learn's estimator checks on every sknorm estimator.

Default and non-default instances run the whole ``check_estimator`` suite
with an empty list of expected failures: each entry would need a real reason.
"""

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
_checks = pytest.mark.parametrize(
    _checks.args[0], list(_checks.args[1]), *_checks.args[2:], **_checks.kwargs
)


@pytest.mark.filterwarnings("ignore::sknorm.exceptions.SingleColumnGroupWarning")
@_checks
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
def test_html_repr(estimator):
    html = estimator._repr_html_()
    assert type(estimator).__name__ in html
