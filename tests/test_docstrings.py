"""numpydoc validation of every public class, method and function.

The public API is what the public modules list in ``__all__``: ``sknorm``,
``sknorm.inspection`` and ``sknorm.dask`` (skipped when its optional
dependency is missing). For a class, its docstring and those of all its public
methods and properties written in sknorm are validated; methods inherited
unchanged from scikit-learn (``get_params``, ``set_output``, the generated
``set_*_request`` ...) carry scikit-learn's docstrings and are left to it.

Every numpydoc check applies except those in ``IGNORED``, each with its
reason. The classes and functions of the main namespace must also have an
Examples section; the examples themselves run as doctests
(``--doctest-modules`` in pyproject.toml).
"""

import importlib
import inspect

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

PUBLIC_MODULES = ["sknorm", "sknorm.inspection", "sknorm.dask", "sknorm.spark"]

IGNORED = {
    # "X_tr : ndarray" names what is returned, as scikit-learn does.
    "RT02": "named return values",
    # Layout of the opening and closing quotes: ruff-format's business.
    "GL01": "summary on the line after the opening quotes",
    "GL02": "blank line before the closing quotes",
    # Required for the main namespace by test_main_namespace_has_examples.
    "EX01": "Examples section",
    # Short utility functions need no more than their summary and parameters.
    "ES01": "extended summary",
    "SA01": "See Also section",
}


def _public_module(name):
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # an optional dependency is missing
        return exc


def _owner(cls, attr):
    """The class in ``cls.__mro__`` whose body defines ``attr``."""
    for klass in cls.__mro__:
        if attr in vars(klass):
            return klass
    return None


def _public_objects():
    """The import path of every public object (a skip for a missing module)."""
    for module_name in PUBLIC_MODULES:
        module = _public_module(module_name)
        if isinstance(module, ImportError):
            reason = f"cannot import {module_name}: {module}"
            yield pytest.param(module_name, marks=pytest.mark.skip(reason=reason))
            continue
        for name in module.__all__:
            obj = getattr(module, name)
            path = f"{module_name}.{name}"
            yield path
            if not inspect.isclass(obj):
                continue
            for attr in sorted(dir(obj)):
                if attr.startswith("_"):
                    continue
                owner = _owner(obj, attr)
                generated = attr.startswith("set_") and attr.endswith("_request")
                if owner is None or generated:
                    continue
                if not owner.__module__.startswith("sknorm"):
                    continue  # inherited unchanged from scikit-learn
                yield f"{path}.{attr}"


@pytest.mark.parametrize("import_path", list(_public_objects()))
def test_docstring_is_valid_numpydoc(import_path):
    result = numpydoc_validate.validate(import_path)
    errors = [(code, msg) for code, msg in result["errors"] if code not in IGNORED]
    assert not errors, f"{import_path}:\n" + "\n".join(
        f"  {code}: {msg}" for code, msg in errors
    )


@pytest.mark.parametrize("name", importlib.import_module("sknorm").__all__)
def test_main_namespace_has_examples(name):
    result = numpydoc_validate.validate(f"sknorm.{name}")
    assert "EX01" not in dict(result["errors"]), f"sknorm.{name} has no Examples"


def test_every_public_module_lists_its_api():
    """Nothing public is left out of ``__all__`` (so nothing escapes the checks)."""
    for module_name in PUBLIC_MODULES:
        module = _public_module(module_name)
        if isinstance(module, ImportError):
            continue
        public = {
            name
            for name, obj in vars(module).items()
            if not name.startswith("_")
            and (inspect.isclass(obj) or inspect.isfunction(obj))
            and getattr(obj, "__module__", "").startswith(module_name)
        }
        assert public <= set(module.__all__), (module_name, public)
