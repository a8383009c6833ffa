"""Finding a config: by the name of one that ships inside the package, or by its path.

The shipped configs live in ``jaxgd/configs`` (the top-level ``configs/`` folder links to
them), so ``jaxgd run NAME`` works from any folder.
"""

from __future__ import annotations

import importlib.resources
import typing
from pathlib import Path

from jaxgd.cli.config import Config, ConfigError, load, parse

DEFAULT_CONFIG = "auto_mpg"  # what ``jaxgd run`` runs without a config


def shipped_configs() -> list[str]:
    """Names of the configs that ship inside the package (usable as ``jaxgd run NAME``)."""
    folder = importlib.resources.files("jaxgd") / "configs"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir()
                  if p.name.endswith(".toml"))


def load_config(name: str | None, overrides: typing.Sequence[str]) -> tuple[Config, str]:
    """A config from a file path, or by the name of a shipped one (the default if None).

    A relative ``data.path`` is read from the config file's folder; for a link to a config
    file (such as those in the top-level configs/ folder), from the folder of the file it
    links to; for a shipped config, from the package's configs folder. Given with ``--set``,
    it is read from the current folder.
    """
    name = name or DEFAULT_CONFIG
    path = Path(name)
    if path.is_file():
        target = path.resolve() if path.is_symlink() else path
        return load(target, overrides), path.stem
    stem = name.removesuffix(".toml")
    if stem in shipped_configs() and path.parent == Path("."):
        folder = importlib.resources.files("jaxgd") / "configs"
        text = (folder / f"{stem}.toml").read_text(encoding="utf-8")
        base_dir = folder if isinstance(folder, Path) else None
        return parse(text, overrides, source=f"shipped config {stem}",
                                   base_dir=base_dir), stem
    raise ConfigError(f"config file not found: {name} (shipped configs: "
                      f"{', '.join(shipped_configs())})")
