"""The rows of the "Bad input" table (docs/guide/bad-input.md) that no other test file covers.

Library calls get a TypeError or ValueError that says what is wrong; the command line exits
with status 2 and a one-line message, no traceback and no results folder. The command line
runs in-process here (``cli.main``) so that these tests share one JAX start-up.
"""

import json
import os
import re
import stat
from pathlib import Path
from types import SimpleNamespace

import jax
import numpy as np
import optax
import pytest

import jaxgd
from jaxgd import cli
from jaxgd.api.settings import group
from jaxgd.cli import plan as plans
from jaxgd.cli import results
from jaxgd.cli.config import ConfigError, parse
from jaxgd.datasets import load_csv

X_OK, Y_OK = np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 3.5])
QUICK = ["--quiet", "--set", "train.num_steps=20", "--set", "output.figures=[]"]


@pytest.fixture
def jaxgd_cli(capsys):
    """Runs ``jaxgd ARGS`` in this process; returns (exit status, stderr)."""
    def run(*args):
        try:
            status = cli.main([str(a) for a in args])
        except SystemExit as done:  # argparse's usage errors
            status = done.code
        return status, capsys.readouterr().err
    return run


def assert_refused(status, err, message, *absent):
    assert status == 2, err
    assert message in err and "Traceback" not in err, err
    for path in absent:
        assert not path.exists(), path


# ------------------------------------------------------------------ library arguments

@pytest.mark.parametrize("function", [jaxgd.solve, lambda X, y: jaxgd.stability(X),
                                      lambda X, y: jaxgd.Standardizer.fit(X)],
                         ids=["solve", "stability", "Standardizer.fit"])
@pytest.mark.parametrize(
    ("X", "error", "match"),
    [
        (np.array([1.0, 2.0, 3.0]), ValueError, "must be 2-D"),
        (np.array([[1.0], [np.nan], [3.0]]), ValueError, "NaN or infinite"),
        (np.zeros((0, 1)), ValueError, "empty|no rows"),
    ],
)
def test_references_check_their_data_like_fit(function, X, error, match):
    with pytest.raises(error, match=match):
        function(X, Y_OK[: len(X)])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"X": [[1.0], [2.0, 3.0], [1.0]]}, TypeError, "X must be an array of numbers"),
        ({"X": np.array([[None], [1], [2]])}, TypeError, "X must hold numbers"),
        ({"learning_rate": True}, TypeError, "learning_rate must be a number"),
        ({"seed": 2**32}, ValueError, "seed must be < 2\\*\\*32"),
        ({"seed": 1.0}, TypeError, "seed must be an integer"),
        ({"tol": float("nan")}, ValueError, "tol must be finite and >= 0"),
        ({"optimizer": 3}, TypeError, "optimizer must"),
        ({"optimizer": optax.sgd(0.1)}, TypeError, "optimizer must"),
        ({"snapshot_steps": [9]}, ValueError, r"snapshot_steps must lie in \[0, num_steps=5\]"),
        ({"engine": "fast"}, ValueError, "engine must be one of"),
        ({"log_every": 0}, ValueError, "log_every must be >= 1"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, match):
    arguments = {"X": X_OK, "y": Y_OK, "learning_rate": 0.1, "num_steps": 5, **kwargs}
    with pytest.raises(error, match=match):  # old flat spellings, grouped into values here
        jaxgd.fit(**group(arguments))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"learning_rates": "0.1"}, TypeError, "learning_rates must be an array of numbers"),
        ({"seeds": [0, -1]}, ValueError, "seed.* must be >= 0"),
        ({"seeds": ["a"]}, TypeError, "seed.* must be an integer"),
        ({"chunk_size": 0}, ValueError, "chunk_size must be >= 1"),
    ],
)
def test_sweep_rejects_bad_arguments(kwargs, error, match):
    arguments = {"learning_rates": [0.1], "num_steps": 5, **kwargs}
    with pytest.raises(error, match=match):
        jaxgd.sweep(X_OK, Y_OK, **group(arguments))


def test_integer_and_boolean_data_are_numbers():
    result = jaxgd.fit(np.array([[1], [2], [3]]), np.array([1, 2, 4]), learning_rate=0.1,
                       num_steps=5)
    assert result.losses.dtype == jax.numpy.result_type(float)
    assert np.isfinite(jaxgd.fit(X_OK > 1, Y_OK, learning_rate=0.1, num_steps=5).final_loss)


def test_results_refuse_what_they_cannot_answer():
    grid = jaxgd.sweep(X_OK, Y_OK, learning_rates=[1e6], num_steps=20,
                       stopping=jaxgd.Stopping(reference=False))
    assert bool(grid.diverged[0])
    with pytest.raises(ValueError, match="every run diverged"):
        grid.best()
    with pytest.raises(ValueError, match="index needs 1"):
        grid.run((0, 0))
    with pytest.raises(IndexError):
        grid.run(5)
    with pytest.raises(ValueError, match="no reference loss"):
        _ = grid.gap


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_values_beyond_float32_are_refused_naming_the_column():
    # Finite in float64, infinite once cast to float32: refused before anything runs.
    X = np.column_stack([X_OK[:, 0], X_OK[:, 0] * 1e39])
    with pytest.raises(ValueError, match=r"squares exceed float32's range .* columns 1"):
        jaxgd.fit(X, Y_OK, learning_rate=0.1, num_steps=5)
    with pytest.raises(ValueError, match=r"y has values whose squares \(the loss\) exceed"):
        jaxgd.fit(X_OK, Y_OK * 1e39, learning_rate=0.1, num_steps=5)
    with jax.enable_x64(True):  # in float64 they are ordinary numbers
        jaxgd.fit(X, Y_OK, learning_rate=1e-80, num_steps=5,
                  stopping=jaxgd.Stopping(reference=False))
    # Found by a hostile review: float32 targets past 1.8e19 have an infinite loss from the
    # start (y² overflows), and were reported as a run diverged at step 0.
    with pytest.raises(ValueError, match=r"\|y\| > 1.84e\+19"):
        jaxgd.fit(X_OK.astype(np.float32), (Y_OK * 1e19).astype(np.float32) * 10,
                  learning_rate=0.1, num_steps=5)
    # Moments made in float64 (streamed data, or statistics given as the data) are checked
    # where an engine brings them to float32: a streamed .npy of such values trained every
    # run on infinities (found by the hostile review).
    stats = jaxgd.data.statistics.sufficient_statistics(X, Y_OK)
    for engine in ("gram", "eigen"):
        with pytest.raises(ValueError, match="sums of squares and products exceed float32"):
            jaxgd.fit(stats, None, learning_rate=0.1, num_steps=5, engine=engine)


# ------------------------------------------------------------------ CSV and other data files

def csv_config(tmp_path, data_name, features=("a",), target="b"):
    config = tmp_path / "c.toml"
    config.write_text(f"[data]\ndataset = 'csv'\npath = '{data_name}'\n"
                      f"features = {list(features)!r}\ntarget = '{target}'\n"
                      "[optimizer]\nlearning_rate = 0.1\n")
    return config


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_data_beyond_float32_in_a_config_exit_2_before_running(tmp_path, jaxgd_cli):
    # Found by a hostile review: in memory, a traceback and exit 1 telling a command-line
    # user to call jax.config.update; streamed from a .npy, no refusal at all, and every
    # run reported diverged on infinite moments.
    (tmp_path / "d.csv").write_text("a,b\n1,2\n2,1e39\n3,4\n")
    out = tmp_path / "out"
    assert_refused(*jaxgd_cli("run", csv_config(tmp_path, "d.csv"), "--out", out, *QUICK),
                   "y has values whose squares (the loss) exceed float32's range", out)
    assert_refused(*jaxgd_cli("run", "mlcc_cars", "--out", out, *QUICK, "--set",
                              "data.scale={weight_1000lbs=1e38}"),
                   "X has values whose squares exceed float32's range", out)
    np.save(tmp_path / "d.npy", np.column_stack([np.arange(5.0), np.arange(5.0) * 1e39]))
    (tmp_path / "n.toml").write_text("[data]\ndataset = 'npy'\npath = 'd.npy'\n"
                                     "[optimizer]\nlearning_rate = 0.001\n")
    assert_refused(*jaxgd_cli("run", tmp_path / "n.toml", "--out", out, *QUICK),
                   "sums of squares and products exceed float32's range", out)
    assert not out.exists()


@pytest.mark.parametrize(
    ("content", "api_error", "api_match", "cli_match"),
    [
        (b"\x89PNG\r\n\x1a\n\xff\xfe", ValueError, "d.csv' is not UTF-8 text",
         "is not UTF-8 text"),
        (b"a,b\n1," + b"9" * 200_000 + b"\n", ValueError,
         "line 2: field larger than field limit", "field larger than field limit"),
        (b"a,b\n1,\x002\n", ValueError, "is not a finite number", "is not a finite number"),
        (None, ValueError, "d.csv' is not UTF-8 text", "is not UTF-8 text"),  # an .npy file
    ],
    ids=["binary", "huge-field", "nul-byte", "npy-file"],
)
def test_unreadable_csv_files(tmp_path, jaxgd_cli, content, api_error, api_match, cli_match):
    path = tmp_path / "d.csv"
    if content is None:
        np.save(tmp_path / "d.npy", np.ones((3, 2)))
        (tmp_path / "d.npy").rename(path)
    else:
        path.write_bytes(content)
    with pytest.raises(api_error, match=api_match):
        load_csv(path, "a", "b")
    out = tmp_path / "out"
    assert_refused(*jaxgd_cli("run", csv_config(tmp_path, "d.csv"), "--out", out, *QUICK),
                   cli_match, out)


def test_a_folder_as_the_csv_file(tmp_path, jaxgd_cli):
    (tmp_path / "d.csv").mkdir()
    with pytest.raises(IsADirectoryError):
        load_csv(tmp_path / "d.csv", "a", "b")
    out = tmp_path / "out"
    assert_refused(*jaxgd_cli("run", csv_config(tmp_path, "d.csv"), "--out", out, *QUICK),
                   "Is a directory", out)


def test_a_csv_file_without_read_permission(tmp_path, jaxgd_cli, monkeypatch):
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # root reads it anyway: pretend
        import jaxgd.datasets.csv as csv_module

        def refuse(name, *args, **kwargs):
            raise PermissionError(13, "Permission denied", str(name))

        monkeypatch.setattr(csv_module, "open", refuse, raising=False)
    path.chmod(0)
    try:
        with pytest.raises(PermissionError):
            load_csv(path, "a", "b")
        out = tmp_path / "out"
        assert_refused(*jaxgd_cli("run", csv_config(tmp_path, "d.csv"), "--out", out,
                                  *QUICK), "Permission denied", out)
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_a_large_csv_file_loads_and_running_out_of_memory_is_a_message(
        tmp_path, jaxgd_cli, monkeypatch):
    rows = 100_000
    path = tmp_path / "d.csv"
    table = np.column_stack([np.arange(rows) % 97, np.arange(rows) % 89])
    path.write_text("a,b\n" + "\n".join(f"{a},{b}" for a, b in table) + "\n")
    assert load_csv(path, "a", "b").X.shape == (rows, 1)

    def exhausted(*_, **__):
        raise MemoryError

    monkeypatch.setattr(jaxgd.datasets, "load_csv", exhausted)
    out = tmp_path / "out"
    assert_refused(*jaxgd_cli("run", csv_config(tmp_path, "d.csv"), "--out", out, *QUICK),
                   "not enough memory to load", out)


def test_npy_files_are_read_without_pickle(tmp_path):
    path = tmp_path / "d.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="without pickle"):
        next(jaxgd.datasets.npy_blocks(path))


def test_no_pickle_and_no_code_execution_in_the_package():
    package = Path(jaxgd.__file__).parent
    pattern = re.compile(r"allow_pickle\s*=\s*True|import pickle|\beval\(|\bexec\(|"
                         r"pickle\.load|yaml\.load\(")
    offenders = [f"{path.name}:{number}" for path in package.rglob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []


# ------------------------------------------------------------------ configs and flags

def settings(dataset="csv", **changes):
    """A stand-in config with the keys ``plans.check_supported`` reads, plus ``changes``."""
    sections = {"data": {"dataset": dataset, "stream": False, "standardize": False,
                         "features": None, "target": None, "target_column": -1},
                "optimizer": {"grid": {}, "name": "sgd"},
                "train": {"batch_size": None, "epochs": None, "l2": 0.0, "log_every": 1,
                          "engine": "auto"}}
    for key, value in changes.items():
        section, name = key.split("__")
        sections[section][name] = value
    return SimpleNamespace(**{k: SimpleNamespace(**v) for k, v in sections.items()})


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (settings(data__stream=True, data__standardize=True),
         "data.standardize = true needs the rows in memory, and data.stream = true reads"),
        (settings("npy", data__standardize=True), "data.dataset = 'npy' reads the file only"),
        (settings(data__block_rows=100), "data.block_rows is only for streamed data"),
        (settings("npy", data__features=("a",)), "a .npy file's columns have no names"),
        (settings(data__target_column=0), "data.target_column is only for data.dataset"),
    ],
)
def test_data_keys_jaxgd_run_cannot_honour_yet_are_refused(config, message):
    """Streamed data keep no rows in memory: standardizing them is refused (the rest,
    mini-batch SGD included, is honoured, or refused by the library)."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        plans.check_supported(config)
    for honoured in (settings(), settings("npy"), settings(data__stream=True),
                     settings(train__batch_size=4, train__epochs=2), settings(train__l2=0.1),
                     settings(data__stream=True, train__batch_size=4, train__epochs=2),
                     settings("npy", train__batch_size=4, train__epochs=2,
                              optimizer__grid={"batch_seed": (3,)}, data__block_rows=100)):
        plans.check_supported(honoured)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[train]\nbatch_size = 4\nepochs = 2\nengine = 'eigen'",
         "train.engine='eigen': mini-batch SGD needs train.engine='direct' (or 'auto'): the "
         "eigen engine sees the data only as a whole, through its moments"),
        ("[optimizer]\nname = 'adam'\n[train]\nengine = 'eigen'",
         "train.engine='eigen' is exact only for sgd, momentum, nesterov with one l2 for all "
         "runs, but optimizer 'adam' scales each coordinate"),
        ("[optimizer]\ngrid = { l2 = [0.0, 1.0] }\n[train]\nengine = 'eigen'",
         "train.engine='eigen' is exact only for sgd, momentum, nesterov with one l2 for all "
         "runs, but l2 varies across the runs"),
        ("[train]\nbatch_size = 4\nepochs = 2\nstop_at_convergence = true",
         "train.stop_at_convergence is for full-batch runs"),
        ("[train]\nnum_steps = 5\nsnapshot_steps = [0, 9]",
         "train.snapshot_steps must lie in [0, num_steps=5], got [9]"),
    ],
)
def test_settings_the_library_refuses_name_the_config_key(text, message):
    """The library's own refusals, in the config's words, when the config is read (those
    that need no data) or the run is planned: before anything is written."""
    head = "[data]\ndataset = 'mlcc_cars'\n[optimizer]\nlearning_rate = 0.01\n"
    with pytest.raises(ConfigError, match=re.escape(message)):
        plans.prepare(parse(head + text.replace("[optimizer]\n", "")))
    plans.prepare(parse(head))  # the rest of the config is fine


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "data.path=x.csv"], "data.path is only for data.dataset = 'csv'"),
        (["--set", "data.dataset=mlcc_cars", "--set", "data.features=['weight']"],
         "has fixed columns"),
        (["--set", "data.scale={wieght=2}"], "data.scale names ['wieght']"),
        (["--set", "data.scale={weight=1e306}"], "overflow"),
        (["--set", "train.num_steps=1000000000000"], "train.num_steps must be <= 2147483647"),
        (["--set", "train.num_steps=2000000000"], "more than this machine's"),
        (["--set", "data.dataset=synthetic", "--set", "data.features=none", "--set",
          "data.target=none", "--set", "data.scale={}", "--set", "data.n_samples=100000000000"],
         "more than this machine's"),
        (["--set", "output.figures=['../x']"], "output.figures[0] = '../x' is not known"),
        (["--set", "train.num_steps.x=1"], "num_steps is not a section"),
        (["--set", "train.num_steps"], "--set needs key=value"),
        (["--set", "=3"], "--set needs key=value"),
        (["--chunk-size", "0"], "--chunk-size: must be >= 1"),
        (["--chunk-size", "two"], "--chunk-size: must be a whole number"),
        (["--resume", "--overwrite"], "not allowed with argument"),
        (["--frobnicate"], "unrecognized arguments"),
    ],
)
def test_bad_flags_and_config_values_exit_2(tmp_path, jaxgd_cli, args, message):
    out = tmp_path / "out"
    status, err = jaxgd_cli("run", "--out", out, *args)
    assert_refused(status, err, message, out)
    assert list(tmp_path.iterdir()) == []


def test_the_memory_check_counts_the_hessian_before_drawing_the_data(tmp_path, jaxgd_cli,
                                                                     monkeypatch):
    """10⁶ features: 200 × 10⁶ rows fit, their 10⁶ × 10⁶ Hessian (7.28 TiB) does not."""
    def never(*_, **__):
        raise AssertionError("the data were drawn before the memory check")

    monkeypatch.setattr(jaxgd.datasets, "synthetic", never)
    out = tmp_path / "out"
    status, err = jaxgd_cli("run", "synthetic", "--out", out, "--set",
                            "data.n_features=1000000")
    assert_refused(status, err, "data.n_features = 1000000 makes the 1000001 × 1000001 "
                   "float64 Hessian", out)
    assert "would take" in err and "more than this machine's" in err


def test_the_memory_check_counts_the_write_stage(tmp_path, jaxgd_cli, monkeypatch):
    """4,000 runs × 10⁵ steps: 1.6 GB of history, ~15 GB to assemble, write and draw it."""
    from jaxgd.cli import data, execute

    monkeypatch.setattr(data, "_memory_bytes", lambda: 8 * 2**30)  # an 8 GiB machine
    monkeypatch.setattr(execute, "run_chunk", lambda *_: pytest.fail("a chunk ran"))
    rates = ", ".join(f"{r:.6g}" for r in np.geomspace(1e-3, 0.9, 1000))
    out = tmp_path / "out"
    status, err = jaxgd_cli("run", "synthetic", "--out", out, "--set",
                            f"optimizer.learning_rates=[{rates}]", "--set",
                            "model.seeds=[0, 1, 2, 3]", "--set", "train.num_steps=100000")
    assert_refused(status, err, "the history of 1000 learning rates × 4 seeds × 100000 steps "
                   "(assembled, written and drawn) would take", out)


SAMPLED_RUN = ["--set", "optimizer.name='adam'", "--set", "optimizer.learning_rates=none",
               "--set", "optimizer.sample={learning_rate=['log', 1e-4, 1.0], "
               "b1=['uniform', 0.5, 0.9]}"]


def test_a_sample_too_large_to_draw_is_refused_before_drawing(tmp_path, jaxgd_cli,
                                                              monkeypatch):
    """2**32 points (Sobol's most) of 2 hyperparameters: ~300 GiB to draw; it used to be a
    32 GiB MemoryError traceback, drawn while the config was read."""
    from jaxgd.inputs import validation
    from jaxgd.tuning import search

    monkeypatch.setattr(validation, "memory_bytes", lambda: 8 * 2**30)  # an 8 GiB machine
    monkeypatch.setattr(search, "unit_points", lambda *_: pytest.fail("points were drawn"))
    out = tmp_path / "out"
    status, err = jaxgd_cli("run", "synthetic", "--out", out, *SAMPLED_RUN, "--set",
                            "optimizer.num_samples=4294967296")
    assert_refused(status, err, "optimizer.num_samples = 4294967296: drawing 4294967296 "
                   "points of 2 hyperparameters would take", out)
    assert "more than this machine's 8.0 GiB of memory" in err


def test_a_sample_whose_runs_do_not_fit_is_refused_before_drawing(tmp_path, jaxgd_cli,
                                                                  monkeypatch):
    """2**24 points draw in ~1 GiB, but their runs' history does not fit: refused by the
    memory check of the run's stages, before a point is drawn (it used to draw them all,
    as Python floats, first: 134,217,728 points took 70 s and 5.7 GB)."""
    from jaxgd.cli import data, execute
    from jaxgd.inputs import validation
    from jaxgd.tuning import search

    monkeypatch.setattr(validation, "memory_bytes", lambda: 8 * 2**30)
    monkeypatch.setattr(data, "_memory_bytes", lambda: 8 * 2**30)
    monkeypatch.setattr(search, "unit_points", lambda *_: pytest.fail("points were drawn"))
    monkeypatch.setattr(execute, "run_chunk", lambda *_: pytest.fail("a chunk ran"))
    out = tmp_path / "out"
    status, err = jaxgd_cli("run", "synthetic", "--out", out, *SAMPLED_RUN, "--set",
                            "optimizer.num_samples=16777216")
    assert_refused(status, err, "the history of 16777216 learning rates", out)
    assert "would take" in err and "more than this machine's 8.0 GiB" in err


def test_unreadable_config_files(tmp_path, jaxgd_cli):
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    assert_refused(*jaxgd_cli("run", binary, "--out", tmp_path / "out"),
                   "cannot read config file")
    (tmp_path / "folder.toml").mkdir()
    assert_refused(*jaxgd_cli("run", tmp_path / "folder.toml", "--out", tmp_path / "out"),
                   "config file not found")
    assert not (tmp_path / "out").exists()


def test_a_config_is_data_never_code(tmp_path, jaxgd_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = "__import__('os').system('touch pwned')"
    with pytest.raises(ConfigError, match="is not known"):
        parse(f'[data]\ndataset = "{code}"\n[optimizer]\nlearning_rate = 0.1\n')
    status, err = jaxgd_cli("run", "mlcc_cars", "--out", tmp_path / "out", *QUICK,
                            "--set", f"title={code}")
    assert status == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["config"]["title"] == code and not (tmp_path / "pwned").exists()


def test_out_must_be_a_folder_that_can_be_written(tmp_path, jaxgd_cli):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    for overwrite in ([], ["--overwrite"]):
        assert_refused(*jaxgd_cli("run", "mlcc_cars", "--out", blocker, *QUICK, *overwrite),
                       "is a file, not a folder")
    assert blocker.read_text() == "mine"
    assert_refused(*jaxgd_cli("run", "mlcc_cars", "--out", blocker / "run", *QUICK),
                   "cannot write results to")


def test_crafted_figure_names_never_become_paths(tmp_path, jaxgd_cli):
    with pytest.raises(ConfigError, match="is not known"):
        parse("[optimizer]\nlearning_rate = 0.1\n[output]\nfigures = ['../../x']\n")
    out = tmp_path / "out"
    assert jaxgd_cli("run", "mlcc_cars", "--out", out, *QUICK)[0] == 0
    summary = json.loads((out / "summary.json").read_text())
    summary["config"]["output"]["figures"] = ["../x"]
    (out / "summary.json").write_text(json.dumps(summary))
    assert_refused(*jaxgd_cli("plot", out), "'../x' is not known")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def nested(depth, open_="[", close="]"):
    return open_ * depth + close * depth


@pytest.mark.parametrize("value", [nested(5000), nested(5000, "{a = ", "}")],
                         ids=["arrays", "tables"])
def test_deeply_nested_toml_is_not_valid_toml(tmp_path, jaxgd_cli, value):
    # Python's TOML parser recurses once a level: past its limit a RecursionError, which
    # must be a config error like any other invalid TOML, naming the file or the --set.
    config, out = tmp_path / "deep.toml", tmp_path / "out"
    config.write_text(f"title = {value}\n[optimizer]\nlearning_rate = 0.1\n")
    assert_refused(*jaxgd_cli("run", config, "--out", out, *QUICK),
                   f"{config} is not valid TOML: too deeply nested", out)
    assert_refused(*jaxgd_cli("run", "mlcc_cars", "--out", out, *QUICK, "--set",
                              f"title={value}"),
                   f"--set title: the value {value[:20]}... is not valid TOML: too deeply "
                   "nested", out)
    with pytest.raises(ConfigError, match="config is not valid TOML: too deeply nested"):
        parse(f"title = {value}\n")


def test_deeply_nested_json_in_a_manifest_or_marker_is_a_damaged_file(tmp_path, jaxgd_cli):
    out = tmp_path / "out"
    (out / results.PARTIAL).mkdir(parents=True)
    (out / results.PARTIAL / "manifest.json").write_text(nested(100_000))
    assert_refused(*jaxgd_cli("run", "mlcc_cars", "--out", out, *QUICK, "--resume"),
                   "manifest.json is damaged (too deeply nested")
    done = tmp_path / "done"
    assert jaxgd_cli("run", "mlcc_cars", "--out", done, *QUICK)[0] == 0
    (done / results.MARKER).write_text(nested(100_000))  # lists nothing, as when damaged
    status, err = jaxgd_cli("run", "mlcc_cars", "--out", done, *QUICK, "--overwrite")
    assert status == 0 and "Traceback" not in err, err


# ------------------------------------------------------------------ saved results

@pytest.fixture
def finished(tmp_path, jaxgd_cli):
    out = tmp_path / "run"
    assert jaxgd_cli("run", "mlcc_cars", "--out", out, *QUICK)[0] == 0
    return out


def test_history_is_plain_arrays_that_load_without_pickle(finished):
    with np.load(finished / results.HISTORY, allow_pickle=False) as npz:
        assert all(npz[key].dtype != object for key in npz.files)
    history, summary = results.read(finished)
    assert history["losses"].shape == (3, 1, 20) and summary["best_run"] is not None


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda out: (out / "history.npz").write_bytes(b"garbage"), "is damaged or not an .npz"),
        (lambda out: np.savez(out / "history.npz", losses=np.array([{"a": 1}], dtype=object)),
         "only unpickling could read"),
        (lambda out: (out / "summary.json").write_text("{"), "is damaged or not JSON"),
        (lambda out: (out / "summary.json").write_text("[1, 2]"), "not a JSON object"),
        (lambda out: (out / "summary.json").write_text(
            '{"config": {"optimizer": {"learning_rate": 0.1}}}'), "has no 'data'"),
        (lambda out: (out / "summary.json").unlink(), "not a jaxgd results folder"),
        (lambda out: (out / "summary.json").write_text(nested(100_000)),
         "summary.json is damaged or not JSON: too deeply nested"),
        (lambda out: (out / "summary.json").write_text(
            '{"config": {"output": {"title": ' + nested(100_000, '{"a": ', "}") + "}}}"),
         "summary.json is damaged or not JSON: too deeply nested"),
    ],
    ids=["history-garbage", "history-pickle", "summary-garbage", "summary-list",
         "summary-keys", "summary-missing", "summary-deep", "summary-deep-value"],
)
def test_plot_names_a_damaged_results_folder(finished, jaxgd_cli, damage, message):
    damage(finished)
    assert_refused(*jaxgd_cli("plot", finished), message)


# ------------------------------------------------------------------ numerical hazards

def no_nan(text):
    def refuse(constant):
        raise AssertionError(f"{constant} in JSON")
    return json.loads(text, parse_constant=refuse)


def test_a_diverging_float32_run_is_flagged_through_the_cli(tmp_path, jaxgd_cli):
    out = tmp_path / "out"
    status, err = jaxgd_cli("run", "mlcc_cars", "--out", out, *QUICK,
                            "--set", "optimizer.learning_rates=[0.01, 1e6]")
    assert status == 0, err
    summary = no_nan((out / "summary.json").read_text())
    assert [run["diverged"] for run in summary["runs"]] == [False, True]
    assert summary["best_run"]["learning_rate"] == 0.01

    alone = tmp_path / "alone"
    status, err = jaxgd_cli("run", "mlcc_cars", "--out", alone, "--set",
                            "optimizer.learning_rates=[1e6]", "--set", "train.num_steps=20")
    assert status == 0, err
    summary = no_nan((alone / "summary.json").read_text())
    assert summary["best_run"] is None and summary["runs"][0]["diverged"]
    drawn = {p.name for p in alone.glob("*.png")}
    assert drawn and not drawn & {"loss_curve.png", "snapshots.png"}  # they need a best run


def test_nan_never_reaches_the_summary_or_the_best_run(tmp_path, jaxgd_cli, capsys):
    # Targets near 1e18 make the initial loss ~1e37: one step at a huge learning rate
    # overflows float32 to inf, then NaN.
    out = tmp_path / "out"
    status, err = jaxgd_cli("run", "synthetic", "--out", out, "--set", "data.scale={y=1e18}",
                            "--set", "data.standardize=true", "--set", "train.num_steps=50",
                            "--set", "optimizer.learning_rates=[0.1, 0.5, 1e6, 1e30]",
                            "--set", "output.figures=['sweep_summary', 'loss_curve']")
    assert status == 0, err
    history, _ = results.read(out)
    assert not np.isfinite(history["final_loss"][2:]).any() or jax.config.jax_enable_x64
    summary = no_nan((out / "summary.json").read_text())
    assert [run["final_loss"] is None for run in summary["runs"]][2:] == [True, True]
    best = summary["best_run"]
    assert not best["diverged"] and best["learning_rate"] in (0.1, 0.5)
    assert all(np.isfinite(list(best["weight"].values()))) and np.isfinite(best["bias"])
    assert (out / "sweep_summary.png").is_file() and (out / "loss_curve.png").is_file()


def test_badly_conditioned_features_get_a_warning(tmp_path, jaxgd_cli):
    out = tmp_path / "out"
    status, err = jaxgd_cli("run", "auto_mpg", "--out", out, "--set", "data.scale={}",
                            "--set", "train.num_steps=20", "--set", "output.figures=[]")
    assert status == 0, err
    assert "warning: the features are badly conditioned" in err
    assert "data.standardize = true" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["warnings"] and "condition number" in summary["warnings"][0]
    assert not plans.conditioning_warnings(jaxgd.stability(X_OK), standardized=False)


def test_linearly_dependent_standardized_features_get_a_warning(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,c\n" + "".join(f"{i},{2 * i},{i % 3}\n"
                                                        for i in range(10)))
    config = tmp_path / "c.toml"
    config.write_text("[data]\ndataset = 'csv'\npath = 'd.csv'\nfeatures = ['a', 'b']\n"
                      "target = 'c'\nstandardize = true\n[optimizer]\nlearning_rate = 0.1\n")
    plan = plans.prepare(cli.load_config(str(config), [])[0])
    assert "linearly dependent" in plan.warnings[0]


# ------------------------------------------------------------------ the docs' table itself

def table_rows():
    page = (Path(__file__).parents[2] / "docs" / "guide" / "bad-input.md").read_text()
    section = page.split("# Bad input", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    return [row for row in rows[2:] if not row.startswith("| **")]  # skip header, groups


def test_every_row_of_the_bad_input_table_names_tests_that_exist():
    tests = Path(__file__).parents[1]
    rows = table_rows()
    assert len(rows) > 40
    for row in rows:
        names = re.findall(r"`([\w./]+::)?(test_\w+)`", row.rsplit("|", 2)[-2])
        assert names, f"no test for: {row}"
        for file, name in names:
            source = (tests / (file[:-2] if file else "cli/test_bad_input.py")).read_text()
            assert f"def {name}(" in source, f"{file}{name} does not exist"
