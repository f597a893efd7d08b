"""TrainConfig validation names the offending flag; train.py's flags and --help come from the dataclass."""

from __future__ import annotations

import pytest

import train
from sentiment.config import TrainConfig
from sentiment.errors import SentimentError

BAD_VALUES = [
    ("truncation", "middle", "--truncation"),
    ("validation_split", 0.0, "--validation-split"),
    ("validation_split", 0.5, "--validation-split"),
    ("max_length", 4, "--max-length"),
    ("head_ratio", 1.5, "--head-ratio"),
    ("epochs", 0, "--epochs"),
    ("batch_size", 0, "--batch-size"),
    ("pad_to_multiple_of", 0, "--pad-to-multiple-of"),
    ("eval_tokens_per_batch", 0, "--eval-tokens-per-batch"),
    ("max_train_samples", 0, "--max-train-samples"),
    ("max_eval_samples", -3, "--max-eval-samples"),
    ("max_steps", 0, "--max-steps"),
    ("num_threads", 0, "--num-threads"),
    ("learning_rate", 0.0, "--learning-rate"),
    ("warmup_ratio", 1.0, "--warmup-ratio"),
    ("attention_dropout", -0.1, "--attention-dropout"),
    ("hidden_dropout", 1.0, "--hidden-dropout"),
    ("save_dtype", "int8", "--save-dtype"),
    ("fairness_max_reviews", 0, "--fairness-max-reviews"),
    ("sentence_crops", -1, "--sentence-crops"),
    ("stage", "pretrain", "--stage"),
    ("mlm_probability", 1.0, "--mlm-probability"),
    ("average_weight", 0.0, "--average-weight"),
    ("negated_negative_target", 0.4, "--negated-negative-target"),
    ("checkpoint_minutes", -1.0, "--checkpoint-minutes"),
    ("max_train_samples", 1, "--max-train-samples"),
    ("seed", -1, "--seed"),
]


@pytest.mark.parametrize(("field", "value", "flag"), BAD_VALUES, ids=[f"{f}={v}" for f, v, _ in BAD_VALUES])
def test_invalid_value_names_its_flag(field, value, flag):
    with pytest.raises(SentimentError, match=f"^{flag}:"):
        TrainConfig(**{field: value})


@pytest.mark.parametrize(("field", "value", "says"), [
    ("truncation", "middle", "must be one of head, tail, head+tail, not 'middle'"),
    ("validation_split", 0.5, "must be in (0.0, 0.5), not 0.5"),
    ("learning_rate", 0.0, "must be more than 0.0, not 0.0"),
    ("epochs", 0, "must be at least 1, not 0"),
    ("warmup_ratio", 1.0, "must be in [0.0, 1.0), not 1.0"),
])
def test_the_error_says_which_values_the_flag_takes(field, value, says):
    with pytest.raises(SentimentError) as caught:
        TrainConfig(**{field: value})
    assert str(caught.value).endswith(says)


def test_defaults_are_valid_and_round_trip_through_to_dict():
    config = TrainConfig()
    assert TrainConfig(**config.to_dict()) == config
    assert config.truncation == "head+tail"


@pytest.mark.parametrize(("argv", "flag"), [
    (["--truncation", "middle"], "--truncation"),
    (["--epochs", "0"], "--epochs"),
    (["--data", "no-such-folder", "--label-map", "bad:0"], "--label-map"),
])
def test_main_reports_a_bad_flag_as_one_error_line(argv, flag, capsys, tmp_path):
    outputs = ["--output-dir", str(tmp_path / "artifacts"), "--checkpoint-dir", str(tmp_path / "checkpoints")]
    assert train.main([*argv, *outputs]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"error: {flag}")


def test_help_lists_every_flag_with_its_default(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--data", "--model", "--truncation", "--head-ratio", "--resume", "--no-progress", "--max-steps"):
        assert flag in out
    assert "(default: head+tail)" in out
    assert "(default: None)" not in out  # a flag without a default says what leaving it out means, if anything
    assert "(default: all visible cores)" in out  # stated by the help itself, not appended a second time
    assert "--truncation {head,tail,head+tail}" in out and "--precision {auto,bf16,fp16,fp32}" in out


def test_flags_parse_into_typed_fields():
    import argparse

    from sentiment.options import add_arguments, from_namespace

    parser = argparse.ArgumentParser()
    add_arguments(parser, TrainConfig)
    config = from_namespace(parser.parse_args(["--epochs", "2", "--learning-rate", "3e-5", "--no-progress",
                                               "--max-steps", "7", "--test-data", "t.csv"]), TrainConfig)
    assert (config.epochs, config.learning_rate, config.progress, config.max_steps, config.test_data) == \
        (2, 3e-5, False, 7, "t.csv")
    assert config.max_train_samples is None



@pytest.mark.parametrize("stage", ["mlm", "average"])
def test_a_one_process_stage_under_a_launcher_is_refused(stage, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    outputs = ["--output-dir", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "checkpoints")]
    extra = ["--average-with", str(tmp_path)] if stage == "average" else []
    assert train.main(["--stage", stage, *extra, *outputs]) == 2
    assert f"--stage {stage} runs in one process" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stage", ["classify", "mlm"])
def test_a_max_length_beyond_the_model_is_refused_before_any_data_is_read(stage, tiny_model_dir, capsys, tmp_path):
    outputs = ["--output-dir", str(tmp_path / "out"), "--checkpoint-dir", str(tmp_path / "checkpoints")]
    argv = ["--stage", stage, "--model", str(tiny_model_dir), "--data", str(tmp_path / "no-such-data"),
            "--max-length", "1024", "--device", "cpu", *outputs]
    assert train.main(argv) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: --max-length 1024: {tiny_model_dir} reads at most 512 word pieces; give --max-length 512 or less")
