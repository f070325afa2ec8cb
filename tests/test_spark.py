"""sknorm.spark on a real local[2] Spark session (one for the whole module).

Spark fits must equal in-memory fits (<= 1e-12) and Spark transforms must equal
the in-memory transform by the same estimator exactly, for every estimator and
option, with nulls and NaN, float32, kept columns, dotted column names and
empty partitions. The module skips when PySpark or PyArrow is missing
(``pip install sknorm[spark]``; Spark also needs Java 17 or later).
"""

import importlib
import os
import shutil
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler

import sknorm
from sknorm import GroupNormalizer, LayerNormalizer, RMSNormalizer

pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
pytest.importorskip("pyspark")
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

import sknorm.spark as sknorm_spark  # noqa: E402

pytestmark = [
    # PySpark 4.3 warns that it does not fully support pandas 3, and calls a
    # pandas method with the deprecated copy= keyword; both from its own code.
    pytest.mark.filterwarnings(
        "ignore:PySpark does not yet fully support pandas:FutureWarning:pyspark"
    ),
    pytest.mark.filterwarnings(
        "ignore:The copy keyword is deprecated:DeprecationWarning:pyspark"
    ),
]

# A dotted and a back-quoted name: both need quoting (or renaming) in Spark.
FEATURES = ["f.0", "f1", "g`2", "f3", "f4", "f5"]


@pytest.fixture(scope="module")
def spark():
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("Spark needs Java 17 or later (no java on the PATH, no JAVA_HOME)")
    # Workers run $PYSPARK_PYTHON (else the first python3 on the PATH), which
    # must be this interpreter to find sknorm, pandas and pyarrow.
    saved = {k: os.environ.get(k) for k in ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")}
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    session = (
        SparkSession.builder.master("local[2]")
        .appName("sknorm-tests")
        .config("spark.driver.memory", "1g")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.adaptive.enabled", "false")
        # Any UserWarning inside a worker (scikit-learn's feature-name
        # warnings among them) fails the task, and so the test.
        .config("spark.executorEnv.PYTHONWARNINGS", "error::UserWarning")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _frame(n_samples=50, dtype="float64", seed=0):
    """An id column, 6 features with NaN (null in Spark) and a constant row, and
    sample weights ``w``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, 6)) * rng.uniform(0.5, 3, (n_samples, 1))
    X += rng.normal(scale=20, size=(n_samples, 1))
    X[5, 1] = np.nan
    X[7, 4] = np.nan
    X[9, :] = 4.0
    frame = pd.DataFrame(X.astype(dtype), columns=FEATURES)
    frame.insert(0, "id", np.arange(n_samples))
    frame["w"] = rng.uniform(0, 2, size=n_samples)
    return frame


def _to_spark(spark, frame):
    """The rows hashed into 5 partitions by id // 20: at least 2 stay empty
    (adaptive execution, which would coalesce them, is off in the session)."""
    sdf = spark.createDataFrame(frame)
    return sdf.repartition(5, F.floor(F.col("id") / 20))


@pytest.fixture(scope="module")
def data(spark):
    """The default frame and its Spark twin, cached: every job reads the same
    5 partitions (2 of them empty) without redoing the shuffle."""
    frame = _frame()
    sdf = _to_spark(spark, frame).cache()
    sdf.count()
    yield frame, sdf
    sdf.unpersist()


def _collect(sdf):
    """The rows of ``sdf`` as a pandas DataFrame in id order (null -> NaN)."""
    return sdf.toPandas().sort_values("id").reset_index(drop=True)


def _assert_fits_equal(fitted, ref):
    assert fitted.n_samples_seen_ == ref.n_samples_seen_
    assert_array_equal(fitted.feature_names_in_, ref.feature_names_in_)
    if ref.affine:
        assert_allclose(fitted.gain_, ref.gain_, rtol=1e-12, atol=1e-12)
        assert_allclose(fitted.bias_, ref.bias_, rtol=1e-12, atol=1e-12)


ESTIMATORS = [
    LayerNormalizer(),
    LayerNormalizer(affine=True, keep_stats=True),
    LayerNormalizer(center="median", scale="iqr", affine=True, keep_stats=True),
    LayerNormalizer(center=None, scale="mad", eps=0.0, keep_stats=True),
    LayerNormalizer(scale=None, affine=True),
    RMSNormalizer(affine=True, keep_stats=True),
    GroupNormalizer(
        {"a": ["f.0", "g`2"], "b": ["f1", "f4", "f5"]}, affine=True, keep_stats=True
    ),
    GroupNormalizer(groups=2, remainder="drop", keep_stats=True),
    GroupNormalizer(groups=[[0, 1, 2]], scale="mad", affine=True),
]


def test_empty_partitions_are_there(data):
    """The test data's layout: every test below runs over empty partitions."""

    def sizes(batches):
        yield pd.DataFrame({"n": [sum(len(b) for b in batches)]})

    _, sdf = data
    # Spark's own mapInPandas fails on the names with dots or back-quotes
    # (sknorm.spark renames them): count the rows of the id column only.
    with pytest.raises(Exception, match="INVALID_ATTRIBUTE_NAME_SYNTAX"):
        sdf.mapInPandas(sizes, "n long")
    n = [r.n for r in sdf.select("id").mapInPandas(sizes, "n long").collect()]
    assert len(n) == 5 and sum(n) == 50 and n.count(0) >= 2


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
def test_fit_and_transform_equal_in_memory(data, estimator):
    frame, sdf = data
    fitted = sknorm_spark.fit(estimator, sdf, FEATURES)
    assert not hasattr(estimator, "n_samples_seen_")  # cloned, not modified
    _assert_fits_equal(fitted, clone(estimator).fit(frame[FEATURES]))

    out = sknorm_spark.transform(fitted, sdf, keep=["id"])
    names = list(fitted.get_feature_names_out())
    assert out.columns == ["id", *names]
    assert [f.dataType for f in out.schema] == [T.LongType()] + [T.DoubleType()] * len(
        names
    )
    got = _collect(out)
    assert_array_equal(got["id"], frame["id"])
    # The same estimator in memory: the same numbers, NaN where Spark has null.
    assert_array_equal(got[names].to_numpy(), fitted.transform(frame[FEATURES]))


def test_float32_stays_float32(spark):
    frame = _frame(dtype="float32")
    sdf = _to_spark(spark, frame)
    assert {f.dataType for f in sdf.schema if f.name in FEATURES} == {T.FloatType()}
    est = LayerNormalizer(affine=True, keep_stats=True)
    fitted = sknorm_spark.fit(est, sdf, FEATURES)
    _assert_fits_equal(fitted, clone(est).fit(frame[FEATURES]))
    out = sknorm_spark.transform(fitted, sdf, keep=["id"])
    assert {f.dataType for f in out.schema if f.name != "id"} == {T.FloatType()}
    got = _collect(out).drop(columns="id").to_numpy()
    expected = fitted.transform(frame[FEATURES])
    assert expected.dtype == got.dtype == np.float32
    assert_array_equal(got, expected)
    # One double column makes the output double, as in memory.
    mixed = sdf.withColumn("f1", F.col("f1").cast("double"))
    out = sknorm_spark.transform(fitted, mixed, keep=["id"])
    assert {f.dataType for f in out.schema if f.name != "id"} == {T.DoubleType()}


def _count_nan_and_null(sdf, cols):
    """Per column: how many NaN and how many null (one Spark job)."""
    counts = [F.sum(F.isnan(F.col(c)).cast("int")) for c in cols]
    counts += [F.sum(F.col(c).isNull().cast("int")) for c in cols]
    row = sdf.select(*counts).first()
    return list(row[: len(cols)]), list(row[len(cols) :])


def test_null_and_nan_are_missing_and_come_back_as_null(data):
    frame, sdf = data
    # Row 3: a genuine Spark NaN, beside the nulls that pandas' NaN became.
    sdf = sdf.withColumn(
        "f3", F.when(F.col("id") == 3, F.lit(float("nan"))).otherwise(F.col("f3"))
    )
    assert _count_nan_and_null(sdf, ["f1", "f3"]) == ([0, 1], [1, 0])
    frame = frame.copy()
    frame.loc[3, "f3"] = np.nan
    est = LayerNormalizer(affine=True, keep_stats=True)
    fitted = sknorm_spark.fit(est, sdf, FEATURES)
    _assert_fits_equal(fitted, clone(est).fit(frame[FEATURES]))
    out = sknorm_spark.transform(fitted, sdf, keep=["id"])
    # Missing in, missing out: null, never NaN.
    assert _count_nan_and_null(out, ["f1", "f3"]) == ([0, 0], [1, 1])
    got = _collect(out)
    expected = fitted.transform(frame[FEATURES])
    assert_array_equal(got.drop(columns="id").to_numpy(), expected)
    assert np.isnan(got.loc[[3, 5], ["f3", "f1"]].to_numpy()).sum() == 2


def test_sample_weight_col(data):
    frame, sdf = data
    est = GroupNormalizer(groups=2, affine=True)
    fitted = sknorm_spark.fit(est, sdf, FEATURES, sample_weight_col="w")
    ref = clone(est).fit(frame[FEATURES], sample_weight=frame["w"])
    _assert_fits_equal(fitted, ref)
    # cols=None: every column but the weights (id included here).
    fitted = sknorm_spark.fit(est, sdf.drop("id"), sample_weight_col="w")
    _assert_fits_equal(fitted, ref)
    with pytest.raises(ValueError, match="weights cannot be a feature"):
        sknorm_spark.fit(est, sdf, ["w", "f1"], sample_weight_col="w")
    nulls = sdf.withColumn("w", F.when(F.col("id") == 4, None).otherwise(F.col("w")))
    with pytest.raises(Exception, match="null or NaN values"):
        sknorm_spark.fit(est, nulls, FEATURES, sample_weight_col="w")


def test_small_batches_and_threads(spark, data):
    """Many Arrow batches per partition, each cut further by batch_size."""
    frame, sdf = data
    est = GroupNormalizer(groups=[[0, 2], [1, 4, 5]], affine=True, keep_stats=True)
    old = spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", "7")
    try:
        fitted = sknorm_spark.fit(est, sdf, FEATURES, batch_size=3, n_threads=None)
        _assert_fits_equal(fitted, clone(est).fit(frame[FEATURES]))
        out = sknorm_spark.transform(fitted, sdf, keep=["id"], batch_size=4)
        got = _collect(out).drop(columns="id").to_numpy()
    finally:
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", old)
    assert_array_equal(got, fitted.transform(frame[FEATURES]))
    for bad, error in [(0, ValueError), (2.5, TypeError), (True, TypeError)]:
        with pytest.raises(error, match="batch_size"):
            sknorm_spark.transform(fitted, sdf, batch_size=bad)
    with pytest.raises(ValueError, match="n_threads"):
        sknorm_spark.fit(est, sdf, FEATURES, n_threads=0)


def test_inverse_transform_round_trip(data):
    frame, sdf = data
    est = GroupNormalizer(groups=3, affine=True, keep_stats=True)
    fitted = sknorm_spark.fit(est, sdf, FEATURES)
    out = sknorm_spark.transform(fitted, sdf, keep=["id"])
    back = sknorm_spark.inverse_transform(fitted, out, keep=["id"])
    assert back.columns == ["id", *FEATURES]
    got = _collect(back).drop(columns="id").to_numpy()
    assert_array_equal(got, fitted.inverse_transform(fitted.transform(frame[FEATURES])))
    assert_allclose(got, frame[FEATURES].to_numpy(), rtol=1e-10)


def test_columns_are_aligned_by_name(data):
    """Reordered or extra columns, and an estimator fitted without names; a
    feature-name warning inside the workers would fail the job (fixture)."""
    frame, sdf = data
    order = ["f5", "id", "f1", "g``2", "f.0", "f4", "f3"]
    shuffled = sdf.select(*[F.col(f"`{c}`") for c in order])
    fitted = LayerNormalizer(affine=True, keep_stats=True).fit(frame[FEATURES])
    expected = fitted.transform(frame[FEATURES])
    for cols in (None, FEATURES[::-1]):
        out = sknorm_spark.transform(fitted, shuffled, cols, keep=["id"])
        assert out.columns == ["id", *fitted.get_feature_names_out()]
        assert_array_equal(_collect(out).drop(columns="id").to_numpy(), expected)
    # Fitted on NumPy: takes cols in order; the output is named after them,
    # and so is the inverse's (the first n_features_in_ columns it takes).
    X = frame[FEATURES].to_numpy()
    on_numpy = LayerNormalizer(affine=True, keep_stats=True).fit(X)
    out = sknorm_spark.transform(on_numpy, shuffled, FEATURES, keep=["id"])
    names = [*FEATURES, "sample_center", "sample_scale"]
    assert out.columns == ["id", *names]
    back = sknorm_spark.inverse_transform(on_numpy, out, names, keep=["id"])
    assert back.columns == ["id", *FEATURES]
    assert_array_equal(
        _collect(back).drop(columns="id").to_numpy(),
        on_numpy.inverse_transform(on_numpy.transform(X)),
    )
    with pytest.raises(ValueError, match="fitted without column names"):
        sknorm_spark.transform(on_numpy, shuffled, keep=["id", "f5"])
    with pytest.raises(ValueError, match="fitted to take the columns"):
        sknorm_spark.transform(fitted, shuffled, ["f1", "f3"])


def test_stateless_estimator_needs_no_fit_and_transform_is_lazy(data):
    frame, sdf = data
    # Kept columns of any type pass through: a string, a timestamp, an array.
    label = F.concat(F.lit("row "), F.col("id").cast("string"))
    stamp = F.timestamp_seconds(F.lit(1_700_000_000) + F.col("id"))
    sdf = sdf.select(
        "*", label.alias("label"), stamp.alias("when"), F.array("id", "id").alias("a")
    )
    keep = ["id", "label", "when", "a", "w"]
    out = sknorm_spark.transform(RMSNormalizer(keep_stats=True), sdf, keep=keep)
    assert out.columns == [*keep, *FEATURES, "sample_scale"]
    assert [f.dataType for f in out.schema][:5] == [
        f.dataType for f in sdf.select(keep).schema
    ]
    got = _collect(out)
    expected_kept = _collect(sdf.select(keep))
    for c in keep:
        plain = [np.asarray(v).tolist() for v in got[c]]  # arrays as lists
        assert plain == [np.asarray(v).tolist() for v in expected_kept[c]]
    expected = RMSNormalizer(keep_stats=True).fit_transform(frame[FEATURES])
    assert_array_equal(got.drop(columns=keep).to_numpy(), expected)
    with pytest.raises(NotFittedError):
        sknorm_spark.transform(LayerNormalizer(affine=True), sdf, keep=["id"])

    # Lazy: nothing runs until an action; a failing input fails only then.
    def fail(batches):
        for _ in batches:
            raise RuntimeError("input computed")
        yield from ()

    schema = "id long, f1 double, f3 double"
    broken = sdf.select("id", "f1", "f3").mapInPandas(fail, schema)
    out = sknorm_spark.transform(LayerNormalizer(), broken, keep=["id"])
    assert out.columns == ["id", "f1", "f3"]
    with pytest.raises(Exception, match="input computed"):
        out.collect()


def test_errors(spark):
    frame = _frame(n_samples=12).assign(name="x")
    sdf = spark.createDataFrame(frame)
    fitted = LayerNormalizer(keep_stats=True).fit(frame[FEATURES])
    with pytest.raises(TypeError, match="sknorm estimators"):
        sknorm_spark.fit(StandardScaler(), sdf)
    with pytest.raises(TypeError, match="pyspark.sql.DataFrame"):
        sknorm_spark.transform(fitted, frame)
    with pytest.raises(ValueError, match="does not have.*'nope'"):
        sknorm_spark.fit(LayerNormalizer(), sdf, ["f1", "nope"])
    with pytest.raises(ValueError, match="twice"):
        sknorm_spark.fit(LayerNormalizer(), sdf, ["f1", "f1"])
    with pytest.raises(TypeError, match=r"name \(string\).*cast"):
        sknorm_spark.fit(LayerNormalizer(), sdf)
    with pytest.raises(TypeError, match=r"name \(string\)"):
        sknorm_spark.transform(LayerNormalizer(), sdf.drop("id"))
    with pytest.raises(ValueError, match="both cols and keep"):
        sknorm_spark.transform(LayerNormalizer(), sdf, ["f1", "f3"], keep=["f1"])
    clash = sdf.withColumnRenamed("name", "sample_center")
    with pytest.raises(ValueError, match=r"\['sample_center'\].*keep"):
        sknorm_spark.transform(fitted, clash, keep=["sample_center"])
    with pytest.raises(ValueError, match="0 sample"):
        sknorm_spark.fit(LayerNormalizer(), sdf.filter(F.col("id") < 0), FEATURES)
    with pytest.raises(AttributeError, match="keep_stats"):
        sknorm_spark.inverse_transform(LayerNormalizer().fit(frame[FEATURES]), sdf)


def test_missing_pyspark_names_the_extra(monkeypatch):
    """Without PySpark the module imports; its functions say what to install."""
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    monkeypatch.delitem(sys.modules, "sknorm.spark")
    monkeypatch.delattr(sknorm, "spark")
    module = importlib.import_module("sknorm.spark")
    for func in (module.fit, module.transform, module.inverse_transform):
        with pytest.raises(ImportError, match=r"pip install sknorm\[spark\]"):
            func(LayerNormalizer(), None)
