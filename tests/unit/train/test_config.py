"""audiorl.config: YAML + overrides, type conversion, errors that name the fix, help, deprecations."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Literal, Optional

import pytest
import yaml

from audiorl.config import (ConfigError, deprecated_field, format_help, forward_deprecated, load_config,
                            option, parse_cli, read_config_yaml, save_config, to_dict)
from audiorl.train.config import TrainConfig


@dataclass
class Llm:
    """The decoder."""

    dim: int = option(256, "Model width.")
    dropout: float = option(0.1, "Dropout.")
    act: Literal["gelu", "silu"] = option("silu", "Activation.")


@dataclass
class Top:
    """A stage config."""

    name: str = option("x", "Experiment name.")
    use_ctc: bool = option(True, "Add a CTC loss.")
    ctc_weight: float = option(0.3, "CTC weight.")
    layers: list[int] = option(default_factory=lambda: [1, 2], help="Layer ids.")
    betas: tuple[float, float] = option((0.9, 0.98), "Betas.")
    vocab: Optional[str] = option(None, "Vocabulary file.")
    old_weight: Optional[float] = deprecated_field("ctc_weight", remove_in="0.3")
    llm: Llm = option(default_factory=Llm, help="Decoder.")
    llm_small: Llm = option(default_factory=lambda: Llm(dim=64), help="A section whose default differs.")

    def __post_init__(self) -> None:
        forward_deprecated(self)
        if not 0 <= self.ctc_weight <= 1:
            raise ValueError(f"ctc_weight={self.ctc_weight} must be in [0, 1]; use 0 to disable CTC")


def _yaml(tmp_path, data) -> str:
    p = tmp_path / "conf.yaml"
    p.write_text(yaml.safe_dump(data))
    return str(p)


def test_yaml_then_overrides_take_precedence(tmp_path):
    path = _yaml(tmp_path, {"name": "a", "llm": {"dim": 128, "act": "gelu"}, "ctc_weight": 0.5})
    cfg = load_config(Top, path, ["--llm.dim", "192", "name=b", "--use-ctc=false"])
    assert (cfg.name, cfg.llm.dim, cfg.llm.act, cfg.ctc_weight, cfg.use_ctc) == ("b", 192, "gelu", 0.5, False)
    assert cfg.llm.dropout == 0.1  # untouched fields keep defaults


def test_type_conversion():
    cfg = load_config(Top, None, ["--ctc_weight", "1e-1", "--layers", "[3, 4, 5]", "--betas", "0.8,0.9",
                                  "--vocab", "data/bpe.model", "--llm.dim", "1e2", "--name", "123"])
    assert cfg.ctc_weight == pytest.approx(0.1) and isinstance(cfg.ctc_weight, float)
    assert cfg.layers == [3, 4, 5] and cfg.betas == (0.8, 0.9) and cfg.vocab == "data/bpe.model"
    assert cfg.llm.dim == 100 and isinstance(cfg.llm.dim, int) and cfg.name == "123"
    assert load_config(Top, None, ["--vocab", "null"]).vocab is None


def test_section_default_is_the_parents_not_the_classes():
    # llm_small defaults to Llm(dim=64); overriding one field must keep dim=64, not Llm's 256.
    cfg = load_config(Top, None, ["--llm_small.act", "gelu"])
    assert cfg.llm_small.dim == 64 and cfg.llm_small.act == "gelu"


def test_unknown_key_names_key_file_and_suggestion(tmp_path):
    path = _yaml(tmp_path, {"llm": {"dimm": 3}})
    with pytest.raises(ConfigError) as e:
        load_config(Top, path)
    msg = str(e.value)
    assert "'llm.dimm'" in msg and path in msg and "'llm.dim'" in msg
    # A key in the wrong section is pointed to its right place.
    with pytest.raises(ConfigError, match=r"'act'.*the command line.*'llm.act'"):
        load_config(Top, None, ["--act", "gelu"])


def test_literal_error_lists_allowed_values():
    with pytest.raises(ConfigError, match=r"llm.act.*'relu' is not one of.*'gelu', 'silu'"):
        load_config(Top, None, ["--llm.act", "relu"])


@pytest.mark.parametrize("args,pattern", [
    (["--use_ctc", "yes"], "true or false"),
    (["--use_ctc"], "needs a value"),
    (["--llm.dim", "1.5"], "integer"),
    (["--betas", "[1, 2, 3]"], "2 values"),
    (["stray"], "cannot parse"),
])
def test_bad_values(args, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(Top, None, args)


def test_post_init_error_names_value_and_fix():
    with pytest.raises(ValueError, match=r"ctc_weight=2.0 must be in \[0, 1\]; use 0"):
        load_config(Top, None, ["--ctc_weight", "2"])
    with pytest.raises(ValueError, match="max_steps > 0"):
        TrainConfig(max_steps=0, max_epochs=3)  # cosine decay needs a horizon
    with pytest.raises(ValueError, match="multiple of"):
        TrainConfig(max_steps=10, average_best_n=3, save_interval=300, valid_interval=200)


def test_deprecated_field_warns_and_forwards(tmp_path):
    with pytest.warns(FutureWarning, match=r"old_weight.*0\.3.*ctc_weight"):
        cfg = load_config(Top, _yaml(tmp_path, {"old_weight": 0.7}))
    assert cfg.ctc_weight == 0.7 and cfg.old_weight is None
    with pytest.warns(FutureWarning, match="removed in 0.3"):
        assert Top(old_weight=0.2).ctc_weight == 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Top()  # no warning when unset


def test_save_and_reload_round_trip(tmp_path):
    cfg = load_config(Top, None, ["--llm.dim", "7", "--betas", "[0.5, 0.6]"])
    save_config(cfg, tmp_path / "out" / "config.yaml")
    again = load_config(Top, tmp_path / "out" / "config.yaml")
    assert again == cfg
    assert "old_weight" not in to_dict(cfg)  # unset deprecated fields are not written


def test_help_lists_every_field_with_type_default_and_help():
    text = format_help(TrainConfig, prefix="train.")
    for f in dataclasses.fields(TrainConfig):
        if not dataclasses.is_dataclass(f.type) and f.name not in ("optim", "scheduler"):
            assert f"--train.{f.name} " in text, f.name
            assert f.metadata["help"].split()[0] in text
    assert "--train.optim.lr float  (default: 0.001)" in text
    assert "--train.amp {none,bf16,fp16}  (default: none)" in text
    assert "--train.optim.betas tuple[float, float]  (default: [0.9, 0.98])" in text
    assert "[train.scheduler]" in text


def test_parse_cli_help_print_config_and_usage_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        parse_cli(Top, ["--help"], prog="x")
    assert e.value.code == 0 and "--llm.dim int" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        parse_cli(Top, ["--config", _yaml(tmp_path, {"name": "q"}), "--print_config", "--llm.dim=3"])
    out = yaml.safe_load(capsys.readouterr().out)
    assert e.value.code == 0 and out["name"] == "q" and out["llm"]["dim"] == 3
    with pytest.raises(SystemExit) as e:
        parse_cli(Top, ["--nope", "1"], prog="x")
    assert e.value.code == 2 and "x: error: unknown key 'nope'" in capsys.readouterr().err


def test_base_include_merges_sections_and_later_files_win(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "root.yaml").write_text(yaml.safe_dump({"name": "root", "layers": [7, 8, 9],
                                                        "llm": {"dim": 128, "act": "gelu"}}))
    (tmp_path / "mid.yaml").write_text(yaml.safe_dump({"base": "root.yaml", "ctc_weight": 0.5, "llm": {"dim": 96}}))
    tuned = tmp_path / "sub" / "tuned.yaml"  # bases are relative to the including file's folder
    tuned.write_text(yaml.safe_dump({"base": ["../mid.yaml"], "layers": [1], "llm": {"dropout": 0.3}}))
    cfg = load_config(Top, str(tuned), ["--llm.dim", "64"])
    assert (cfg.name, cfg.ctc_weight, cfg.layers) == ("root", 0.5, [1])  # lists are replaced, not appended
    assert (cfg.llm.dim, cfg.llm.act, cfg.llm.dropout) == (64, "gelu", 0.3)  # sections merge key by key
    assert read_config_yaml(str(tuned)) == {"name": "root", "layers": [1], "ctc_weight": 0.5,
                                            "llm": {"dim": 96, "act": "gelu", "dropout": 0.3}}


def test_base_include_errors_name_the_file(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("base: b.yaml\n")
    b.write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match=r"cycle .*a\.yaml -> .*b\.yaml -> .*a\.yaml"):
        load_config(Top, str(a))
    a.write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml does not exist \(named by 'base:' in .*a\.yaml\)"):
        load_config(Top, str(a))
    a.write_text("base: {x: 1}\n")
    with pytest.raises(ConfigError, match="'base:' must be a path"):
        load_config(Top, str(a))
    b.write_text("name: b\nnot_a_key: 1\n")
    a.write_text("base: b.yaml\n")
    with pytest.raises(ConfigError, match=r"b\.yaml"):  # a bad key in a base names that base
        load_config(Top, str(a))
    a.write_text("- 1\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(Top, str(a))
