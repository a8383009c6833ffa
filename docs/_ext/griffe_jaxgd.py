"""Two griffe adjustments for the API reference (loaded by mkdocs.yml, not part of jaxgd).

1. ``jaxgd.fit`` is the function ``fit``, re-exported from the package top, but a module of
   the same name sits beside it and griffe, reading the files, resolves the name to the
   module (``jaxgd.datasets.auto_mpg`` likewise). Here each such name of a package points
   at what its ``__init__`` imports.
2. jaxgd's docstrings head their doctests "Example:", which griffe's Google parser reads as
   an admonition (rendered as Markdown, the doctest lines mangled), not as the examples
   section it makes of "Examples:". Here the heading is read as "Examples:".
"""

from __future__ import annotations

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class JaxgdDocs(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        self._unshadow(pkg)

    def _unshadow(self, module: griffe.Module) -> None:
        for sub in list(module.members.values()):  # jaxgd.datasets.auto_mpg likewise
            if not sub.is_alias and sub.is_module:
                self._unshadow(sub)
        for name, target in module.imports.items():
            member = module.members.get(name)
            if (member is None or member.is_alias or not member.is_module
                    or not target.startswith(member.path + ".")):
                continue
            found = member  # walk from the shadowing module down to what was imported
            for part in target[len(member.path) + 1:].split("."):
                found = found.members.get(part) if found is not None else None
            if found is not None:
                module.members[name] = griffe.Alias(name, found, parent=module)

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
