"""Config loading: defaults, overrides, every problem reported at once with did-you-mean."""
from __future__ import annotations

import pytest
import yaml

from textsift.config import apply_overrides, load_config, validate
from textsift.config.load import preset_names
from textsift.errors import ConfigError, TextsiftError


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text, encoding="utf-8")
    return str(p)


def test_minimal_config_gets_defaults(tiny_data, tmp_path):
    path = write(tmp_path, f"data: {{train: {tiny_data['train']}}}\nmodel: {{name: textcnn}}\n")
    cfg = load_config(path)
    assert cfg.train.epochs == 10 and cfg.train.batch_size == 64 and cfg.train.seed == 42
    assert cfg.tokenizer.name == "char" and cfg.task is None and cfg.data.dev is None


def test_overrides_parse_yaml_values_and_create_sections(tiny_data, tmp_path):
    path = write(tmp_path, f"data: {{train: {tiny_data['train']}}}\nmodel: {{name: textcnn}}\n")
    cfg = load_config(path, ["train.lr=0.01", "model.kernel_sizes=[1,2]", "train.early_stopping.patience=null",
                             "train.max_length=16"])
    assert cfg.train.lr == 0.01 and cfg.model.kernel_sizes == [1, 2]
    assert cfg.train.early_stopping.patience is None and cfg.train.max_length == 16


def test_bad_override_syntax():
    with pytest.raises(TextsiftError, match="expected key=value"):
        apply_overrides({}, ["train.lr"])


def test_all_problems_reported_at_once_with_suggestions(tmp_path):
    path = write(tmp_path, """
data: {train: nowhere.jsonl, txt_field: text}
model: {name: textcn}
train: {epochs: 0, lr: fast, batchsize: 3}
""")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "model.name: 'textcn' is not a model; did you mean 'textcnn'? Known:" in msg
    assert "data.txt_field: unknown key; did you mean 'text_field'?" in msg
    assert "train.batchsize: unknown key; did you mean 'batch_size'?" in msg
    assert "train.epochs:" in msg and "train.lr:" in msg and "'fast'" in msg
    assert "data.train: file not found: nowhere.jsonl" in msg
    assert len(err.value.problems) == 6


def test_model_params_are_validated_against_the_model(tiny_data):
    raw = {"data": {"train": tiny_data["train"]}, "model": {"name": "textcnn", "kernel_sizes": "3", "filters": 3}}
    with pytest.raises(ConfigError) as err:
        validate(raw)
    msg = str(err.value)
    assert "model.kernel_sizes:" in msg
    assert "model.filters: unknown key; did you mean 'num_filters'?" in msg


def test_unknown_loss_and_tokenizer(tiny_data):
    raw = {"data": {"train": tiny_data["train"]}, "model": {"name": "fasttext"},
           "loss": {"name": "focus"}, "tokenizer": {"name": "chars"}}
    with pytest.raises(ConfigError) as err:
        validate(raw)
    assert "tokenizer.name: 'chars' is not a tokenizer; did you mean 'char'?" in str(err.value)
    assert "loss.name: 'focus' is not a loss" in str(err.value)


def test_missing_model_and_train():
    with pytest.raises(ConfigError) as err:
        validate({"data": {}})
    assert "model: required, but missing" in str(err.value)
    assert "data.train: required for training" in str(err.value)


def test_yaml_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "data:\n  train: a.jsonl\nmodel: [name: x\n")
    with pytest.raises(TextsiftError, match=r"c.yaml:\d+: invalid YAML"):
        load_config(path)


def test_unknown_preset_suggests(tmp_path):
    with pytest.raises(TextsiftError, match="did you mean 'thucnews_title'"):
        load_config("thucnews_titel")


def test_task_aliases_and_bad_task(tiny_data):
    ok = validate({"data": {"train": tiny_data["train"]}, "model": {"name": "fasttext"}, "task": "multi"})
    assert ok.task == "multi_label"
    with pytest.raises(ConfigError, match="task:"):
        validate({"data": {"train": tiny_data["train"]}, "model": {"name": "fasttext"}, "task": "regression"})


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_validates(name, monkeypatch):
    """Presets are configs that run as given: valid, with a run command in their first line."""
    cfg = load_config(name, check_files=False)
    from textsift.config.load import PRESET_DIR
    first = (PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("#") and f"textsift train -c {name}" in first
    assert cfg.data.train.endswith("train.jsonl") and "${" not in cfg.data.train


def test_presets_cover_the_issue_list():
    wanted = {"thucnews_title", "tnews", "chnsenticorp", "sst2_sentence", "trec6", "20newsgroups", "imdb",
              "clinc150", "goemotions"}
    assert wanted <= set(preset_names())


def test_data_location_is_configurable(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTSIFT_DATA", str(tmp_path / "elsewhere"))
    cfg = load_config("trec6", check_files=False)
    assert cfg.data.train == str(tmp_path / "elsewhere" / "trec6" / "train.jsonl")


def test_readme_reference_blocks_are_current():
    """The README's config reference and presets table are generated from the schema and registries."""
    from pathlib import Path

    from textsift.config.docs import render_readme

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert render_readme(readme) == readme, "run: python -m textsift.config.docs --write README.md"
    for key in ("train.epochs", "train.batch_size", "train.lr", "train.seed", "train.max_length", "data.train",
                "model.kernel_sizes", "loss.label_smoothing", "tokenizer.ngrams"):
        assert f"`{key}`" in readme


def test_overriding_model_name_drops_the_files_model_params(caplog):
    cfg = load_config("thucnews_title_fasttext", ["model.name=textcnn"], check_files=False)
    assert cfg.model.name == "textcnn" and cfg.model.embedding_dim == 64  # shared parameters are kept
    cfg = load_config("trec6", ["model.name=textrnn"], check_files=False)
    assert cfg.model.name == "textrnn" and not hasattr(cfg.model, "C")
    assert "dropped model.C" in caplog.text
    with pytest.raises(ConfigError, match="model.C: unknown key"):  # explicit ones are still validated
        load_config("trec6", ["model.name=textrnn", "model.C=2"], check_files=False)


def test_unknown_keys_inside_optional_and_list_sections_get_suggestions():
    from textsift.config.load import ConfigError, validate

    task = {"name": "a", "teacher": "t", "train": "a.jsonl", "tset": "x"}
    with pytest.raises(ConfigError) as e:
        validate({"model": {"name": "fasttext"}, "distill": {"temprature": 2, "tasks": [task, {**task, "name": "b"}]}},
                 check_files=False)
    msg = str(e.value)
    assert "distill.temprature: unknown key; did you mean 'temperature'?" in msg
    assert "distill.tasks.0.tset: unknown key; did you mean 'test'? Known keys here: dev, name, split_seed" in msg
