"""Tools that measure what a transformer throws away.

They work on any scikit-learn transformer or Pipeline, not only sknorm's:

- :func:`invariance_table`: which transformations of the data (per-sample,
  per-feature or dataset-wide shifts and scales, feature permutations) leave
  the refitted transformer's output unchanged, after the invariance table of
  Ba, Kiros & Hinton (2016, Table 1);
- :func:`collapsed_directions`: how many input directions a fitted transformer
  collapses at each sample (the rank deficit of its Jacobian);
- :func:`reconstruction_r2`: how much of the input can be recovered from the
  output (R^2 of the best reconstruction on held-out samples);
- :func:`plot_invariance_table`: the table as a heatmap (needs matplotlib).
"""

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
