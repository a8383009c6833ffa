"""Shared test data: small, fixed problems so that compiled programs are reused across tests."""

import atexit
import contextlib
import gc
import os
import shutil
import signal
import tempfile

import jax
import numpy as np
import pytest


def _share_compiled_programs() -> None:
    """JAX's persistent compilation cache for the whole session and its child processes, in
    a new temporary folder (removed at exit), so every test still passes with it empty: a
    program compiled once is loaded, not compiled again, by a later test file (the fixture
    below drops the in-memory programs) or by a ``jaxgd run`` in a subprocess. Every program
    is kept, however short its compile; ``JAXGD_TEST_CACHE=off`` runs the suite without."""
    if os.environ.get("JAXGD_TEST_CACHE", "").lower() == "off":
        return
    folder = os.environ.get("JAXGD_TEST_CACHE_DIR")
    if folder is None:  # the first process of the session (pytest-xdist's workers reuse it)
        folder = tempfile.mkdtemp(prefix="jaxgd-test-cache-")
        os.environ["JAXGD_TEST_CACHE_DIR"] = folder
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    settings = {"jax_compilation_cache_dir": folder,
                "jax_persistent_cache_min_compile_time_secs": 0.0,
                "jax_persistent_cache_min_entry_size_bytes": -1}
    for name, value in settings.items():
        jax.config.update(name, value)
        os.environ[name.upper()] = str(value)  # children read JAX's settings from here


_share_compiled_programs()

#: The test files that take longest, longest first (each file's summed test times in a full
#: run on the 2-core VM, 2026-12-08, from ``python -m pytest --junitxml=FILE``). pytest-xdist
#: hands whole files to its workers in collection order (``--no-loadscope-reorder`` in
#: pyproject.toml), each worker taking the next file when it is free: the longest go first,
#: so that the last files to start are short and the workers end together (a long file
#: started last keeps one worker busy alone). Files not named keep their order, after these.
LONGEST_FIRST = (
    "tests/package/test_docs.py",
    "tests/engines/test_fused.py",
    "tests/api/test_transformations.py",
    "tests/api/test_fold_gradients.py",
    "tests/cli/test_cli_scaleout.py",
    "tests/api/test_model_sweep.py",
    "tests/bench/test_bench.py",
    "tests/pipeline/test_holdout.py",
    "tests/cli/test_cli.py",
    "tests/pipeline/test_sharding.py",
    "tests/cli/test_holdout_cli.py",
    "tests/cli/test_lr_range.py",
    "tests/pipeline/test_holdout_selection.py",
    "tests/cli/test_refine_config.py",
    "tests/api/test_init.py",
    "tests/pipeline/test_streaming.py",
    "tests/tuning/test_segments.py",
    "tests/core/test_verdicts.py",
    "tests/cli/test_signals.py",
    "tests/cli/test_resume.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Puts the files of ``LONGEST_FIRST`` first, in its order (a stable sort: each file's
    tests keep their order)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


COURSE_CARS_X = np.array([[3.5], [3.69], [3.44], [3.43], [4.34], [4.42], [2.37]])
COURSE_CARS_Y = np.array([18.0, 15.0, 18.0, 16.0, 15.0, 14.0, 24.0])


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drops JAX's compiled programs after each test file. The suite compiles thousands of
    programs; with all of them kept in one process, XLA's compiler crashed with a segmentation
    fault two thirds of the way through a full run, most likely at the kernel's limit on
    memory maps (vm.max_map_count, 65,530): one file alone took the process to 13,505
    mappings. Tests within a file still share their programs."""
    yield
    jax.clear_caches()
    gc.collect()


@pytest.fixture
def cars():
    """The crash course's seven cars: weight in 1000s of pounds -> miles per gallon."""
    return COURSE_CARS_X.copy(), COURSE_CARS_Y.copy()


def well_conditioned(seed: int, n: int = 64, d: int = 3, noise: float = 0.1):
    """Standard-normal features with known weight and bias; float64 NumPy arrays."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    weight, bias = rng.standard_normal(d), rng.standard_normal()
    y = X @ weight + bias + noise * rng.standard_normal(n)
    return X, y


@pytest.fixture
def problem():
    return well_conditioned(0)


@pytest.fixture(params=[False, True], ids=["float32", "float64"])
def x64(request):
    """Each test that asks for it runs twice: in float32, and with x64 on (float64)."""
    with jax.enable_x64(request.param):
        yield request.param


#: What JAX reports when it traces a function to a program and when XLA compiles one.
TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def compiles():
    """Lists the traces and XLA compilations in the block, as JAX reports them through
    ``jax.monitoring`` (no private name is patched). The listener stops listening when the
    block ends, and is unregistered."""
    events = []
    listening = True

    def listener(event, duration, **_):
        if listening and event in (TRACE_EVENT, COMPILE_EVENT):
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield events
    finally:
        listening = False
        jax.monitoring.unregister_event_duration_listener(listener)


def as_in_a_terminal() -> None:
    """In the child before exec: Ctrl-C's default action, as a command typed in a terminal
    has it. A suite started in the background (``cmd &`` in a script, as CI may be) ignores
    SIGINT, every process it starts inherits that, and Python then leaves SIGINT ignored
    until jaxgd installs its own handler: a Ctrl-C in the first instants was lost (the run
    went on to exit 0)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
