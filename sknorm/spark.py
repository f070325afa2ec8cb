"""Fit and transform sknorm estimators on Spark DataFrames.

The Spark twin of :mod:`sknorm.dask`, for the same two reasons: per-sample
normalization is row-local, and what ``fit`` learns is a sum over the rows.

* :func:`fit` runs one ``partial_fit`` per Arrow batch inside every partition
  (``DataFrame.mapInPandas``), sends each partition's fit (a few vectors of
  length ``n_features``) to the driver and merges them there with the
  estimators' :meth:`merge`. The result is an ordinary, in-memory estimator
  equal (up to rounding) to one ``fit`` on the collected rows.
* :func:`transform` and :func:`inverse_transform` are lazy: they return a Spark
  DataFrame computed batch by batch by ``mapInPandas``, with the columns of
  ``get_feature_names_out`` typed from the input (``float`` stays ``float``,
  else ``double``), and the columns named in ``keep`` passed through.

Only the DataFrame API is used (no RDDs), so it also runs over Spark Connect.
Install with ``pip install sknorm[spark]`` (PySpark and PyArrow); without
them this module imports, and its functions raise an ImportError that says so.

What Spark changes, and how this module handles it (the user guide's
"Scaling" page has the details):

* Missing values: Spark keeps a NaN that pandas hands it as null, and null
  reaches the workers as NaN. Both are missing values, ignored in a row's
  statistics as in memory; missing outputs come back as null.
* Column names with dots (``"a.b"``) are renamed internally and restored.
* The estimator sees each batch as a pandas DataFrame with the columns in the
  order it was fitted on, selected by name (an estimator fitted without
  names gets a NumPy array of ``cols``, in that order).
* sknorm runs with ``n_threads=1`` in each task (Spark already runs one task
  per core) and with the driver's engine setting, unless told otherwise.
* Workers run ``$PYSPARK_PYTHON`` (else the first ``python3`` on the PATH),
  which must have sknorm, pandas and pyarrow installed.

Example (see the user guide's "Scaling" page for more)::

    from sknorm import LayerNormalizer
    from sknorm.spark import fit, transform

    sdf = spark.read.parquet("measurements/")
    cols = [c for c in sdf.columns if c.startswith("m_")]
    ln = fit(LayerNormalizer(affine=True, keep_stats=True), sdf, cols)
    out = transform(ln, sdf, keep=["id"])    # lazy Spark DataFrame
    out.write.parquet("normalized/")
"""

import pickle

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from . import _partitioned
from ._config import config_context, get_config

__all__ = ["fit", "inverse_transform", "transform"]

# Internal column names: Spark cannot map columns with dots in their names.
_IN, _KEEP, _OUT, _WEIGHT = "_sknorm_x{}", "_sknorm_k{}", "_sknorm_y{}", "_sknorm_w"


def _spark():
    """PySpark's DataFrame, functions and types modules, or an ImportError."""
    try:
        import pyarrow  # noqa: F401  (mapInPandas needs it on every worker)
        from pyspark.sql import DataFrame
        from pyspark.sql import functions as F
        from pyspark.sql import types as T
    except ImportError as exc:
        raise ImportError(
            "sknorm.spark needs PySpark and PyArrow: pip install sknorm[spark] "
            "(or: pip install pyspark pyarrow)."
        ) from exc
    return DataFrame, F, T


# -- fit --------------------------------------------------------------------------
def fit(
    estimator,
    sdf,
    cols=None,
    *,
    sample_weight_col=None,
    batch_size=None,
    n_threads=1,
):
    """Fit a sknorm estimator on a Spark DataFrame, batch by batch.

    Inside every partition, a clone of ``estimator`` is updated by
    ``partial_fit`` on each Arrow batch of rows (``DataFrame.mapInPandas``);
    each partition sends its fit (the number of samples seen and, with
    ``affine=True``, a few vectors of length ``n_features``) to the driver,
    which merges them with :meth:`~sknorm.LayerNormalizer.merge`. The result
    equals ``clone(estimator).fit(sdf.select(cols).toPandas())`` up to
    rounding, without collecting the rows. Empty partitions are skipped.

    Parameters
    ----------
    estimator : LayerNormalizer, RMSNormalizer or GroupNormalizer
        The (unfitted) estimator; it is cloned, not modified.
    sdf : pyspark.sql.DataFrame
        The data, one sample per row.
    cols : list of str, default=None
        The numeric feature columns, in the order the estimator takes them.
        None: every column but ``sample_weight_col``. The fitted estimator's
        ``feature_names_in_`` are these names.
    sample_weight_col : str, default=None
        The column of sample weights for the affine regression (no nulls).
    batch_size : int, default=None
        The most rows sknorm processes at once: each Arrow batch is cut into
        slices of at most this many rows. The Arrow batches themselves have
        ``spark.sql.execution.arrow.maxRecordsPerBatch`` rows (10,000 by
        default); lower that session setting for very wide rows.
    n_threads : int or None, default=1
        Threads sknorm may use in each Spark task. 1 because Spark already
        runs one task per core; None for every CPU the worker may use.

    Returns
    -------
    fitted : estimator
        A fitted clone of ``estimator``: an ordinary in-memory estimator,
        which :func:`transform` maps over Spark DataFrames.
    """
    _, F, T = _spark()
    _check_args(estimator, sdf, batch_size)
    if sample_weight_col is not None:
        _check_names([sample_weight_col], sdf, "sample_weight_col")
    if cols is None:
        cols = [c for c in sdf.columns if c != sample_weight_col]
    cols = _check_names(cols, sdf, "cols")
    if sample_weight_col in cols:
        raise ValueError(
            f"sample_weight_col={sample_weight_col!r} is also in cols: the "
            "weights cannot be a feature."
        )
    dtypes = _numpy_dtypes(sdf, cols, T)
    if sample_weight_col is not None:
        _numpy_dtypes(sdf, [sample_weight_col], T)
    # Parameters and columns checked on the driver, not in every task.
    template = clone(estimator)
    clone(template).fit(_partitioned.probe_frame(dtypes))
    config = _task_config(n_threads)
    in_names = [_IN.format(i) for i in range(len(cols))]
    selected = [F.col(_quote(c)).alias(n) for c, n in zip(cols, in_names, strict=True)]
    if sample_weight_col is not None:
        selected.append(F.col(_quote(sample_weight_col)).alias(_WEIGHT))
    weighted = sample_weight_col is not None

    def fit_batches(batches):
        est = None
        with config_context(**config):
            for pdf in batches:
                X_all = pdf[in_names].set_axis(cols, axis=1)
                for rows in _partitioned.row_slices(len(pdf), batch_size):
                    X = X_all.iloc[rows]
                    if len(X) == 0:
                        continue
                    w = None
                    if weighted:
                        w = pdf[_WEIGHT].iloc[rows].to_numpy(dtype=np.float64)
                        if np.isnan(w).any():
                            raise ValueError(
                                f"sample_weight_col {sample_weight_col!r} has null "
                                "or NaN values: give every row a weight (or "
                                "filter those rows out)."
                            )
                    est = clone(template) if est is None else est
                    est.partial_fit(X, sample_weight=w)
        if est is not None:
            yield pd.DataFrame({"fit": [pickle.dumps(est)]})

    rows = sdf.select(*selected).mapInPandas(fit_batches, "fit binary").collect()
    fits = [pickle.loads(row[0]) for row in rows]
    return _partitioned.finish(_partitioned.merge_fits(fits))


# -- transform ------------------------------------------------------------------
def transform(estimator, sdf, cols=None, *, keep=None, batch_size=None, n_threads=1):
    """Normalize a Spark DataFrame lazily with a (fitted) sknorm estimator.

    Parameters
    ----------
    estimator : LayerNormalizer, RMSNormalizer or GroupNormalizer
        Fitted (by :func:`fit`, or in memory). A stateless normalizer
        (without ``affine``) may be unfitted.
    sdf : pyspark.sql.DataFrame
        The data, one sample per row.
    cols : list of str, default=None
        The feature columns. None: the columns the estimator was fitted on
        (``feature_names_in_``), else every column not in ``keep``. Columns
        are matched to a fitted estimator by name, in any order; one fitted
        without names takes ``cols`` in order.
    keep : list of str, default=None
        Columns passed through unchanged (ids, labels...), placed first.
    batch_size : int, default=None
        The most rows sknorm processes at once (see :func:`fit`).
    n_threads : int or None, default=1
        Threads sknorm may use in each Spark task (see :func:`fit`).

    Returns
    -------
    sdf_tr : pyspark.sql.DataFrame
        Lazy: the ``keep`` columns, then the columns of
        ``get_feature_names_out`` (for an estimator fitted without names, the
        names of ``cols``), the kept statistics' columns included with
        ``keep_stats=True``. They are ``float`` when every feature column is
        ``float`` (float32), else ``double``; missing values are null.
    """
    return _map(estimator, sdf, cols, keep, "transform", batch_size, n_threads)


def inverse_transform(
    estimator, sdf, cols=None, *, keep=None, batch_size=None, n_threads=1
):
    """Undo :func:`transform` lazily (needs ``keep_stats=True``).

    Parameters
    ----------
    estimator : LayerNormalizer, RMSNormalizer or GroupNormalizer
        The estimator that transformed ``sdf``.
    sdf : pyspark.sql.DataFrame
        Output of :func:`transform`, kept statistics included.
    cols : list of str, default=None
        The transformed columns. None: ``get_feature_names_out()`` of an
        estimator fitted with names, else every column not in ``keep``.
    keep : list of str, default=None
        Columns passed through unchanged, placed first.
    batch_size : int, default=None
        The most rows sknorm processes at once (see :func:`fit`).
    n_threads : int or None, default=1
        Threads sknorm may use in each Spark task (see :func:`fit`).

    Returns
    -------
    sdf_original : pyspark.sql.DataFrame
        Lazy reconstruction of the input: the ``keep`` columns, then the
        columns the estimator was fitted on (for one fitted without names,
        the first ``n_features_in_`` names of ``cols``).
    """
    return _map(estimator, sdf, cols, keep, "inverse_transform", batch_size, n_threads)


def _map(estimator, sdf, cols, keep, method, batch_size, n_threads):
    """The lazy ``mapInPandas`` of ``est.<method>`` over ``sdf``."""
    _, F, T = _spark()
    _check_args(estimator, sdf, batch_size)
    if estimator.__sklearn_tags__().requires_fit or method != "transform":
        check_is_fitted(estimator)  # before any complaint about the columns
    keep = [] if keep is None else _check_names(keep, sdf, "keep")
    cols = _map_columns(estimator, sdf, cols, keep, method)
    dtypes = _numpy_dtypes(sdf, cols, T)
    probe = _partitioned.probe_frame(dtypes)
    est = _partitioned.prepare(estimator, probe, fit_stateless=method == "transform")
    named = hasattr(est, "feature_names_in_")
    n_out, dtype = _partitioned.probe_output(
        est, method, probe if named else probe.to_numpy()
    )
    out_names = _partitioned.output_names(est, method, cols)
    clash = sorted(set(out_names) & set(keep))
    if clash:
        raise ValueError(
            f"Output columns {clash} have the names of columns in keep: rename "
            "those (or leave them out of keep)."
        )
    config = _task_config(n_threads)
    in_names = [_IN.format(i) for i in range(len(cols))]
    keep_names = [_KEEP.format(i) for i in range(len(keep))]
    out_internal = [_OUT.format(i) for i in range(n_out)]
    out_type = T.FloatType() if dtype == np.float32 else T.DoubleType()
    schema = T.StructType(
        [
            T.StructField(k, sdf.schema[c].dataType, sdf.schema[c].nullable)
            for k, c in zip(keep_names, keep, strict=True)
        ]
        + [T.StructField(n, out_type, True) for n in out_internal]
    )

    def map_batches(batches):
        with config_context(**config):
            for pdf in batches:
                for rows in _partitioned.row_slices(len(pdf), batch_size):
                    part = pdf.iloc[rows]
                    if len(part) == 0:
                        continue
                    X = part[in_names]
                    X = X.set_axis(cols, axis=1) if named else X.to_numpy()
                    Z = getattr(est, method)(X)
                    out = pd.DataFrame(Z, columns=out_internal, index=part.index)
                    if keep_names:
                        out = pd.concat([part[keep_names], out], axis=1)
                    yield out

    selected = [
        F.col(_quote(c)).alias(n)
        for c, n in zip(keep + cols, keep_names + in_names, strict=True)
    ]
    mapped = sdf.select(*selected).mapInPandas(map_batches, schema)
    return mapped.select(
        *[
            F.col(n).alias(c)
            for n, c in zip(keep_names + out_internal, keep + out_names, strict=True)
        ]
    )


# -- inputs -------------------------------------------------------------------------
def _check_args(estimator, sdf, batch_size):
    DataFrame, _, _ = _spark()
    _partitioned.check_estimator(estimator, "spark")
    if not isinstance(sdf, DataFrame):
        raise TypeError(
            f"Expected a pyspark.sql.DataFrame, got {type(sdf).__name__}; call the "
            "estimator's own methods on in-memory data."
        )
    _partitioned.check_batch_size(batch_size)


def _quote(name):
    """A column reference that takes the name literally (dots and all)."""
    return "`" + name.replace("`", "``") + "`"


def _check_names(names, sdf, what):
    """``names`` as a list of distinct column names of ``sdf``."""
    if isinstance(names, str):
        names = [names]
    names = list(names)
    bad = [n for n in names if not isinstance(n, str)]
    if bad:
        raise TypeError(f"{what} must be column names (str), got {bad!r}.")
    missing = [n for n in names if n not in sdf.columns]
    if missing:
        raise ValueError(
            f"{what} names columns that the DataFrame does not have: {missing}; "
            f"it has {sdf.columns}."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"{what} names some columns twice: {names}.")
    return names


def _map_columns(estimator, sdf, cols, keep, method):
    """The feature columns, in the order the estimator takes them."""
    fitted = hasattr(estimator, "n_samples_seen_")
    names = _partitioned.input_names(estimator, method) if fitted else None
    if cols is None:
        cols = names if names is not None else [c for c in sdf.columns if c not in keep]
    cols = _check_names(cols, sdf, "cols")
    if names is not None:
        if sorted(cols) != sorted(names):
            raise ValueError(
                f"The estimator was fitted to take the columns {names}, but cols "
                f"is {cols}: pass those columns (in any order; they are matched "
                "by name)."
            )
        return names  # aligned by name
    if fitted:
        if method == "transform":
            n = estimator.n_features_in_
        else:
            n = len(estimator.get_feature_names_out())
        if len(cols) != n:
            raise ValueError(
                f"The estimator was fitted without column names and takes {n} "
                f"columns, but {len(cols)} were selected ({cols}): pass cols= "
                "with its columns in the order it was fitted on, and keep= for "
                "the others."
            )
    both = sorted(set(cols) & set(keep))
    if both:
        raise ValueError(f"Columns {both} are in both cols and keep.")
    return cols


def _numpy_dtypes(sdf, cols, T):
    """The pandas dtype each numeric column has in the workers' batches."""
    numpy_of = {
        T.DoubleType: np.float64,
        T.FloatType: np.float32,
        T.LongType: np.int64,
        T.IntegerType: np.int32,
        T.ShortType: np.int16,
        T.ByteType: np.int8,
    }
    dtypes, bad = {}, []
    for c in cols:
        spark_type = sdf.schema[c].dataType
        dtype = numpy_of.get(type(spark_type))
        if dtype is None:
            bad.append(f"{c} ({spark_type.simpleString()})")
        dtypes[c] = dtype
    if bad:
        raise TypeError(
            f"Columns {bad} are not float, double or integer columns. Pass "
            "the numeric feature columns as cols= (and others as keep=), or "
            "cast them: sdf.withColumn(name, sdf[name].cast('double'))."
        )
    return dtypes


def _task_config(n_threads):
    """sknorm's configuration inside every task: the driver's, with n_threads."""
    config = get_config()
    config["n_threads"] = "all" if n_threads is None else n_threads
    with config_context(**config):  # checked here, not in every task
        pass
    return config
