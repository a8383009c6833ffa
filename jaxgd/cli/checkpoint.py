"""Checkpoints of a long sweep: each finished chunk is saved at once, so a killed run resumes.

``jaxgd run`` splits a sweep's learning rates into chunks (see ``jaxgd.cli.plan``). While it
runs, the results folder being built holds only a ``.partial`` folder::

    OUT/.partial/manifest.json      what is being run: config, data and software fingerprint
    OUT/.partial/chunk-00000.npz    one per finished chunk, plain arrays (no pickle): its
                                    GridResult, as jaxgd.results.saving.encode gives it

Every file is written to a temporary name, flushed to disk and renamed into place, so a
SIGKILL, SIGTERM, Ctrl-C or power cut leaves whole chunk files and, at worst, a hidden
temporary file that the next ``--resume`` removes. The manifest is written with the first
chunk: a run stopped before any chunk finished leaves nothing behind. A chunk counts as done
when its file exists; the manifest's ``done`` list is kept up to date for people reading it,
and its ``sha256`` map holds each chunk file's SHA-256, recorded before the file is renamed
into place.

``--resume`` refuses a run whose fingerprint differs from the saved one (another config,
other data, another jaxgd, JAX or backend): its chunks would not be the chunks of this run
(a change to the config's ``[output]`` alone is taken: it changes no number, and the results
are written with the new values);
and a chunk file whose SHA-256 is not the one recorded (changed or damaged since it was
written). When every chunk is done, the final results folder replaces ``OUT`` in one step.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from jaxgd.cli.config import ConfigError
from jaxgd.cli.results import (
    PARTIAL,
    SUMMARY,
    ResultsError,
    load_npz,
    parse_json,
    to_json,
    write_atomic,
)

MANIFEST = "manifest.json"
#: 2: chunk checksums (``sha256``); 3: a chunk holds its ``GridResult`` as
#: ``jaxgd.results.saving.encode`` gives it (``jaxgd.cli.execute.run_chunk``).
FORMAT = 3
_TEMPORARY = ".tmp-"  # marks a file still being written (``write_atomic``)


class ResumeError(ConfigError):
    """A results folder that cannot be resumed: nothing to resume, or another run's chunks."""


def chunk_name(index: int) -> str:
    """The file name of chunk ``index``.

    Example:
      >>> chunk_name(3)
      'chunk-00003.npz'
    """
    return f"chunk-{index:05d}.npz"


def sha256_of(path: Path) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Checkpoint:
    """The finished chunks of one run, in ``out_dir/.partial``.

    Example:
      >>> import tempfile, pathlib, numpy as np
      >>> out = pathlib.Path(tempfile.mkdtemp()) / "run"
      >>> saved = Checkpoint.start(out, {"chunk_size": 2, "num_chunks": 3})
      >>> out.exists()                     # nothing is written before the first chunk
      False
      >>> saved.save(1, {"losses": np.zeros((2, 1, 5))})
      >>> again = Checkpoint.open(out)
      >>> again.done(), again.load(1)["losses"].shape
      ([1], (2, 1, 5))
    """

    def __init__(self, out_dir: Path, manifest: dict[str, Any]):
        self.out_dir = Path(out_dir)
        self.folder = self.out_dir / PARTIAL
        self.manifest = manifest

    @classmethod
    def start(cls, out_dir: Path, fingerprint: dict[str, Any],
              replaces: bool = False) -> Checkpoint:
        """A new, empty checkpoint for a run described by ``fingerprint`` (which must hold
        ``chunk_size`` and ``num_chunks``); ``replaces``: the run was asked to overwrite the
        results already in ``out_dir``. An unfinished run already there is discarded."""
        checkpoint = cls(out_dir, {"format": FORMAT, **fingerprint, "replaces": replaces,
                                   "done": [], "sha256": {}})
        checkpoint.discard()
        return checkpoint

    @classmethod
    def open(cls, out_dir: Path) -> Checkpoint:
        """The unfinished run saved in ``out_dir``.

        Raises:
          ResumeError: if there is none (the message says what ``out_dir`` holds instead),
            or its manifest is damaged.
        """
        out_dir = Path(out_dir)
        manifest_path = out_dir / PARTIAL / MANIFEST
        if not manifest_path.is_file():
            if (out_dir / SUMMARY).is_file():
                why = "it is a finished run"
            elif out_dir.exists():
                why = f"there is no {PARTIAL}/{MANIFEST} in it"
            else:
                why = "it does not exist"
            raise ResumeError(f"nothing to resume in {out_dir}: {why} (drop --resume to "
                              "start a new run)")
        try:
            manifest = parse_json(manifest_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ResumeError(f"{manifest_path} is damaged ({error}): pass --overwrite "
                              "instead of --resume to start again") from None
        older = manifest.get("format") if isinstance(manifest, dict) else None
        if isinstance(older, int) and not isinstance(older, bool) and 0 < older < FORMAT:
            raise ResumeError(f"{out_dir} was started by an older jaxgd, whose saved chunks "
                              f"(format {older}) this jaxgd cannot read (format {FORMAT}): "
                              "pass --overwrite instead of --resume to start again")
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
                or not isinstance(manifest.get("sha256"), dict):
            raise ResumeError(f"{manifest_path} is not a jaxgd {FORMAT} manifest: pass "
                              "--overwrite instead of --resume to start again")
        return cls(out_dir, manifest)

    @property
    def num_chunks(self) -> int:
        return int(self.manifest["num_chunks"])

    @property
    def chunk_size(self) -> int:
        return int(self.manifest["chunk_size"])

    def check(self, fingerprint: dict[str, Any]) -> None:
        """Refuses to resume a run described by ``fingerprint`` with these chunks.

        Raises:
          ResumeError: naming what differs (config keys, data, software, chunking).
        """
        saved = self.manifest
        problems = []
        if saved.get("config_sha256") != fingerprint.get("config_sha256"):
            old, new = saved.get("config", {}), fingerprint.get("config", {})
            changed = _differences(_numbers(old), _numbers(new))
            if changed or not _differences(old, new):  # [output] alone may change
                problems.append("the config differs: " + ("; ".join(changed) if changed else
                                                          "its resolved form has changed"))
        if saved.get("data_sha256") != fingerprint.get("data_sha256"):
            problems.append("the data differ (the file or data set changed since)")
        environment = _differences(saved.get("environment", {}),
                                   fingerprint.get("environment", {}))
        if environment:
            problems.append("chunks from another setup would not match bit for bit: "
                            + "; ".join(environment))
        for key in ("chunk_size", "num_chunks"):
            if saved.get(key) != fingerprint.get(key):
                problems.append(f"{key} was {saved.get(key)}, now {fingerprint.get(key)}")
        if problems:
            raise ResumeError(
                f"cannot resume {self.out_dir} with this run: " + "; ".join(problems)
                + ". Resume with the original config and settings, or pass --overwrite "
                "instead of --resume to start again"
            )

    def done(self) -> list[int]:
        """Indices of the chunks whose files are saved."""
        if not self.folder.is_dir():
            return []
        names = {p.name for p in self.folder.iterdir()}
        return [i for i in range(self.num_chunks) if chunk_name(i) in names]

    def missing(self) -> list[int]:
        """Indices of the chunks still to run, in order."""
        done = set(self.done())
        return [i for i in range(self.num_chunks) if i not in done]

    def save(self, index: int, arrays: dict[str, np.ndarray]) -> None:
        """Saves chunk ``index`` whole (and, with the first chunk, the manifest)."""
        if not 0 <= index < self.num_chunks:
            raise ValueError(f"chunk index {index} is outside [0, {self.num_chunks})")
        self.folder.mkdir(parents=True, exist_ok=True)

        def record_checksum(tmp: Path) -> None:  # in the manifest before the chunk is there
            self.manifest["sha256"][chunk_name(index)] = sha256_of(tmp)
            self._write_manifest()

        write_atomic(self.folder / chunk_name(index),
                     lambda handle: np.savez(handle, **{k: np.asarray(v)
                                                        for k, v in arrays.items()}),
                     sync=True, before_rename=record_checksum)
        self.manifest["done"] = self.done()
        self._write_manifest()

    def verify(self, index: int) -> None:
        """Checks chunk ``index``'s file against the SHA-256 recorded when it was written.

        Raises:
          ResumeError: if it differs, or none was recorded (the message names the file).
        """
        path = self.folder / chunk_name(index)
        recorded = self.manifest["sha256"].get(chunk_name(index))
        try:
            actual = sha256_of(path)
        except OSError as error:
            raise ResumeError(f"cannot read {path}: {error}; delete it and pass --resume to "
                              "run that chunk again") from None
        if recorded is None:
            raise ResumeError(f"{path} was not written by this run (its {MANIFEST} records "
                              "no checksum for it): delete it and pass --resume to run that "
                              "chunk again")
        if actual != recorded:
            raise ResumeError(f"{path} is damaged or changed since it was written (its "
                              f"SHA-256 is not the one recorded in {MANIFEST}): delete it and "
                              "pass --resume to run that chunk again, or pass --overwrite "
                              "instead of --resume to start again")

    def load(self, index: int) -> dict[str, np.ndarray]:
        """The arrays of chunk ``index``, checked against its recorded SHA-256.

        Raises:
          ResumeError: if its file is missing, changed or damaged (the message says to
            resume again, which runs the chunk anew once its file is gone).
        """
        path = self.folder / chunk_name(index)
        if path.is_file():
            self.verify(index)
        try:
            return load_npz(path)
        except (ResultsError, FileNotFoundError) as error:
            raise ResumeError(f"{error}; delete {path} and pass --resume to run that chunk "
                              "again") from None

    def remove_temporary(self) -> list[str]:
        """Removes files left half-written by a killed run; returns their names."""
        if not self.folder.is_dir():
            return []
        leftovers = [p for p in self.folder.iterdir() if _TEMPORARY in p.name]
        for path in leftovers:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        return sorted(p.name for p in leftovers)

    def discard(self) -> None:
        """Deletes the saved chunks (and ``out_dir`` too if nothing else was in it)."""
        if not self.folder.exists():
            return
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.out_dir.rmdir()  # only if empty

    def _write_manifest(self) -> None:
        write_atomic(self.folder / MANIFEST, to_json(self.manifest).encode(), sync=True)


#: Config tables that change no number of the runs, only how the results are written (the
#: figures, their dpi, scale and rows): a resume takes their new values and writes with them.
OUTPUT_TABLES = ("output",)


def _numbers(config: Any) -> Any:
    """The config without ``OUTPUT_TABLES``: what the saved chunks depend on."""
    if not isinstance(config, dict):
        return config
    return {key: value for key, value in config.items() if key not in OUTPUT_TABLES}


def _differences(old: Any, new: Any, where: str = "") -> list[str]:
    """What changed between two JSON-like values, as ``key: old → new`` lines.

    Example:
      >>> _differences({"train": {"num_steps": 3}}, {"train": {"num_steps": 5}})
      ['train.num_steps: 3 → 5']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        lines = []
        for key in sorted(set(old) | set(new), key=str):
            name = f"{where}.{key}" if where else str(key)
            if key not in old:
                lines.append(f"{name}: (none) → {new[key]!r}")
            elif key not in new:
                lines.append(f"{name}: {old[key]!r} → (none)")
            else:
                lines += _differences(old[key], new[key], name)
        return lines
    if _plain(old) != _plain(new):
        return [f"{where or 'value'}: {_plain(old)!r} → {_plain(new)!r}"]
    return []


def _plain(value: Any) -> Any:
    # Lists and tuples compare alike: the manifest is JSON, the fingerprint Python data.
    return json.loads(to_json(value))
