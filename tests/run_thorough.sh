#!/usr/bin/env bash
# Long runs of the property (hypothesis) and differential suites, on every
# backend installed here (numpy and numba engines, array_api_strict, torch CPU,
# sknorm.dask, sparse). Not part of CI (which runs the deterministic "ci"
# profile); run it before a release or after touching the numerics:
#
#   bash tests/run_thorough.sh                 # about an hour on 2 cores
#   bash tests/run_thorough.sh -x -k layer     # extra pytest arguments pass through
#   SKNORM_HYPOTHESIS_PROFILE=dev bash tests/run_thorough.sh   # a shorter random run
#
# The "thorough" hypothesis profile (tests/conftest.py) draws 3000 random
# examples per property (a new sample on every run; failures are replayed from
# the local .hypothesis database); SKNORM_DIFF_THOROUGH=1 adds random rows over
# the whole float range, more eps values and every configuration on every Dask
# layout to tests/test_differential.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export SKNORM_HYPOTHESIS_PROFILE="${SKNORM_HYPOTHESIS_PROFILE:-thorough}"
export SKNORM_DIFF_THOROUGH=1
python -m pytest -q tests/test_differential.py tests/test_properties.py "$@"
if python -c "import numba" 2>/dev/null; then
    # The whole property suite again with the numba engine forced on.
    SKNORM_ENGINE=numba python -m pytest -q tests/test_properties.py "$@"
fi
