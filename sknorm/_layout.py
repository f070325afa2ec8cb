"""Which columns are normalized together, and where every output column goes.

:class:`GroupSpec` is what an estimator asks for (its column groups and the
columns that pass through); :class:`Layout` is the one place that turns it,
with ``center``, ``scale`` and ``keep_stats``, into output positions: the
kept input columns in input order, then, with ``keep_stats``, a center and a
scale column per group (each only when the option is not None). Every backend
(numpy, numba, sparse, Array API) writes its output by this layout, and the
inverse reads it back by the same layout.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GroupSpec:
    """Which columns are normalized together, and what happens to the rest.

    Attributes
    ----------
    n_features : int
        Number of input columns.
    names : tuple of str
        One name per group (used for the kept statistics' column names).
    indices : tuple of ndarray of int
        The input columns of each group.
    keep : ndarray of int
        The input columns that appear in the output, in input order (the group
        columns plus, with ``remainder="passthrough"``, the others).
    """

    n_features: int
    names: tuple
    indices: tuple
    keep: np.ndarray

    @classmethod
    def single(cls, n_features, name="sample"):
        cols = np.arange(n_features)
        return cls(n_features, (name,), (cols,), cols)

    def keeping_all(self):
        """The same groups with every column kept (the affine fit's view)."""
        cols = np.arange(self.n_features)
        return GroupSpec(self.n_features, self.names, self.indices, cols)

    def __getstate__(self):
        # Layouts cached by Layout.of are not part of the fitted state.
        state = dict(self.__dict__)
        state.pop("_layouts", None)
        return state

    @property
    def in_group(self):
        """Boolean mask of the input columns that belong to some group."""
        mask = np.zeros(self.n_features, dtype=bool)
        for idx in self.indices:
            mask[idx] = True
        return mask


def stat_names(spec, center, scale):
    """Column names of the kept statistics, in output order."""
    names = []
    for name in spec.names:
        if center is not None:
            names.append(f"{name}_center")
        if scale is not None:
            names.append(f"{name}_scale")
    return names


def _as_slice(idx):
    """``idx`` as a slice when its columns are contiguous, else unchanged."""
    if idx.size and idx[-1] - idx[0] == idx.size - 1:
        if idx.size < 3 or bool((np.diff(idx) == 1).all()):
            return slice(int(idx[0]), int(idx[0]) + idx.size)
    return idx


class Layout:
    """Where each group's columns are in the input and in the output.

    Attributes
    ----------
    n_groups, n_stats, n_out : int
        Groups; kept statistics per group (0 without ``keep_stats``); output
        columns.
    in_cols, out_cols : list
        Per group, its input and output columns: a slice when contiguous,
        else an index array.
    stat_cols : list of (int or None, int or None)
        Per group, the output columns of the kept center and scale.
    keep : ndarray of int
        The input columns that appear in the output, in order.
    keep_all : bool
        Whether every input column is in the output (nothing dropped).
    other : ndarray of int
        Input columns in no group (checked for inf: they have no statistic).
    rest_in, rest_out : ndarray of int
        Passthrough columns: where they are in the input and in the output.
    col_group : ndarray of int
        The group of each input column, -1 for columns in no group.
    """

    _EMPTY = np.empty(0, dtype=np.intp)

    @classmethod
    def of(cls, spec, center, scale, keep_stats):
        """The layout of ``spec``, kept on the spec for the next calls (an
        estimator's spec is reused across transform calls, and building its
        layout is a fifth of the engine's time on a call of 100 rows). Treat
        it as read-only."""
        layouts = spec.__dict__.setdefault("_layouts", {})
        key = (center, scale, bool(keep_stats))
        layout = layouts.get(key)
        if layout is None:
            layout = layouts[key] = cls(spec, center, scale, keep_stats)
        return layout

    def __init__(self, spec, center, scale, keep_stats):
        keep = np.asarray(spec.keep)
        p = spec.n_features
        self.spec = spec
        self.keep = keep
        self.n_groups = len(spec.indices)
        self.keep_all = keep.size == p
        self.n_stats = (center is not None) + (scale is not None) if keep_stats else 0
        self.n_out = keep.size + self.n_stats * self.n_groups
        self.stat_cols = []
        for g in range(self.n_groups):
            base = keep.size + g * self.n_stats
            c_col = base if (self.n_stats and center is not None) else None
            s_col = None
            if self.n_stats and scale is not None:
                s_col = base + (center is not None)
            self.stat_cols.append((c_col, s_col))
        # The common case, one group of all columns, without index arrays.
        whole = (
            self.n_groups == 1
            and self.keep_all
            and spec.indices[0].size == p
            and p > 0
            and isinstance(_as_slice(spec.indices[0]), slice)
            and spec.indices[0][0] == 0
        )
        if whole:
            self.in_cols = self.out_cols = [slice(0, p)]
            self.other = self.rest_in = self.rest_out = self._EMPTY
            self._col_group = None
            return
        self.in_cols = [_as_slice(idx) for idx in spec.indices]
        self.out_cols = []
        for cols in self.in_cols:
            if isinstance(cols, slice):
                lo = int(np.searchsorted(keep, cols.start))
                self.out_cols.append(slice(lo, lo + cols.stop - cols.start))
            else:
                self.out_cols.append(np.searchsorted(keep, cols))
        col_group = np.full(p, -1, dtype=np.intp)
        for g, idx in enumerate(spec.indices):
            col_group[idx] = g
        self._col_group = col_group
        self.other = np.flatnonzero(col_group < 0)
        self.rest_in = np.intersect1d(self.other, keep)
        self.rest_out = np.searchsorted(keep, self.rest_in)

    @property
    def col_group(self):
        if self._col_group is None:
            return np.zeros(self.spec.n_features, dtype=np.intp)
        return self._col_group

    @property
    def in_group(self):
        return self.col_group >= 0

    def stat_order(self, center, scale):
        """``(g, which)`` of each kept statistic column, in output order."""
        out = []
        for g in range(self.n_groups):
            if center is not None:
                out.append((g, "center"))
            if scale is not None:
                out.append((g, "scale"))
        return out

    def numba_arrays(self):
        """The layout as int64 arrays for :func:`sknorm._numba.normalize`."""
        arrays = self.__dict__.get("_numba_arrays")
        if arrays is None:
            arrays = self.__dict__["_numba_arrays"] = self._make_numba_arrays()
        return arrays

    def _make_numba_arrays(self):
        i64 = np.int64
        return (
            np.array([c.start for c in self.in_cols], dtype=i64),
            np.array([c.stop for c in self.in_cols], dtype=i64),
            np.array([c.start for c in self.out_cols], dtype=i64),
            np.array([-1 if c is None else c for c, _ in self.stat_cols], dtype=i64),
            np.array([-1 if s is None else s for _, s in self.stat_cols], dtype=i64),
            self.other.astype(i64),
            self.rest_in.astype(i64),
            self.rest_out.astype(i64),
        )
