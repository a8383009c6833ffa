"""benchmarks.gpu_summary: the short table at the end of gpu_check.sh's output."""

import json

from benchmarks.gpu_summary import lines


def test_reads_the_numbers_back_and_names_what_is_missing(tmp_path):
    fused = {"rows": [{"optimizer": "sgd", "K": 8192, "T": 1000, "fused": "eigen-fused",
                       "scan": "eigen", "fused_ms": 0.25, "scan_ms": 18.8, "target_ms": 0.5,
                       "max_rel_loss": 3e-6, "same_converged_step": True,
                       "same_diverged_step": False}]}
    scan = {"scan_path": [{"K": 8192, "setting": "default", "call_s": 0.0123,
                           "us_per_step": 9.2},
                          {"K": 8192, "setting": "no snapshots", "call_s": 1.0,
                           "us_per_step": 1.0}],
            "direct_vs_hand": {"n": 10**6, "d": 32, "K": 64, "T": 200, "ratio_user": 3.4,
                               "ratio_device": 2.0}}
    (tmp_path / "fused.json").write_text(json.dumps(fused))
    (tmp_path / "scan_path.json").write_text(json.dumps(scan))
    found = lines(tmp_path)
    assert found[0] == ("sgd K=8192 T=1000: eigen-fused 0.250 ms, eigen 18.800 ms, goal ≤ 0.5 "
                        "ms; max rel 3.0e-06, verdicts DIFFER")
    assert found[1] == "scan_path.json K=8192 default: call 12.30 ms, 9.20 µs/step"
    assert "3.40 as a user calls it, 2.00 from device arrays" in found[2]
    assert found[3] == "scan_path_no_command_buffers.json: missing"
    assert len(found) == 4  # the "no snapshots" row is not part of the summary
