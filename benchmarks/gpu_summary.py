"""The few numbers issue 11 asks for, read back from ``gpu_check.sh``'s JSON files and printed
as one short table, so that the end of a device call's output carries them.

``python -m benchmarks.gpu_summary OUT`` (the folder ``gpu_check.sh`` wrote).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _read(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def lines(out: Path) -> list[str]:
    """One line per measurement found in ``out`` (a missing file: one line saying so)."""
    found = []
    fused = _read(out / "fused.json")
    if fused is None:
        found.append("fused vs scan: no fused.json")
    else:
        for row in fused["rows"]:
            goal = "" if row["target_ms"] is None else f", goal ≤ {row['target_ms']} ms"
            same = row["same_converged_step"] and row["same_diverged_step"]
            found.append(f"{row['optimizer']} K={row['K']} T={row['T']}: {row['fused']} "
                         f"{row['fused_ms']:.3f} ms, {row['scan']} {row['scan_ms']:.3f} ms"
                         f"{goal}; max rel {row['max_rel_loss']:.1e}, verdicts "
                         f"{'same' if same else 'DIFFER'}")
    for name in ("scan_path.json", "scan_path_no_command_buffers.json"):
        scan = _read(out / name)
        if scan is None:
            found.append(f"{name}: missing")
            continue
        for row in scan["scan_path"]:
            if row["setting"] in ("default", "unroll=8"):
                program = "—" if row["us_per_step"] is None else f"{row['us_per_step']:.2f} µs/step"
                found.append(f"{name} K={row['K']} {row['setting']}: call "
                             f"{1e3 * row['call_s']:.2f} ms, {program}")
        direct = scan.get("direct_vs_hand")
        if direct:
            found.append(f"direct n={direct['n']} d={direct['d']} K={direct['K']} T={direct['T']}"
                         f" / hand-written: {direct['ratio_user']:.2f} as a user calls it, "
                         f"{direct['ratio_device']:.2f} from device arrays (goal ≤ 1.2)")
    return found


if __name__ == "__main__":
    print(f"## issue 11 numbers ({sys.argv[1]})")
    print("\n".join(lines(Path(sys.argv[1]))))
