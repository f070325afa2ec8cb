"""Exact, mergeable sufficient statistics of the affine regression.

With ``affine=True`` each output feature is ``gain_ * z + bias_``, where
``gain_`` and ``bias_`` are the weighted least-squares fit of the original
feature on its normalized value. :class:`AffineMoments` keeps what that fit
needs, merged exactly across batches (``partial_fit``, Dask partitions,
threads), whatever backend produced the normalized values.
"""

import numpy as np


class AffineMoments:
    """Exact, mergeable sufficient statistics of per-feature regressions.

    For each feature ``j`` it keeps, over the samples where both are finite,
    the total sample weight ``W``, the weighted means of ``z_j`` and ``x_j``,
    the centered sum of squares of ``z_j`` and the centered cross-product of
    ``z_j`` and ``x_j``. Batches are combined with the pairwise update of Chan,
    Golub & LeVeque (1979), so that any split of the data into batches gives
    the same result as one pass, up to rounding.

    Values too large to square (``|z|`` or ``|x|`` above about ``1e154``: no
    scale, or a robust scale that is ~0 in a row, on data near ``1e300``) are
    kept scaled by per-feature powers of two, ``2**exp_z`` and ``2**exp_x``:
    the stored fields are ``mean_z = E[z] / 2**exp_z``, ``mean_x = E[x] /
    2**exp_x``, ``m2_z = M2_z / 4**exp_z`` and ``c_zx = C_zx / 2**(exp_z +
    exp_x)``. Power-of-two scaling is exact, so the moments stay the same
    sufficient statistics; the exponents are 0 (no scaling) unless a batch's
    or a merge's sums overflow, and only the overflowing features get one.
    """

    def __init__(self, n_features):
        self.weight = np.zeros(n_features)
        self.mean_z = np.zeros(n_features)
        self.mean_x = np.zeros(n_features)
        self.m2_z = np.zeros(n_features)
        self.c_zx = np.zeros(n_features)
        self.exp_z = np.zeros(n_features, dtype=np.int64)
        self.exp_x = np.zeros(n_features, dtype=np.int64)

    def __setstate__(self, state):
        # Moments pickled before the scaled storage have no exponents: all 0.
        self.__dict__.update(state)
        for name in ("exp_z", "exp_x"):
            if name not in state:
                setattr(self, name, np.zeros(np.shape(self.weight), dtype=np.int64))

    @classmethod
    def _from_arrays(cls, weight, mean_z, mean_x, m2_z, c_zx):
        """Unscaled moments (exponents 0) from their five per-feature arrays."""
        new = cls(np.shape(weight)[0])
        new.weight, new.mean_z, new.mean_x = weight, mean_z, mean_x
        new.m2_z, new.c_zx = m2_z, c_zx
        return new

    def _bad(self):
        """Features whose moments overflowed (mask)."""
        bad = ~np.isfinite(self.mean_z) | ~np.isfinite(self.mean_x)
        return bad | ~np.isfinite(self.m2_z) | ~np.isfinite(self.c_zx)

    @classmethod
    def from_batch(cls, x, z, w):
        """Moments of one batch: ``x``, ``z`` of shape (n, p), ``w`` of shape (n,)."""
        x = np.asarray(x, dtype=np.float64)
        z = np.asarray(z, dtype=np.float64)
        w = np.asarray(w, dtype=np.float64)
        new = cls._from_batch_finite(x, z, w)
        if new is None:
            new = cls._from_batch_nan(x, z, w)
        bad = new._bad()
        if bad.any():
            new._set_columns(bad, cls._from_batch_scaled(x[:, bad], z[:, bad], w))
        return new

    @classmethod
    def _from_batch_nan(cls, x, z, w):
        """The moments of a batch that may hold NaN (unscaled, may overflow)."""
        valid = ~(np.isnan(x) | np.isnan(z))
        wv = np.where(valid, w[:, None], 0.0)
        x0 = np.where(valid, x, 0.0)
        z0 = np.where(valid, z, 0.0)
        new = cls(x.shape[1])
        new.weight = wv.sum(axis=0)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            safe = np.where(new.weight > 0, new.weight, 1.0)
            new.mean_z = (wv * z0).sum(axis=0) / safe
            new.mean_x = (wv * x0).sum(axis=0) / safe
            dz = np.where(valid, z0 - new.mean_z, 0.0)
            dx = np.where(valid, x0 - new.mean_x, 0.0)
            new.m2_z = (wv * dz * dz).sum(axis=0)
            new.c_zx = (wv * dz * dx).sum(axis=0)
        return new

    @classmethod
    def _from_batch_scaled(cls, x, z, w):
        """:meth:`_from_batch_nan` on ``x``, ``z`` scaled below 1 in magnitude.

        Each feature is divided by the power of two just above its largest
        finite ``|z|`` (``|x|``), or kept as is when that is below 1, so that
        no sum of squares or cross-products can overflow.
        """
        valid = ~(np.isnan(x) | np.isnan(z))
        exps = []
        for v in (z, x):
            top = np.max(np.where(valid, np.abs(v), 0.0), axis=0, initial=0.0)
            exps.append(np.maximum(np.frexp(top)[1], 0).astype(np.int64))
        exp_z, exp_x = exps
        new = cls._from_batch_nan(np.ldexp(x, -exp_x), np.ldexp(z, -exp_z), w)
        new.exp_z, new.exp_x = exp_z, exp_x
        return new

    def _set_columns(self, mask, other):
        """Replace the moments of the features in ``mask`` by ``other``'s."""
        for name in ("weight", "mean_z", "mean_x", "m2_z", "c_zx", "exp_z", "exp_x"):
            field = getattr(self, name).copy()
            field[mask] = getattr(other, name)
            setattr(self, name, field)

    @classmethod
    def _from_scratch(cls, x, z, w):
        """:meth:`from_batch` that may overwrite ``z`` (scratch, float64).

        None when the sums overflowed after ``z`` was overwritten: the caller
        then computes ``z`` again for :meth:`from_batch` (which rescales).
        """
        if x.dtype == np.float64:
            fast = cls._from_batch_finite(x, z, w, overwrite_z=True)
            if fast is not None:
                return None if fast._bad().any() else fast
        return cls.from_batch(x, z, w)

    @classmethod
    def _from_batch_finite(cls, x, z, w, overwrite_z=False):
        """:meth:`from_batch` for a batch without NaN, or None if it has one.

        Same formulas, as BLAS products with ``w`` and in-place operations on
        two batch-sized temporaries. A NaN in ``x`` is a NaN in ``z``, and any
        NaN in ``z`` makes ``w @ z`` NaN, so that one product detects them (as
        it does an overflowing sum, which :meth:`from_batch` then rescales).
        The moments are unscaled and may overflow (the caller checks).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            sum_z = w @ z
        if not np.isfinite(sum_z).all():
            return None
        new = cls(x.shape[1])
        total = w.sum()
        new.weight = np.full(x.shape[1], total)
        with np.errstate(over="ignore", invalid="ignore"):
            if total > 0:
                new.mean_z = sum_z / total
                new.mean_x = (w @ x) / total
            dz = np.subtract(z, new.mean_z, out=z if overwrite_z else None)
            dx = x - new.mean_x
            dx *= dz
            dz *= dz
            new.m2_z = w @ dz
            new.c_zx = w @ dx
        return new

    def _scaled_to(self, exp_z, exp_x):
        """``(mean_z, mean_x, m2_z, c_zx)`` scaled to exponents ``>=`` own."""
        sz = self.exp_z - exp_z
        sx = self.exp_x - exp_x
        return (
            np.ldexp(self.mean_z, sz),
            np.ldexp(self.mean_x, sx),
            np.ldexp(self.m2_z, 2 * sz),
            np.ldexp(self.c_zx, sz + sx),
        )

    def merge(self, other):
        """Combine with another set of moments in place; returns self.

        Both are first brought to the larger of their exponents (exact, by
        powers of two); where the merged sums overflow, the exponents of those
        features grow until they do not.
        """
        wa, wb = self.weight, other.weight
        w = wa + wb
        safe = np.where(w > 0, w, 1.0)
        frac = wb / safe
        exp_z = np.maximum(self.exp_z, other.exp_z)
        exp_x = np.maximum(self.exp_x, other.exp_x)
        fixable = np.isfinite(w) & ~(self._bad() | other._bad())
        for attempt in range(8):
            with np.errstate(over="ignore", invalid="ignore", under="ignore"):
                mza, mxa, m2a, ca = self._scaled_to(exp_z, exp_x)
                mzb, mxb, m2b, cb = other._scaled_to(exp_z, exp_x)
                dz = mzb - mza
                dx = mxb - mxa
                m2_z = m2a + m2b + dz * dz * wa * frac
                c_zx = ca + cb + dz * dx * wa * frac
                mean_z = mza + dz * frac
                mean_x = mxa + dx * frac
            bad_z = ~(np.isfinite(dz) & np.isfinite(m2_z) & np.isfinite(mean_z))
            bad_x = ~(np.isfinite(dx) & np.isfinite(mean_x))
            bad_c = ~np.isfinite(c_zx)
            bad_z = (bad_z | bad_c) & fixable
            bad_x = (bad_x | bad_c) & fixable
            if not (bad_z.any() or bad_x.any()) or attempt == 7:
                break
            # Scale the means below 1 (at least by 2): then no term overflows.
            top_z = np.maximum(np.abs(mza), np.abs(mzb))
            top_x = np.maximum(np.abs(mxa), np.abs(mxb))
            exp_z = exp_z + np.where(bad_z, np.maximum(np.frexp(top_z)[1], 1), 0)
            exp_x = exp_x + np.where(bad_x, np.maximum(np.frexp(top_x)[1], 1), 0)
        self.m2_z, self.c_zx = m2_z, c_zx
        self.mean_z, self.mean_x = mean_z, mean_x
        self.exp_z, self.exp_x = exp_z, exp_x
        self.weight = w
        return self

    def gain_bias(self, var_tol=1e-12):
        """Least-squares slope and intercept of ``x_j`` on ``z_j``.

        Where the weighted variance of ``z_j`` is ``<= var_tol`` (a constant or
        all-NaN feature, one sample, zero weights) the slope is undefined: the
        fallback is gain 1 and the least-squares intercept for that slope,
        ``mean(x_j) - mean(z_j)`` (bias 0 when there is no finite sample).
        The slope is formed from the scaled moments, so it overflows only when
        the true slope does.
        """
        w = self.weight
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            var_z = np.where(w > 0, self.m2_z / np.where(w > 0, w, 1.0), 0.0)
            ok = np.ldexp(var_z, 2 * self.exp_z) > var_tol
            slope = np.where(ok, self.c_zx / np.where(ok, self.m2_z, 1.0), 1.0)
            gain = np.where(ok, np.ldexp(slope, self.exp_x - self.exp_z), 1.0)
            fitted = np.ldexp(self.mean_x - slope * self.mean_z, self.exp_x)
            fallback = np.ldexp(self.mean_x, self.exp_x) - np.ldexp(
                self.mean_z, self.exp_z
            )
            bias = np.where(ok, fitted, fallback)
        bias = np.where(w > 0, bias, 0.0)
        return gain, bias
