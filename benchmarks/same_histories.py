"""Do two versions of jaxgd write the same ``history.npz`` for every shipped config?

``python -m benchmarks.same_histories --against REV`` (from the repository root) checks out
``REV`` (a commit, branch or tag) into a temporary git worktree, runs ``jaxgd run NAME`` for
every shipped config with that version and with the working tree's, each in its own process,
and compares every array of the two ``history.npz`` files bit for bit. It prints one line per
config and array that differs (with the largest relative difference) or is missing, and exits 1
if any does; arrays only the new version writes are listed, and are no difference.

``--only NAME`` (repeatable) limits the configs; ``--keep DIR`` keeps both results folders.
A refactoring must leave every array identical; a deliberate change of numbers (a new loss
formula, say) shows here with its size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def shipped_configs(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / "jaxgd" / "configs").glob("*.toml"))


def run_config(source: Path, name: str, out: Path) -> None:
    """``jaxgd run name`` with the package found at ``source`` (first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(source), "JAX_PLATFORMS": "cpu"}
    command = [sys.executable, "-m", "jaxgd", "run", name, "--out", str(out), "--quiet"]
    done = subprocess.run(command, env=env, cwd=out.parent, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{name} at {source} failed ({done.returncode}):\n{done.stderr}")


def differences(old: Path, new: Path) -> list[str]:
    """One line per array of ``history.npz`` that is not the same, bit for bit, or that the
    new one lacks (an array only the new one has is no difference: see ``additions``)."""
    with np.load(old / "history.npz", allow_pickle=False) as a, \
            np.load(new / "history.npz", allow_pickle=False) as b:
        lines = [f"missing: {key}" for key in sorted(set(a.files) - set(b.files))]
        for key in sorted(set(a.files) & set(b.files)):
            x, z = a[key], b[key]
            if x.shape != z.shape or x.dtype != z.dtype:
                lines.append(f"{key}: {x.dtype}{x.shape} vs {z.dtype}{z.shape}")
            elif x.tobytes() != z.tobytes():
                lines.append(f"{key}: differs, largest relative difference "
                             f"{_relative(x, z):.3g}")
    return lines


def additions(old: Path, new: Path) -> list[str]:
    """The arrays only the new ``history.npz`` has: new fields, which change no number."""
    with np.load(old / "history.npz", allow_pickle=False) as a, \
            np.load(new / "history.npz", allow_pickle=False) as b:
        return sorted(set(b.files) - set(a.files))


def _relative(x: np.ndarray, z: np.ndarray) -> float:
    if not np.issubdtype(x.dtype, np.number):
        return float("nan")
    x, z = x.astype(np.float64), z.astype(np.float64)
    both = np.isfinite(x) & np.isfinite(z)
    if (np.isfinite(x) != np.isfinite(z)).any():
        return float("inf")
    scale = np.maximum(np.abs(x[both]), np.abs(z[both]))
    gap = np.abs(x[both] - z[both])
    return float(np.max(gap / np.where(scale > 0, scale, 1.0), initial=0.0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, help="the git revision to compare with")
    parser.add_argument("--only", action="append", help="a config name (repeatable)")
    parser.add_argument("--keep", type=Path, help="keep both results folders here")
    args = parser.parse_args(argv)
    names = args.only or shipped_configs(ROOT)
    work = Path(args.keep or tempfile.mkdtemp(prefix="jaxgd-same-"))
    work.mkdir(parents=True, exist_ok=True)
    old_tree = work / "old-tree"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force",
                    str(old_tree), args.against], check=True, capture_output=True)
    failed = False
    try:
        for name in names:
            old, new = work / f"old-{name}", work / f"new-{name}"
            run_config(old_tree, name, old)
            run_config(ROOT, name, new)
            lines = differences(old, new)
            failed |= bool(lines)
            added = additions(old, new)
            print(f"{name}: " + ("identical" if not lines else "DIFFERENT")
                  + (f" (and new arrays: {', '.join(added)})" if added and not lines else ""))
            for line in lines:
                print(f"  {line}")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)],
                       check=False, capture_output=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
