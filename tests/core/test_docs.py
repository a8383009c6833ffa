"""Every public name has a docstring with a runnable example, and every example runs."""

import doctest
import importlib
import pkgutil

import pytest

import jaxgd

MODULES = sorted(
    name for _, name, _ in pkgutil.walk_packages(jaxgd.__path__, "jaxgd.")
    if not name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    if name == "jaxgd.sklearn":  # the optional extra (the test extra installs it)
        pytest.importorskip("sklearn")
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize("name", jaxgd.__all__)
def test_public_functions_have_examples(name):
    obj = getattr(jaxgd, name)
    if name == "datasets":
        return
    doc = obj.__doc__ or ""
    assert doc.strip(), f"jaxgd.{name} has no docstring"
    if callable(obj) and not isinstance(obj, type):
        assert ">>>" in doc, f"jaxgd.{name}'s docstring has no runnable example"
