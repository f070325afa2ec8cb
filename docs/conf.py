"""Sphinx configuration for the sknorm documentation.

Build with ``bash docs/build.sh`` (or ``sphinx-build -W --keep-going -b html docs
docs/_build/html`` from the repository root). The gallery in ``examples/`` is
executed on every build, so the figures always come from the current code.
"""

import os
import re
import sys
import warnings
from pathlib import Path

DOCS_DIR = Path(__file__).resolve().parent
REPO_ROOT = DOCS_DIR.parent

# Document the working tree, not whatever sknorm happens to be installed.
sys.path.insert(0, str(REPO_ROOT))
# Local Sphinx helpers (the gallery's reading order).
sys.path.insert(0, str(DOCS_DIR / "sphinxext"))

import sknorm  # noqa: E402

# -- Project information -----------------------------------------------------

project = "sknorm"
author = "sknorm developers"
copyright = "sknorm developers"
release = sknorm.__version__  # the one place the version is written
version = ".".join(release.split(".")[:2])

# -- General configuration ---------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    # MathJax served from the built site (_static/mathjax), not from a CDN: the
    # pages must read fully offline (docs/build.sh fails on any remote script).
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "**.ipynb_checkpoints"]
root_doc = "index"
language = "en"
# `single backquotes` render as inline code instead of guessing a Python object.
default_role = "literal"

# -- autodoc / autosummary / numpydoc ---------------------------------------

autosummary_generate = True
# In the page's table of contents, list methods as "fit()", not "Class.fit()".
toc_object_entries_show_parents = "hide"
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "inherited-members": True}

# Members inherited from scikit-learn's base classes whose docstrings point at
# scikit-learn's own user guide and glossary (``:ref:`metadata_routing```,
# ``:term:`meta-estimator```...). Those targets do not exist in this project, so
# rendering them would be a warning and therefore an error under ``-W``. They are
# generic sklearn machinery, documented in scikit-learn's API reference.
_SKIPPED_MEMBERS = re.compile(r"set_output|get_metadata_routing|set_\w+_request")


def _skip_sklearn_machinery(app, what, name, obj, skip, options):
    if what == "class" and _SKIPPED_MEMBERS.fullmatch(name):
        return True
    return None


numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- intersphinx -------------------------------------------------------------
#
# Links to the scikit-learn, NumPy, SciPy, pandas and Python docs need their
# ``objects.inv`` inventories, which intersphinx downloads at build time. The
# machines that build these docs (developers' and CI's) have no general internet
# access, and an unreachable inventory is a warning, so it would fail the
# ``-W`` build for a reason that has nothing to do with the docs. The mapping is
# therefore opt-in: set ``SKNORM_DOCS_INTERSPHINX=1`` when building online (for
# a published site) to get the cross-links; offline, references such as
# :class:`sklearn.preprocessing.StandardScaler` render as plain code, and nothing
# is fetched. We do not ship copies of the inventories: they would go stale.

intersphinx_mapping = {}
if os.environ.get("SKNORM_DOCS_INTERSPHINX", "0") == "1":
    intersphinx_mapping = {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "pandas": ("https://pandas.pydata.org/docs", None),
        "matplotlib": ("https://matplotlib.org/stable", None),
    }
else:
    # Docstrings follow scikit-learn's and use its glossary (:term:`fit`). Without
    # the sklearn inventory those terms cannot be resolved; they then render as
    # plain text. Only this kind of reference is silenced: an unknown :ref: label
    # or document is still an error.
    suppress_warnings = ["ref.term"]

# -- sphinx-gallery ----------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": str(REPO_ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    "doc_module": ("sknorm",),
    "backreferences_dir": "generated/backreferences",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "sknorm_gallery_order.ExampleOrder",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    # Make a crashing example fail the build.
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    # The timings page loads DataTables and jQuery from CDNs; the site must read
    # offline (docs/build.sh checks), so it is not written.
    "write_computation_times": False,
}

# Examples print their figures with the non-interactive backend.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="Matplotlib is currently using agg, which is a non-GUI backend",
)

# -- HTML output -------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"sknorm {release}"
html_static_path = ["_static"]
html_css_files = ["sknorm.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "secondary_sidebar_items": ["page-toc", "sg_download_links", "sg_launcher_links"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_sidebars = {"index": [], "install": [], "user_guide": []}
html_context = {"default_mode": "light"}


def setup(app):
    app.connect("autodoc-skip-member", _skip_sklearn_machinery)
