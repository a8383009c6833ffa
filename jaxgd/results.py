"""The results folder: summary.json, history.npz, losses.csv and the figures, written atomically.

A run is written into a hidden temporary folder beside the destination and renamed into
place only when every file is complete, so an interrupted run leaves nothing half-written,
and an existing folder is replaced only when the caller says so.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

SUMMARY = "summary.json"
HISTORY = "history.npz"
LOSSES = "losses.csv"
MAX_CSV_ROWS = 1_000_000


class ResultsExistError(FileExistsError):
    """The results folder exists already and overwriting was not asked for."""


def check_destination(out_dir: Path, overwrite: bool) -> None:
    """Refuses an existing, non-empty destination unless ``overwrite``."""
    if out_dir.exists() and not overwrite and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise ResultsExistError(
            f"{out_dir} exists already: pass --overwrite to replace it, or --out elsewhere"
        )


@contextlib.contextmanager
def staging(out_dir: Path, overwrite: bool) -> Iterator[Path]:
    """A temporary folder that becomes ``out_dir`` when the block finishes without error.

    Example:
      >>> import tempfile, pathlib
      >>> root = pathlib.Path(tempfile.mkdtemp())
      >>> with staging(root / "run", overwrite=False) as tmp:
      ...     _ = (tmp / "a.txt").write_text("hi")
      >>> sorted(p.name for p in (root / "run").iterdir())
      ['a.txt']
    """
    out_dir = Path(out_dir)
    check_destination(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        yield tmp
        _usual_permissions(tmp)
        check_destination(out_dir, overwrite)
        if out_dir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            os.replace(out_dir, old / out_dir.name)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _usual_permissions(folder: Path) -> None:
    # mkdtemp and mkstemp make private (0700/0600) entries; results are ordinary files that
    # should get the permissions the user's umask gives anything else they create.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)
    for path in folder.rglob("*"):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~umask)


def write_atomic(path: Path, data: bytes) -> None:
    """Writes a file through a temporary sibling and a rename: readers never see half of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def to_json(value: Any) -> str:
    """JSON with NaN and infinities as null (JSON has neither) and sorted, stable keys."""
    return json.dumps(_clean(value), indent=2, sort_keys=True, allow_nan=False) + "\n"


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_summary(folder: Path, summary: dict[str, Any]) -> Path:
    path = Path(folder) / SUMMARY
    write_atomic(path, to_json(summary).encode())
    return path


def write_history(folder: Path, history: dict[str, np.ndarray]) -> Path:
    path = Path(folder) / HISTORY
    fd, tmp = tempfile.mkstemp(prefix=f".{HISTORY}.", suffix=".npz", dir=folder)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in history.items()})
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return path


def csv_steps(num_steps: int, num_runs: int, max_rows: int = MAX_CSV_ROWS) -> np.ndarray:
    """The steps losses.csv keeps: all of them, unless runs × steps exceeds ``max_rows``; then
    every k-th step (k as small as fits) plus the last step.

    Example:
      >>> csv_steps(10, 1).tolist()
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
      >>> csv_steps(10, 1, max_rows=4).tolist()
      [0, 4, 8, 9]
    """
    if num_steps * num_runs <= max_rows:
        return np.arange(num_steps)
    per_run = max(max_rows // num_runs - 1, 1)
    stride = math.ceil(num_steps / per_run)
    return np.union1d(np.arange(0, num_steps, stride), [num_steps - 1])


def write_losses_csv(folder: Path, history: dict[str, np.ndarray]) -> Path:
    """Tidy loss table: one row per (learning_rate, seed, step), subsampled by ``csv_steps``."""
    losses = history["losses"]  # (K, S, T)
    K, S, T = losses.shape
    steps = csv_steps(T, K * S)
    rates = np.repeat(history["learning_rates"], S * steps.size)
    seeds = np.tile(np.repeat(history["seeds"], steps.size), K)
    step_col = np.tile(steps, K * S)
    values = losses[:, :, steps].reshape(-1)
    digits = 9 if values.dtype == np.float32 else 17  # enough to read back the same number
    lines = ["learning_rate,seed,step,loss"]
    lines += [f"{r!r},{s},{t},{v:.{digits}g}" for r, s, t, v in
              zip(rates.tolist(), seeds.tolist(), step_col.tolist(), values.tolist(), strict=True)]
    path = Path(folder) / LOSSES
    write_atomic(path, ("\n".join(lines) + "\n").encode())
    return path


def read(run_dir: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Loads a results folder's history (no pickle) and summary."""
    run_dir = Path(run_dir)
    for name in (HISTORY, SUMMARY):
        if not (run_dir / name).is_file():
            raise FileNotFoundError(f"{run_dir} is not a jaxgd results folder: no {name}")
    with np.load(run_dir / HISTORY, allow_pickle=False) as npz:
        history = {key: npz[key] for key in npz.files}
    summary = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8"))
    return history, summary
