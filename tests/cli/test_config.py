from pathlib import Path

import pytest

from jaxgd.cli import config
from jaxgd.cli.config import ConfigError, parse
from jaxgd.cli.shipped import shipped_configs

RATE = "[optimizer]\nlearning_rate = 0.1\n"


def test_defaults_and_a_single_learning_rate():
    c = parse(RATE)
    assert c.learning_rates == (0.1,) and c.data.dataset == "auto_mpg"
    assert c.train.num_steps == 1000 and c.output.figures == config.FIGURES
    assert c.to_dict()["optimizer"]["learning_rate"] == 0.1


def test_every_shipped_config_parses_and_the_top_level_folder_matches():
    names = shipped_configs()
    assert {"auto_mpg", "auto_mpg_all_features", "mlcc_cars", "synthetic"} <= set(names)
    top = Path(__file__).parents[2] / "configs"
    for name in names:
        config.load(top / f"{name}.toml")
        packaged = Path(config.__file__).parents[1] / "configs" / f"{name}.toml"
        assert (top / f"{name}.toml").read_text() == packaged.read_text()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[train]\nnum_stepz = 3\n" + RATE,
         r"unknown key 'train.num_stepz'. Did you mean 'num_steps'\? Valid keys in \[train\]"),
        ("colour = 1\n" + RATE, "unknown key 'colour'"),
        ("[train]\nnum_steps = 'many'\n" + RATE, r"train.num_steps must be an integer, got 'many'"),
        ("[train]\nnum_steps = 2.5\n" + RATE, "train.num_steps must be an integer"),
        ("[train]\nnum_steps = true\n" + RATE, "train.num_steps must be an integer"),
        ("[train]\nnum_steps = 0\n" + RATE, "train.num_steps must be >= 1, got 0"),
        ("[optimizer]\nlearning_rates = [0.1, -2]\n",
         r"optimizer.learning_rates must be finite and positive; bad values: -2.0 \(index 1\)"),
        ("[optimizer]\nlearning_rate = nan\n",
         "optimizer.learning_rate must be finite and positive"),
        ("[optimizer]\nlearning_rates = []\n", "optimizer.learning_rates is empty"),
        ("[optimizer]\nlearning_rate = 0.1\nlearning_rates = [0.2]\n", "exactly one of"),
        ("[optimizer]\nname = 'sgd'\n", "exactly one of"),
        ("[optimizer]\nname = 'sdg'\nlearning_rate = 0.1\n",
         r"optimizer.name = 'sdg' is not known. Did you mean 'sgd'\?"),
        ("[data]\ndataset = 'auto-mpg'\n" + RATE, r"Did you mean 'auto_mpg'\?"),
        ("[data]\ndataset = 'csv'\n" + RATE, "needs data.path"),
        ("[data]\nfeatures = 'weight'\n" + RATE, "data.features must be a list"),
        ("[data]\nscale = { weight = 0 }\n" + RATE, "data.scale.weight must be finite and > 0"),
        ("[model]\nseeds = [-1]\n" + RATE, r"model.seeds\[0\] must be in \[0, 2\*\*32\)"),
        ("[output]\nfigures = ['loss_curv']\n" + RATE, r"Did you mean 'loss_curve'\?"),
        ("[output]\ndpi = 5\n" + RATE, r"output.dpi must be in \[20, 1000\]"),
        ("data = 3\n" + RATE, r"\[data\] must be a table"),
        ("[train\n", "is not valid TOML"),
    ],
)
def test_bad_configs_name_the_key(text, message):
    with pytest.raises(ConfigError, match=message):
        parse(text)


def test_overrides_are_validated_like_the_file():
    c = parse(RATE, ["train.num_steps=50", "data.dataset=mlcc_cars", "model.seeds=[1, 2]",
                     "train.snapshot_steps=none", "output.figures=[]"])
    assert c.train.num_steps == 50 and c.data.dataset == "mlcc_cars"
    assert c.model.seeds == (1, 2) and c.train.snapshot_steps is None and c.output.figures == ()
    with pytest.raises(ConfigError, match=r"train.num_steps must be >= 1"):
        parse(RATE, ["train.num_steps=0"])
    with pytest.raises(ConfigError, match=r"unknown key 'train.step'"):
        parse(RATE, ["train.step=3"])
    with pytest.raises(ConfigError, match="--set needs key=value"):
        parse(RATE, ["train.num_steps"])


def test_missing_file_and_relative_csv_path(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.toml")
    file = tmp_path / "c.toml"
    file.write_text("[data]\ndataset='csv'\npath='d.csv'\nfeatures=['a']\ntarget='b'\n" + RATE)
    assert config.load(file).data.path == str(tmp_path / "d.csv")


def test_overrides_with_trailing_content_are_refused():
    with pytest.raises(ConfigError, match=r"trailing content after the value: '# 5000'"):
        parse(RATE, ["train.num_steps=50 # 5000"])
    with pytest.raises(ConfigError, match="spans several lines"):
        parse(RATE, ["train.num_steps=50\ntrain.tol=1"])
    assert parse(RATE, ['title="costs # and $"']).title == "costs # and $"  # inside a string


def test_a_csv_delimiter_in_the_config(tmp_path):
    from jaxgd.cli import main

    (tmp_path / "semi.csv").write_text("weight;mpg\n3.5;18\n2.4;24\n4.4;14\n3.4;16\n")
    config_file = tmp_path / "c.toml"
    config_file.write_text("[data]\ndataset = 'csv'\npath = 'semi.csv'\nfeatures = ['weight']\n"
                           "target = 'mpg'\ndelimiter = ';'\n[optimizer]\nlearning_rate = 0.1\n"
                           "[train]\nnum_steps = 20\n[output]\nfigures = []\n")
    assert main(["run", str(config_file), "--out", str(tmp_path / "out"), "--quiet"]) == 0
    with pytest.raises(ConfigError, match=r"data\.delimiter is only for data\.dataset = 'csv'"):
        parse(RATE, ["data.delimiter=';'"])
    with pytest.raises(ConfigError, match="one character"):
        parse(RATE, ["data.dataset=csv", "data.path=x.csv", "data.features=['a']",
                     "data.target=b", "data.delimiter=';;'"])


def test_the_momentum_variant_of_the_course_shows_momentums_limit(tmp_path):
    import json

    from jaxgd.cli import main

    out = tmp_path / "out"
    assert main(["run", "mlcc_cars_momentum", "--out", str(out), "--quiet",
                 "--set", "output.figures=[]"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    limits = summary["stability"]
    assert limits["optimizer"] == "momentum" and limits["momentum"] == 0.9
    assert abs(limits["max_learning_rate"] - 0.1327) < 1e-4  # 2(1 + 0.9)/λmax
    verdicts = [(run["learning_rate"], run["diverged"]) for run in summary["runs"]]
    assert verdicts == [(0.03, False), (0.13, False), (0.14, True)]


def test_a_summary_written_before_validation_seed_was_optional_still_reads():
    # summary.json files of earlier versions hold the old default, validation_seed = 0, also
    # without held-out rows; `jaxgd plot` reads them with from_dict. A 0 written in a config
    # file by hand is refused (tests/cli/test_holdout_cli.py), and so is another saved seed.
    from jaxgd.cli.config import from_dict

    saved = parse("[optimizer]\nlearning_rate = 0.1").to_dict()
    saved["data"]["validation_seed"] = 0
    assert from_dict(saved).data.validation_seed is None
    saved["data"]["validation_seed"] = 3
    with pytest.raises(ConfigError, match=r"data\.validation_seed seeds the draw"):
        from_dict(saved)
    saved["data"].update(validation_seed=0, k_folds=3)
    assert from_dict(saved).data.validation_seed == 0


def test_a_data_path_set_on_the_command_line_is_read_from_the_current_folder(tmp_path,
                                                                             monkeypatch):
    # Found by a hostile review: `--set data.path=good.csv` read csv/good.csv beside the
    # config file instead of ./good.csv, silently training on another file.
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "base.toml").write_text(
        "[data]\ndataset = 'csv'\npath = 'good.csv'\nfeatures = ['x']\ntarget = 'y'\n"
        "[optimizer]\nlearning_rate = 0.1\n")
    monkeypatch.chdir(tmp_path)
    assert config.load("csv/base.toml").data.path == str(Path("csv") / "good.csv")
    typed = config.load("csv/base.toml", ['data.path="good.csv"'])
    assert Path(typed.data.path) == tmp_path / "good.csv"
    absolute = str(tmp_path / "elsewhere.csv")
    assert config.load("csv/base.toml", [f'data.path="{absolute}"']).data.path == absolute
