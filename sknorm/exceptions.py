"""Warnings that sknorm emits, as classes to filter or catch.

Like :mod:`sklearn.exceptions`: ``warnings.filterwarnings("error",
category=sknorm.exceptions.InconsistentVersionWarning)`` turns one kind into
an error, without touching other warnings.
"""

__all__ = ["InconsistentVersionWarning", "SingleColumnGroupWarning"]


class InconsistentVersionWarning(UserWarning):
    """An estimator was unpickled with another version of sknorm.

    sknorm stamps its version into every pickle of its estimators (as
    scikit-learn does for its own); loading one with another version may
    break or give other results (see :ref:`persistence`).

    Parameters
    ----------
    estimator_name : str
        The class of the estimator that was loaded.
    current_sknorm_version : str
        The version of sknorm doing the loading.
    original_sknorm_version : str
        The version that saved the estimator (``"unknown"`` for a pickle made
        before sknorm stamped its version).

    Examples
    --------
    >>> import warnings
    >>> from sknorm.exceptions import InconsistentVersionWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warnings.warn(InconsistentVersionWarning("LayerNormalizer", "0.2", "0.1"))
    >>> caught[0].message.original_sknorm_version
    '0.1'
    """

    def __init__(self, estimator_name, current_sknorm_version, original_sknorm_version):
        super().__init__(
            estimator_name, current_sknorm_version, original_sknorm_version
        )
        self.estimator_name = estimator_name
        self.current_sknorm_version = current_sknorm_version
        self.original_sknorm_version = original_sknorm_version

    def __str__(self):
        return (
            f"Trying to unpickle estimator {self.estimator_name} from sknorm "
            f"version {self.original_sknorm_version} when using version "
            f"{self.current_sknorm_version}. This might lead to breaking code or "
            "invalid results: refit the model with this version, or load it with "
            "the version that saved it. See the 'Saving and loading estimators' "
            "page of the sknorm documentation."
        )


class SingleColumnGroupWarning(UserWarning):
    """A normalizer was fitted on a single column (or a group of one).

    Normalizing a sample over one value leaves nothing: centered, every value
    becomes 0; only scaled (``center=None``), it becomes about +1 or -1. Tools
    that apply a transformer column by column (for example skrub's
    ``TableVectorizer``) do this silently. Scale single columns across the
    samples instead (:class:`sklearn.preprocessing.StandardScaler`), give the
    normalizer several columns at once, or set ``keep_stats=True`` to keep each
    value as a column.

    Examples
    --------
    >>> import warnings
    >>> from sknorm import LayerNormalizer
    >>> from sknorm.exceptions import SingleColumnGroupWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     Z = LayerNormalizer().fit_transform([[1.0], [5.0]])
    >>> Z.ravel().tolist(), caught[0].category is SingleColumnGroupWarning
    ([0.0, 0.0], True)
    """
