"""TOML text, a config file's or a ``--set KEY=VALUE``'s, parsed into plain data.

``jaxgd.cli.config`` checks what it holds; here only the text is read, and a value that is
not TOML (or nested past Python's recursion limit) is a ``ConfigError`` naming where it came
from.
"""

from __future__ import annotations

import tomllib
from typing import Any


class ConfigError(ValueError):
    """A config that cannot run: the message names the key and what is wrong with it.
    Defined here, at the bottom of the command line's config modules, and re-exported by
    ``jaxgd.cli.config``, where the rest of the command line imports it from."""


def apply_override(raw: dict, override: str) -> None:
    """Sets ``--set KEY=VALUE`` in the raw config ``raw`` (sections by the key's dots); the
    value is TOML, or a bare word taken as a string.

    Example:
      >>> raw = {}
      >>> apply_override(raw, "train.num_steps=500"); raw
      {'train': {'num_steps': 500}}
    """
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set needs key=value, got {override!r}")
    text = text.strip()
    if "\n" in text or "\r" in text:
        raise ConfigError(f"--set {key}: the value spans several lines: give one value")
    where = f"--set {key}: the value {text[:20]}{'...' if len(text) > 20 else ''}"
    try:
        parsed = toml(f"v = {text}", where)
    except tomllib.TOMLDecodeError:
        parsed = {"v": text}  # a bare word such as mlcc_cars is meant as a string
    if "#" in text and _parses_as(text.split("#", 1)[0], parsed["v"], where):
        raise ConfigError(f"--set {key}: trailing content after the value: "
                          f"{text[text.index('#'):]!r} (TOML would ignore it as a comment)")
    value = parsed["v"]
    *sections, name = key.split(".")
    table = raw
    for section in sections:
        table = table.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"--set {key}: {section} is not a section")
    table[name] = value


def _parses_as(text: str, value: Any, where: str) -> bool:
    """Whether ``text`` alone is TOML for ``value`` (so what followed it was cut off)."""
    try:
        return toml(f"v = {text.strip()}", where)["v"] == value
    except tomllib.TOMLDecodeError:
        return False


def toml(text: str, where: str) -> dict[str, Any]:
    """``tomllib.loads(text)``, where nesting past Python's recursion limit (a few hundred
    levels: the parser recurses once a level) is a ConfigError naming ``where`` (the file,
    or the --set), like any other invalid TOML, not a RecursionError.

    Example:
      >>> toml("v = " + "[" * 5000 + "]" * 5000, "deep.toml")
      Traceback (most recent call last):
      jaxgd.cli.toml_text.ConfigError: deep.toml is not valid TOML: too deeply nested (past \
Python's recursion limit)
    """
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ConfigError(f"{where} is not valid TOML: too deeply nested (past Python's "
                          "recursion limit)") from None
