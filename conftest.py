"""Collection rules for the doctest run over the package (``testpaths``).

``sknorm/_numba.py`` holds the optional compiled kernels and imports numba at
module level; it is loaded only when numba is installed (``sknorm[fast]``), so
its doctests are collected only then.
"""

import importlib.util

collect_ignore = []
if importlib.util.find_spec("numba") is None:
    collect_ignore.append("sknorm/_numba.py")
