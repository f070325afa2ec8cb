"""Reading order of the example gallery.

The examples build on each other (what is forgotten, how to get it back, when it
matters, then practice), so they are listed in that order rather than by file
name. sphinx-gallery instantiates the class with the gallery's source folder and
sorts the file names with it; a file not listed here goes last, by name.
"""

EXAMPLE_ORDER = [
    "plot_what_layer_norm_forgets.py",
    "plot_recover_lost_information.py",
    "plot_when_forgetting_helps.py",
    "plot_pipelines.py",
    "plot_robust_normalization.py",
    "plot_which_normalizer.py",
]


class ExampleOrder:
    """Sort key for sphinx-gallery's ``within_subsection_order``."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        if filename in EXAMPLE_ORDER:
            return (EXAMPLE_ORDER.index(filename), filename)
        return (len(EXAMPLE_ORDER), filename)

    def __repr__(self):
        return f"{self.__class__.__name__}()"
