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


def module_graph() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports (at its top or inside
    a function; imports under ``TYPE_CHECKING`` load nothing and do not count)."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in names.items():
        tree = ast.parse(path.read_text())
        skipped = {id(node) for branch in ast.walk(tree) if isinstance(branch, ast.If)
                   and "TYPE_CHECKING" in ast.dump(branch.test)
                   for statement in branch.body for node in ast.walk(statement)}
        found = set()
        for node in ast.walk(tree):
            if id(node) in skipped or not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            found |= {m for m in imported_modules_of(node, path) if m in names}
        # A package importing its own submodules re-exports them; not a dependency.
        graph[name] = {m for m in found if m != name and not m.startswith(f"{name}.")}
    return graph


def imported_modules_of(node, path: Path) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    base = node.module or ""
    if node.level:
        package = path.relative_to(PACKAGE.parent).with_suffix("").parts
        base = ".".join(package[:len(package) - node.level] + (base,) * bool(base))
    return {f"{base}.{alias.name}" for alias in node.names} | {base}


def test_no_module_imports_itself_back_through_others():
    graph, cycles = module_graph(), []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name, path):
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycles.append(" -> ".join([*path[path.index(other):], other]))
            elif other not in state:
                visit(other, [*path, other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_core_loads_no_engine_data_tuning_or_results_module():
    # descend and its types stand on their own: importing the core (and the package's lazy
    # top, which loads a public name only when it is used) pulls in nothing above them.
    script = ("import sys, jaxgd.core.descent, jaxgd.core.record; "
              "print(sorted(m for m in sys.modules if m.startswith('jaxgd.') and "
              "m.split('.')[1] not in ('core', 'inputs', '_signals', '_version')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout.strip() == "[]"


def test_the_public_names_are_the_same_for_type_checkers_and_at_run_time():
    tree = ast.parse((PACKAGE / "__init__.py").read_text())
    checked = {alias.asname or alias.name for branch in tree.body
               if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.dump(branch.test)
               for node in branch.body for alias in node.names}
    assert checked == set(jaxgd.__all__)
    for name in jaxgd.__all__:  # each resolves, to what the type checkers are told
        module, _, attribute = jaxgd._PUBLIC[name].partition(":")
        assert getattr(jaxgd, name) is (getattr(sys.modules[module], attribute)
                                         if attribute else sys.modules[module])


#: The library's folders, lowest first: a module imports only from its own folder and those
#: before it (the README's "Architecture" table). Top-level helpers: ``_signals`` and
#: ``_version`` are below everything; ``sklearn`` sits on the entry points.
FOLDERS = ("_signals", "_version", "inputs", "core", "data", "datasets", "theory", "engines",
           "results", "pipeline", "tuning", "api", "sklearn")


def test_each_library_folder_imports_only_the_folders_below_it():
    graph, upward = module_graph(), []
    folder = lambda name: name.split(".")[1] if "." in name else "jaxgd"  # noqa: E731
    for name, imported in sorted(graph.items()):
        if folder(name) not in FOLDERS:
            continue  # the package top (lazy), the command line, figures and the harness
        rank = FOLDERS.index(folder(name))
        upward += [f"{name} -> {other}" for other in sorted(imported)
                   if folder(other) in FOLDERS and FOLDERS.index(folder(other)) > rank]
    assert upward == []
    assert {folder(name) for name in graph} - set(FOLDERS) == {
        "jaxgd", "__main__", "cli", "figures", "_bench"}  # a new folder gets a place above
