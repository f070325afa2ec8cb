"""The code on the FAQ and related-projects pages runs and prints what they show.

Their ``>>>`` blocks are doctests, run here as ``tests/test_persistence.py`` runs
those of the persistence page, so a page cannot drift from the code it explains.
"""

import doctest
import io
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("page", ["faq.rst", "related.rst"])
def test_page_doctests(page):
    path = DOCS / page
    assert path.exists(), path
    test = doctest.DocTestParser().get_doctest(
        path.read_text(), {}, path.name, str(path), 0
    )
    assert test.examples, f"{page} has no doctest"
    out = io.StringIO()
    runner = doctest.DocTestRunner(
        optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS
    )
    runner.run(test, out=out.write)
    assert runner.failures == 0, out.getvalue()
