"""Regression tests for issue 12: no silent wrong answers, errors that say what to do.

Each test goes through the public API and failed before its fix.
"""

import numpy as np
import pytest

from sknorm import GroupNormalizer, group_norm

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
