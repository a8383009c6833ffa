"""Every public name has a docstring with a runnable example, and every example runs: the
docstrings' doctests, and the python blocks of README.md and of each page under docs/, run
in order as a reader pastes them, one namespace per page."""

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import jaxgd

ROOT = Path(__file__).parents[2]

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


# ------------------------------------------------------------------ README and docs/ pages

# A fenced block: its fence (3 or more backticks), opening line (language, attributes), code.
FENCE = re.compile(r"^(`{3,})([^\n]*)\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)
# The one way to leave a python block out, shown above it on the site as its title:
# ```python title="Not run by the tests: it needs a cluster of GPUs"
SKIP = re.compile(r'title="Not run by the tests: [^"]{10,}"')
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md"))]


def python_blocks(page: str) -> list[tuple[int, str, str]]:
    """(line of the code's first line, opening line, code) of each python block, in order."""
    text = (ROOT / page).read_text()
    blocks = []
    for match in FENCE.finditer(text):
        opening, code = match.group(2).strip(), match.group(3)
        if opening.split(" ", 1)[0] in ("python", "py"):
            blocks.append((text.count("\n", 0, match.start(3)) + 1, opening, code))
    return blocks


def test_every_page_is_found_and_every_skipped_block_says_why():
    assert "docs/index.md" in PAGES and len(PAGES) > 10
    for page in PAGES:
        for line, opening, _ in python_blocks(page):
            if "title=" in opening or "skip" in opening.lower():
                assert SKIP.search(opening), (
                    f'{page}:{line}: a block is left out only by title="Not run by the '
                    f'tests: <why>", got {opening!r}')


@pytest.mark.parametrize("page", [page for page in PAGES if python_blocks(page)])
def test_the_python_blocks_of_each_page_run_in_order(page, tmp_path, monkeypatch):
    """A fresh namespace per page, blocks in order; in an empty folder (examples save
    results and write small files). Line numbers in a traceback are the page's own."""
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for line, opening, code in python_blocks(page):
        if SKIP.search(opening):
            continue
        source = "\n" * (line - 1) + code
        exec(compile(source, str(ROOT / page), "exec"), namespace)


def test_the_readme_stays_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
