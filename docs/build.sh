#!/usr/bin/env bash
# Build the HTML documentation, executing every example of the gallery.
#
# Usage (from anywhere): bash docs/build.sh [extra sphinx-build options]
# Needs the "docs" extra: python -m pip install -e ".[docs]"
# Output: docs/_build/html/index.html
#
# -W turns every warning into an error (a broken cross-reference, a docstring
# that numpydoc or docutils cannot parse, an example that raises); --keep-going
# reports all of them before failing. The generated folders are removed first so
# that a stale example output or API stub can never hide a failure.
#
# SKNORM_UPDATE_README_FIGURE=1 also copies the gallery figure shown by README.md
# and the docs' front page to docs/_static/readme_figure.png (commit it after).
set -euo pipefail
cd "$(dirname "$0")/.."

rm -rf docs/_build docs/auto_examples docs/generated docs/sg_execution_times.rst
export MPLBACKEND=Agg
start=$(date +%s)
sphinx-build -W --keep-going -b html docs docs/_build/html "$@"
echo "docs built in $(($(date +%s) - start)) s: docs/_build/html/index.html"

if [ "${SKNORM_UPDATE_README_FIGURE:-0}" = "1" ]; then
    cp docs/auto_examples/images/sphx_glr_plot_when_forgetting_helps_002.png \
        docs/_static/readme_figure.png
    echo "updated docs/_static/readme_figure.png"
fi
