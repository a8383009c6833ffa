"""The command line's compiled programs, kept between runs in JAX's persistent cache.

Every ``jaxgd`` command compiles its programs again in each new process, and on a CPU that
compile is most of a small run's time. JAX can keep compiled programs on disk
(``jax_compilation_cache_dir``); the command line turns that on for itself, in a per-user
folder, so a second run of the same config loads its programs instead of compiling them.
The library never does this on its own: research code keeps JAX's own setting (the docs'
command-line page, docs/guide/cli.md, says how to turn it on).

Where the programs go, first match wins:

- ``JAX_COMPILATION_CACHE_DIR`` set: JAX's own setting, left as it is;
- ``JAXGD_CACHE_DIR``: that folder, or no cache at all when it is empty or ``off``;
- else ``$XDG_CACHE_HOME/jaxgd/compiled`` (``~/.cache/jaxgd/compiled``).

A cache that cannot be written never fails a run: a folder that cannot be made or written
turns the cache off for the run (``jaxgd info`` says why), and JAX's own errors while reading
or writing an entry (a full disk) are not the run's concern, so they are silenced.
Programs that call back to the host are never cached by JAX, which is why the command line
compiles its progress reports in only when it shows a progress bar.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

#: The environment variable that moves the command line's cache, or turns it off.
VARIABLE = "JAXGD_CACHE_DIR"
#: Values of ``VARIABLE`` that turn the cache off.
OFF = ("", "off", "none", "0", "false")


@dataclass(frozen=True)
class CacheState:
    """Where compiled programs are kept (``folder`` None: not kept) and why, in words."""

    folder: Path | None
    reason: str


def default_folder(environ=None) -> Path:
    """The per-user folder: ``$XDG_CACHE_HOME/jaxgd/compiled``, else under ``~/.cache``.

    Example:
      >>> default_folder().parts[-2:]
      ('jaxgd', 'compiled')
    """
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "jaxgd" / "compiled"


def resolve(environ=None) -> CacheState:
    """Where the command line keeps its compiled programs, from the environment (nothing
    is written; see ``enable``).

    Example:
      >>> resolve({"JAXGD_CACHE_DIR": "off"}).folder is None
      True
      >>> str(resolve({"JAXGD_CACHE_DIR": "/tmp/programs"}).folder)
      '/tmp/programs'
    """
    environ = os.environ if environ is None else environ
    if environ.get("JAX_COMPILATION_CACHE_DIR"):
        return CacheState(Path(environ["JAX_COMPILATION_CACHE_DIR"]),
                          "JAX_COMPILATION_CACHE_DIR (JAX's own setting)")
    if VARIABLE in environ:
        value = environ[VARIABLE].strip()
        if value.lower() in OFF:
            return CacheState(None, f"off ({VARIABLE}={environ[VARIABLE]!r})")
        return CacheState(Path(value).expanduser(), VARIABLE)
    return CacheState(default_folder(environ), f"the default (set {VARIABLE} to move it, or "
                                        f"{VARIABLE}=off)")


def usable(folder: Path) -> str | None:
    """Why ``folder`` cannot hold the cache (made if missing), or None if it can."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
            pass
    except OSError as error:
        return f"{folder} cannot be written ({error.strerror or error})"
    return None


def enable(environ=None) -> CacheState:
    """Turns JAX's persistent cache on for this process as ``resolve`` says, unless the
    folder cannot be written (then the cache stays off and the run goes on). Every program
    is kept, however short its compile: on a CPU the small ones add up to most of a run.
    Call it before the first compile."""
    import jax

    state = resolve(environ)
    if state.folder is None:
        return state
    problem = usable(state.folder)
    if problem is not None:
        return CacheState(None, f"off: {problem}")
    warnings.filterwarnings("ignore", message=r"Error (reading|writing) persistent "
                                              r"compilation cache entry")
    if not (os.environ if environ is None else environ).get("JAX_COMPILATION_CACHE_DIR"):
        jax.config.update("jax_compilation_cache_dir", str(state.folder))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    return state


def size(folder: Path) -> tuple[int, int]:
    """The number of programs kept in ``folder`` and their bytes on disk."""
    count = total = 0
    try:
        for entry in folder.iterdir():
            if entry.name.endswith("-cache"):
                count += 1
                total += entry.stat().st_size
    except OSError:  # gone, or unreadable: nothing kept there that we can count
        pass
    return count, total


def describe(state: CacheState) -> str:
    """One line for ``jaxgd info``.

    Example:
      >>> describe(CacheState(None, "off (JAXGD_CACHE_DIR='off')"))
      "off (JAXGD_CACHE_DIR='off')"
    """
    if state.folder is None:
        return state.reason
    count, total = size(state.folder)
    return f"{state.folder} ({count} programs, {total / 2**20:.1f} MiB; {state.reason})"
