"""The config tree: YAML + dotted overrides, type and key validation, semantic checks, round trip."""

import dataclasses

import pytest

from r1.config import Config, ConfigError, load_config, save_config


def write(tmp_path, text: str):
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_file_or_overrides():
    assert load_config() == Config()


def test_yaml_file_and_overrides(tmp_path):
    path = write(
        tmp_path,
        """
model:
  name: some/model
grpo:
  beta: 0.04
  dual_clip: 3
optim:
  lr: 1e-6          # YAML 1.1 reads this as a string; it must come out a float
  betas: [0.9, 0.95]
data:
  limit: 7
  arithmetic:
    ops: "+-"
""",
    )
    cfg = load_config(
        path,
        [
            "data.arithmetic.max_digits=3",  # nested section
            "rewards.weights.language=0.1",  # a new entry added to the default weights
            "optim.weight_decay=1e-6",
            "grpo.dual_clip=null",  # Optional back to None
            "data.prefill_think=true",
            "grpo.dynamic_sampling=False",
            "run.threads=4",
            "train.steps=1_000",
        ],
    )
    assert cfg.model.name == "some/model"
    assert cfg.model.dtype == "float32"  # untouched keys of a YAML section keep their defaults
    assert cfg.grpo.beta == 0.04
    assert cfg.grpo.dual_clip is None
    assert cfg.optim.lr == 1e-6 and type(cfg.optim.lr) is float
    assert cfg.optim.weight_decay == 1e-6 and type(cfg.optim.weight_decay) is float
    assert cfg.optim.betas == [0.9, 0.95]
    assert cfg.data.limit == 7
    assert cfg.data.arithmetic.ops == "+-"
    assert cfg.data.arithmetic.max_digits == 3
    assert cfg.data.arithmetic.min_digits == 1
    assert cfg.rewards.weights == {"accuracy": 1.0, "format": 0.5, "language": 0.1}
    assert cfg.data.prefill_think is True
    assert cfg.grpo.dynamic_sampling is False
    assert cfg.run.threads == 4
    assert cfg.train.steps == 1000


def test_overrides_win_over_yaml_and_lists_parse(tmp_path):
    path = write(tmp_path, "grpo:\n  beta: 0.04\nrewards:\n  weights: {accuracy: 2.0}\n")
    cfg = load_config(path, ["grpo.beta=0", "optim.betas=[0.8, 0.9]", "data.question_field=problem"])
    assert cfg.grpo.beta == 0.0
    assert cfg.optim.betas == [0.8, 0.9]
    assert cfg.data.question_field == "problem"
    assert cfg.rewards.weights == {"accuracy": 2.0}  # a mapping given in YAML replaces the default one


def test_int_written_as_float_integer_accepted_but_fraction_rejected():
    assert load_config(None, ["train.steps=5.0"]).train.steps == 5
    with pytest.raises(ConfigError, match=r"train\.steps: expected int, got 5\.5 \(float\)"):
        load_config(None, ["train.steps=5.5"])


@pytest.mark.parametrize(
    "where, overrides, yaml_text, valid, suggestion",
    [
        ("grpo", ["grpo.betta=0.1"], None, "beta, kl_estimator", "beta"),
        ("top level", ["rolout.temperature=0.7"], None, "model, data, rollout", "rollout"),
        ("nested", ["data.arithmetic.max_digitz=3"], None, "min_digits, max_digits, min_steps", "max_digits"),
        ("yaml top level", [], "rolout:\n  temperature: 0.7\n", "model, data, rollout", "rollout"),
        (
            "yaml nested",
            [],
            "data:\n  arithmetic:\n    max_digitz: 3\n",
            "min_digits, max_digits, min_steps",
            "max_digits",
        ),
    ],
)
def test_unknown_key_lists_valid_keys_and_suggests(tmp_path, where, overrides, yaml_text, valid, suggestion):
    path = write(tmp_path, yaml_text) if yaml_text else None
    with pytest.raises(ConfigError) as err:
        load_config(path, overrides)
    message = str(err.value)
    assert "unknown config key" in message
    assert f"Did you mean '{suggestion}'?" in message
    assert f"Valid keys here: {valid}" in message


def test_unknown_key_without_close_match_has_no_suggestion():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["grpo.zzzzzz=1"])
    assert "Did you mean" not in str(err.value)
    assert "unknown config key 'grpo.zzzzzz'" in str(err.value)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("train.steps=abc", "train.steps: expected int, got 'abc' (str)"),
        ("grpo.kl_estimator=k4", "grpo.kl_estimator: expected one of 'k1', 'k2', 'k3', got 'k4'"),
        ("optim.betas=0.9", "optim.betas: expected a list of float, got 0.9"),
        ("optim.lr=fast", "optim.lr: expected float, got 'fast' (str)"),
        ("data.prefill_think=maybe", "data.prefill_think: expected bool, got 'maybe' (str)"),
        ("train.steps=true", "train.steps: expected int, got True (bool)"),  # a bool is not a number
        ("data.limit=abc", "data.limit: expected int or null, got 'abc'"),
        ("rewards.weights.language=high", "rewards.weights.language: expected float, got 'high' (str)"),
        ("model.name=[a, b]", "model.name: expected str, got ['a', 'b'] (list)"),
    ],
)
def test_wrong_type_names_key_value_and_expected_type(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == expected


def test_wrong_type_in_yaml(tmp_path):
    with pytest.raises(ConfigError, match=r"^rollout\.max_new_tokens: expected int, got 'many' \(str\)$"):
        load_config(write(tmp_path, "rollout:\n  max_new_tokens: many\n"))


def test_section_given_a_scalar(tmp_path):
    with pytest.raises(ConfigError, match=r"^grpo: expected a mapping of keys, got 3$"):
        load_config(write(tmp_path, "grpo: 3\n"))


@pytest.mark.parametrize(
    "override, expected",
    [
        (
            "model.name.foo=1",
            "cannot set 'model.name.foo': 'model.name' is a value ('smollm2-135m'), not a section of keys",
        ),
        (
            "rewards.weights.format.x=1",
            "cannot set 'rewards.weights.format.x': 'rewards.weights.format' is a value (0.5), not a section of keys",
        ),
    ],
)
def test_override_below_a_value_is_a_config_error(override, expected):
    # These used to crash with a TypeError (item assignment on a str / float).
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == expected


@pytest.mark.parametrize(
    "override, expected",
    [
        ("rollout.temperature=0", "rollout.temperature must be > 0 (got 0.0)"),
        ("grpo.clip_low=1", "grpo.clip_low must be in [0, 1) (got 1.0)"),
        ("grpo.dual_clip=1", "grpo.dual_clip must be > 1 (or null) (got 1.0)"),
        ("optim.lr=-1e-6", "optim.lr must be ≥ 0 (got -1e-06)"),
        ("optim.betas=[0.9]", "optim.betas must be two numbers in [0, 1) (got [0.9])"),
        ("grpo.overlong_buffer=256", "grpo.overlong_buffer must be in [0, rollout.max_new_tokens) (got 256)"),
        ("data.arithmetic.min_digits=3", "data.arithmetic.min_digits must be ≥ 1 and ≤ max_digits (got 3)"),
        ("data.arithmetic.ops=+/", "data.arithmetic.ops must be a non-empty subset of '+-*' (got '+/')"),
        ("rewards.weights={}", "rewards.weights must name at least one reward (got {})"),
        ("data.limit=0", "data.limit must be ≥ 1 (or null for all) (got 0)"),
        ("eval.limit=-1", "eval.limit must be ≥ 1 (or null for all) (got -1)"),
    ],
)
def test_semantic_check(override, expected):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value) == expected


def test_malformed_override():
    with pytest.raises(ConfigError, match=r"override 'grpo\.beta' must look like key=value"):
        load_config(None, ["grpo.beta"])


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_non_mapping_yaml(tmp_path):
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        load_config(write(tmp_path, "- grpo\n- beta\n"))


def test_invalid_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "grpo: [1, 2\n"))


def test_empty_yaml_gives_defaults(tmp_path):
    assert load_config(write(tmp_path, "# nothing yet\n")) == Config()


def test_save_load_round_trip(tmp_path):
    cfg = load_config(
        None,
        [
            "optim.lr=3e-7",
            "grpo.dual_clip=3.0",
            "rewards.weights.language=0.1",
            "data.limit=5",
            "optim.betas=[0.9, 0.95]",
            "data.arithmetic.ops=+*",
            "run.output_dir=runs/x",
            "eval.temperature=0.6",
        ],
    )
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg
    assert dataclasses.asdict(again)["rewards"]["weights"] == {"accuracy": 1.0, "format": 0.5, "language": 0.1}
