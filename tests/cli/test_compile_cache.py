"""The command line keeps its compiled programs between runs (jaxgd.cli.compile_cache)."""

import os
import subprocess
import sys
from pathlib import Path

from jaxgd.cli import compile_cache

ROOT = Path(__file__).parents[2]


def test_where_the_programs_go():
    default = compile_cache.resolve({})
    assert default.folder == compile_cache.default_folder({}) and "default" in default.reason
    assert compile_cache.resolve({"XDG_CACHE_HOME": "/x"}).folder == Path("/x/jaxgd/compiled")
    moved = compile_cache.resolve({"JAXGD_CACHE_DIR": "/tmp/elsewhere"})
    assert moved.folder == Path("/tmp/elsewhere")
    for off in ("", "off", "OFF", "none"):
        state = compile_cache.resolve({"JAXGD_CACHE_DIR": off})
        assert state.folder is None and "JAXGD_CACHE_DIR" in state.reason
    jax_own = compile_cache.resolve({"JAX_COMPILATION_CACHE_DIR": "/j", "JAXGD_CACHE_DIR": "off"})
    assert jax_own.folder == Path("/j") and "JAX's own" in jax_own.reason


def test_a_folder_that_cannot_be_written_turns_the_cache_off_not_the_run(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    state = compile_cache.enable({"JAXGD_CACHE_DIR": str(blocker / "cache")})
    assert state.folder is None and "cannot be written" in state.reason
    assert not (blocker / "cache").exists()
    line = compile_cache.describe(state)
    assert line.startswith("off:") and str(blocker) in line


def _cli(*args, cache):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_")}
    env.update(PYTHONPATH=str(ROOT), JAXGD_CACHE_DIR=str(cache))
    return subprocess.run([sys.executable, "-m", "jaxgd", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=240)


def test_the_second_run_loads_every_program_and_compiles_none(tmp_path):
    cache = tmp_path / "programs"
    small = ["--set", "train.num_steps=40", "--set", "output.figures=[]", "--quiet"]
    first = _cli("run", "mlcc_cars", "--out", tmp_path / "one", *small, cache=cache)
    assert first.returncode == 0, first.stderr
    kept = sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache"))
    assert len(kept) >= 2  # the sweep and the best run's path, at least
    second = _cli("run", "mlcc_cars", "--out", tmp_path / "two", *small, cache=cache)
    assert second.returncode == 0, second.stderr
    # Every program is kept however short its compile, so a program compiled again would
    # have added an entry.
    assert sorted(p.name for p in cache.iterdir() if p.name.endswith("-cache")) == kept
    info = _cli("info", cache=cache)
    assert f"cache    {cache} ({len(kept)} programs" in info.stdout


def test_an_unwritable_cache_never_fails_a_run(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    done = _cli("run", "mlcc_cars", "--out", tmp_path / "out", "--set", "train.num_steps=40",
                "--set", "output.figures=[]", cache=blocker / "cache")
    assert done.returncode == 0, done.stderr
    assert "converged at" in done.stdout and done.stderr == ""
    info = _cli("info", cache=blocker / "cache")
    assert "cache    off:" in info.stdout and "cannot be written" in info.stdout
