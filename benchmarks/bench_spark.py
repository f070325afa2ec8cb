"""sknorm.spark.transform against the data-movement floor of mapInPandas.

On a local Spark session, a cached 200,000 x 32 float64 DataFrame is
normalized by ``sknorm.spark.transform`` with a fitted
``LayerNormalizer(affine=True, keep_stats=True)``, and, as the baseline, passed
through a ``mapInPandas`` that returns its input: the cost of moving the rows
from the JVM to the Python workers and back through Arrow, which any
pandas-based transform pays. Both are run to completion into Spark's ``noop``
sink (nothing is collected or stored); each time is the minimum over repeats
interleaved between the two, and the script prints their ratio. It also times
``sknorm.spark.fit`` and checks that the Spark output equals the in-memory
transform::

    python benchmarks/bench_spark.py                  # about a minute
    python benchmarks/bench_spark.py --rows 1000000 --cores 4

It needs ``pip install sknorm[spark]`` and Java 17 or later.
"""

import argparse
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sknorm import LayerNormalizer  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    # Workers must run this interpreter (sknorm, pandas and pyarrow in it).
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    # PySpark 4.3 warns that it does not fully support pandas 3.
    warnings.filterwarnings("ignore", "PySpark does not yet", FutureWarning)
    from pyspark.sql import SparkSession

    from sknorm.spark import fit, transform

    spark = (
        SparkSession.builder.master(f"local[{args.cores}]")
        .appName("sknorm-bench")
        .config("spark.driver.memory", "2g")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")

    rng = np.random.default_rng(0)
    n, p = args.rows, args.features
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 5, (n, 1)) + rng.normal(
        0, 50, (n, 1)
    )
    cols = [f"x{j}" for j in range(p)]
    frame = pd.DataFrame(X, columns=cols)
    sdf = spark.createDataFrame(frame).cache()
    sdf.count()  # both measurements read the cached rows
    print(
        f"{n} x {p} float64 ({X.nbytes / 2**20:.0f} MiB), {sdf.rdd.getNumPartitions()} "
        f"partitions, local[{args.cores}], pyspark {spark.version}"
    )

    def identity(batches):
        yield from batches

    def run_identity():
        sdf.mapInPandas(identity, sdf.schema).write.format("noop").mode(
            "overwrite"
        ).save()

    run_identity()  # starts the Python workers, so the fit is not timing that
    est = LayerNormalizer(affine=True, keep_stats=True)
    start = time.perf_counter()
    fitted = fit(est, sdf, cols)
    fit_time = time.perf_counter() - start
    ref = LayerNormalizer(affine=True, keep_stats=True).fit(frame)
    gain_err = np.max(np.abs(fitted.gain_ - ref.gain_) / np.abs(ref.gain_))

    def run_transform():
        transform(fitted, sdf).write.format("noop").mode("overwrite").save()

    run_transform()  # warm up
    times = {"identity": [], "transform": []}
    for _ in range(args.repeats):
        for name, run in (("identity", run_identity), ("transform", run_transform)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    floor, ours = min(times["identity"]), min(times["transform"])

    head = frame.iloc[:2000]
    out = transform(fitted, spark.createDataFrame(head)).toPandas()
    exact = np.array_equal(out.to_numpy(), fitted.transform(head))

    print(f"fit (affine, keep_stats):          {fit_time:7.2f} s")
    print(f"  max relative gain_ error vs in-memory fit: {gain_err:.1e}")
    print(f"mapInPandas identity (floor):      {floor:7.2f} s")
    print(f"sknorm.spark.transform:            {ours:7.2f} s")
    print(f"ratio transform / floor:           {ours / floor:7.2f}")
    print(f"transform equals in memory (first 2000 rows): {exact}")
    spark.stop()


if __name__ == "__main__":
    main()
