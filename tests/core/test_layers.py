"""The package's three layers: the library (``jaxgd``), the command line (``jaxgd.cli``) and
the benchmark harness (``jaxgd._bench``). Imports go one way: the command line imports the
library, the harness imports both, and the library imports neither."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import jaxgd

ROOT = Path(__file__).parents[2]
PACKAGE = Path(jaxgd.__file__).parent
UPPER_LAYERS = ("jaxgd.cli", "jaxgd._bench")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function (relative ones resolved)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = path.relative_to(PACKAGE.parent).with_suffix("").parts
                base = ".".join(package[:len(package) - node.level] + (base,) * bool(base))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def in_layer(name: str, layer: str) -> bool:
    return name == layer or name.startswith(f"{layer}.")


def test_importing_the_library_loads_neither_the_command_line_nor_the_harness():
    script = ("import jaxgd, sys; "
              f"print([m for m in sys.modules if m.startswith({UPPER_LAYERS!r})])")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "[]"


def test_the_library_imports_neither_the_command_line_nor_the_harness():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in ("cli", "_bench") or relative.name == "__main__.py":
            continue
        offenders += [f"{relative}: {name}" for name in imported_modules(path)
                      if any(in_layer(name, layer) for layer in UPPER_LAYERS)]
    assert offenders == []


def test_the_command_line_loads_the_harness_only_inside_the_bench_command():
    offenders = []
    for path in sorted((PACKAGE / "cli").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: a function may import it when it runs
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [alias.name for alias in node.names]
                names += [f"{node.module}.{alias.name}" for alias in node.names
                          if isinstance(node, ast.ImportFrom)]
                offenders += [f"{path.name}: {n}" for n in names if in_layer(n, "jaxgd._bench")]
    assert offenders == []


def test_the_moved_modules_are_gone_from_the_library_namespace():
    for name in ("bench", "runner", "cli", "config", "checkpoint", "results", "timing"):
        assert not (PACKAGE / f"{name}.py").exists(), name
