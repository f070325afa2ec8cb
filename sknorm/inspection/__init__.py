"""Inspection tools: what information does a transformer throw away?"""

from ._invariance import invariance_table
from ._jacobian import collapsed_directions
from ._plot import plot_invariance_table
from ._reconstruction import reconstruction_r2

__all__ = [
    "collapsed_directions",
    "invariance_table",
    "plot_invariance_table",
    "reconstruction_r2",
]
