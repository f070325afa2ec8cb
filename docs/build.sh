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

# The site must read fully offline: no page may load a script, a style sheet, a
# font or an image from the network (MathJax is served from _static/mathjax by
# the sphinx-mathjax-offline extension). Links a reader clicks are fine.
python - docs/_build/html <<'EOF'
import re
import sys
from pathlib import Path

root = Path(sys.argv[1])
remote = r"""["']?\s*(?:https?:)?//"""
checks = [
    # <script src>, <link href> (style sheets, fonts, preloads), images, frames
    ("*.html", re.compile(rf"<(?:script|link|img|iframe|source)\b[^>]*?\b(?:src|href)=\s*{remote}", re.I)),
    # @import and url(...) in style sheets (web fonts)
    ("*.css", re.compile(rf"(?:@import|url\()\s*{remote}", re.I)),
]
found = []
for pattern, regex in checks:
    for path in sorted(root.rglob(pattern)):
        for match in regex.finditer(path.read_text(errors="replace")):
            found.append(f"{path.relative_to(root)}: {match[0][:120]}")
if found:
    sys.exit("the built site loads from the network:\n  " + "\n  ".join(found))
pages = sum(1 for _ in root.rglob("*.html"))
print(f"offline check: {pages} pages load no remote script, style, font or image")
EOF

if [ "${SKNORM_UPDATE_README_FIGURE:-0}" = "1" ]; then
    cp docs/auto_examples/images/sphx_glr_plot_when_forgetting_helps_002.png \
        docs/_static/readme_figure.png
    echo "updated docs/_static/readme_figure.png"
fi
