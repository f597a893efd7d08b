"""Domain-adaptive pre-training (train.py --stage mlm): its texts, a resumed run equal to an uninterrupted one,
refusing another stage's checkpoint, and its output as a --model for fine-tuning."""

import shutil

import pandas as pd
import pytest
import torch
from safetensors import safe_open
from transformers import BertConfig, BertForMaskedLM, DistilBertConfig, DistilBertForMaskedLM

import train
from sentiment.artifacts import read_json
from sentiment.checkpoint import CHECKPOINT
from sentiment.config import TrainConfig
from sentiment.errors import SentimentError
from sentiment.pretraining import _step, mlm_texts


def argv(data, model, folder, *extra):
    return ["--stage", "mlm", "--data", str(data), "--model", str(model), "--output-dir", str(folder / "mlm"),
            "--checkpoint-dir", str(folder / "checkpoints"), "--batch-size", "8", "--max-length", "64",
            "--epochs", "2", "--checkpoint-minutes", "0", "--precision", "fp32", "--device", "cpu",
            "--num-threads", "1", "--no-progress", *extra]


@pytest.fixture(scope="module")
def uninterrupted(small_imdb, tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlm")
    assert train.main(argv(small_imdb, tiny_model_dir, folder)) == 0
    return folder


def weights(folder):
    with safe_open(folder / "mlm" / "model.safetensors", "pt") as f:
        return {name: f.get_tensor(name) for name in f.keys()}


def test_texts_are_training_and_unlabelled_reviews_never_test(small_imdb, review_tables, tmp_path):
    data = tmp_path / "imdb"
    shutil.copytree(small_imdb, data)
    pd.DataFrame({"text": [f"An unlabelled review, number {i}." for i in range(20)]}).to_parquet(
        data / "unsupervised.parquet")
    train_texts, held = mlm_texts(TrainConfig(data=str(data)))
    everything = set(train_texts) | set(held)
    _, test = review_tables
    assert not everything & set(test["text"])
    assert sum(t.startswith("An unlabelled review") for t in everything) == 20
    assert len(everything) == len(train_texts) + len(held) and held and not set(train_texts) & set(held)
    assert mlm_texts(TrainConfig(data=str(data))) == (train_texts, held)  # the same for a seed


def test_the_stage_writes_a_model_folder_with_its_history(uninterrupted):
    history = read_json(uninterrupted / "mlm" / "history.json")["epochs"]
    assert [e["epoch"] for e in history] == [1, 2]
    assert all(0 < e["eval_loss"] and 0 <= e["eval_accuracy"] <= 1 for e in history)
    assert read_json(uninterrupted / "mlm" / "training_config.json")["stage"] == "mlm"
    assert any(name.startswith("cls.predictions") for name in weights(uninterrupted))  # a masked-LM head


def test_a_killed_run_resumes_to_the_same_weights(small_imdb, tiny_model_dir, uninterrupted, tmp_path,
                                                  crash_mid_second_epoch):
    flags = argv(small_imdb, tiny_model_dir, tmp_path)
    with crash_mid_second_epoch():
        train.main(flags)
    assert not (tmp_path / "mlm").exists()
    assert train.main([*flags, "--resume"]) == 0
    ours, theirs = weights(tmp_path), weights(uninterrupted)
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in theirs)
    history = [{k: v for k, v in e.items() if "second" not in k}
               for e in read_json(tmp_path / "mlm" / "history.json")["epochs"]]
    assert history == [{k: v for k, v in e.items() if "second" not in k}
                       for e in read_json(uninterrupted / "mlm" / "history.json")["epochs"]]


def test_resuming_another_stages_checkpoint_says_so(small_imdb, tiny_model_dir, uninterrupted, tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()
    shutil.copy(uninterrupted / "checkpoints" / CHECKPOINT, tmp_path / "checkpoints" / CHECKPOINT)
    flags = [*argv(small_imdb, tiny_model_dir, tmp_path), "--resume"]
    flags[flags.index("mlm")] = "classify"
    assert train.main(flags) == 2
    assert "--stage" in capsys.readouterr().err


def test_fine_tuning_starts_from_the_pretrained_folder(small_imdb, uninterrupted, tmp_path):
    flags = ["--data", str(small_imdb), "--model", str(uninterrupted / "mlm"), "--output-dir", str(tmp_path / "a"),
             "--checkpoint-dir", str(tmp_path / "c"), "--max-steps", "2", "--batch-size", "8", "--max-length", "64",
             "--no-fairness", "--no-behaviour", "--no-int8", "--explain-mistakes", "0", "--precision", "fp32",
             "--device", "cpu", "--num-threads", "1", "--no-progress"]
    assert train.main(flags) == 0
    encoder = weights(uninterrupted)["bert.encoder.layer.0.attention.self.query.weight"]
    with safe_open(tmp_path / "a" / "model.safetensors", "pt") as f:
        tuned = f.get_tensor("bert.encoder.layer.0.attention.self.query.weight")
    assert tuned.shape == encoder.shape and (tuned.float() - encoder.float()).abs().max() < 0.05


def test_bad_settings_are_refused():
    with pytest.raises(SentimentError, match="--stage"):
        TrainConfig(stage="pretrain")
    with pytest.raises(SentimentError, match="--mlm-probability"):
        TrainConfig(mlm_probability=1.5)


@pytest.mark.parametrize("model", [
    BertForMaskedLM(BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                               intermediate_size=64)),
    DistilBertForMaskedLM(DistilBertConfig(vocab_size=120, dim=32, n_layers=2, n_heads=2, hidden_dim=64))],
    ids=["bert: the head on masked positions only", "another architecture: the whole model"])
def test_a_step_has_the_models_own_loss_and_gradients(model):
    model.eval()  # no dropout, so that both passes see the same model
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(5, 120, (3, 17), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[2, 12:] = 0  # a padded row
    labels = torch.full_like(input_ids, -100)
    labels[:, 1::4] = input_ids[:, 1::4]
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    expected = model(**batch).loss
    expected.backward()
    expected_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    loss, masked, correct = _step(model, batch, "fp32", torch.device("cpu"))
    loss.backward()
    assert masked == int((labels != -100).sum()) and 0 <= correct <= masked
    torch.testing.assert_close(loss, expected)
    for name, grad in expected_grads.items():
        torch.testing.assert_close(dict(model.named_parameters())[name].grad, grad, msg=name)


def test_a_batch_with_nothing_masked_adds_nothing():
    model = BertForMaskedLM(BertConfig(vocab_size=120, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                       intermediate_size=64))
    input_ids = torch.randint(5, 120, (2, 9))
    batch = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
             "labels": torch.full_like(input_ids, -100)}
    loss, masked, correct = _step(model, batch, "fp32", torch.device("cpu"))
    loss.backward()  # no NaN reaches the epoch's mean loss or the weights
    assert (loss.item(), masked, correct) == (0.0, 0, 0)
