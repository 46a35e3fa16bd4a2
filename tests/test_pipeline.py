"""The compression pipeline: a tiny pipeline runs end to end and writes its frontier; the frontier marks
exactly the non-dominated candidates; a re-run reuses finished stages; a changed stage is superseded
(kept) and redone; a failing stage stops only its dependents; budgets give the right recommendation;
bad configs are refused with every problem named."""
from __future__ import annotations

import json
import shutil

import pytest
import yaml

from conftest import make_texts, write_jsonl

TRAIN = {"epochs": 2, "batch_size": 16, "lr": 0.01, "progress": False, "max_length": 32}
REPORT = {"plots": False, "tensorboard": False}


def _config(files: dict, student_epochs: int = 2, extra: list | None = None) -> dict:
    return {"data": files,
            "teacher": {"config": {"model": {"name": "textcnn", "embedding_dim": 16, "num_filters": 16},
                                   "tokenizer": {"name": "word"}, "train": TRAIN, "report": REPORT}},
            "measure": {"texts": 10, "threads": 1},
            "candidates": [
                {"name": "teacher", "kind": "teacher"},
                {"name": "student", "kind": "distill",
                 "config": {"model": {"name": "fasttext", "embedding_dim": 8}, "tokenizer": {"name": "word"},
                            "train": {**TRAIN, "epochs": student_epochs}, "report": REPORT,
                            "distill": {"cache": False}}},
                {"name": "student_int8", "kind": "quantize", "from": "student", "method": "dynamic"},
                {"name": "teacher_onnx", "kind": "export", "int8": True},
                *(extra or [])]}


def _write(path, cfg: dict):
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return str(path)


def _run(config: str, run_dir, *flags: str) -> int:
    from textsift.cli.main import main

    return main(["pipeline", "-c", config, "--run-dir", str(run_dir), *flags])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    files = {s: str(write_jsonl(root / f"{s}.jsonl", make_texts(n, seed)))
             for s, n, seed in (("train", 240, 1), ("dev", 60, 2), ("test", 60, 3))}
    config = _write(root / "p.yaml", _config(files))
    assert _run(config, root / "run", "--max-latency-ms", "1000") == 0
    return root, files


def test_tiny_pipeline_writes_the_frontier(tiny):
    from textsift.engines.frontier import pareto_flags

    root, _ = tiny
    report = json.loads((root / "run" / "frontier.json").read_text())
    rows = report["candidates"]
    assert [r["name"] for r in rows] == ["teacher", "student", "student_int8", "teacher_onnx"]
    assert [r["pareto"] for r in rows] == pareto_flags(rows)
    assert {r["backend"] for r in rows} == {"torch", "onnx-int8"}
    for r in rows:
        assert 0 <= r["score"] <= 1 and r["p50_ms_b1"] > 0 and r["texts_per_s_b32"] > 0 and r["parameters"] > 0
    assert report["teacher_score"] > 0.6  # three well-separated topics
    assert report["recommendation"]["choice"] == max(rows, key=lambda r: (r["score"], -r["p50_ms_b1"]))["name"]
    md = (root / "run" / "frontier.md").read_text()
    assert md.count("| ★ |") == sum(r["pareto"] for r in rows) and "Recommendation" in md
    assert (root / "run" / "frontier.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("teacher", "student", "student_int8", "teacher_onnx"):
        assert (root / "run" / "stages" / name).is_dir() and (root / "run" / "logs" / f"{name}.log").is_file()


def test_rerun_reuses_finished_stages(tiny, tmp_path, capsys):
    root, files = tiny
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    weights = {n: (run / "stages" / n / "model.safetensors").stat().st_mtime_ns for n in ("teacher", "student")}
    logs = {n: (run / "logs" / f"{n}.log").read_text() for n in ("teacher", "student", "teacher_onnx")}
    assert _run(str(root / "p.yaml"), run) == 0
    for name, mtime in weights.items():
        assert (run / "stages" / name / "model.safetensors").stat().st_mtime_ns == mtime  # not retrained
    assert {n: (run / "logs" / f"{n}.log").read_text() for n in logs} == logs
    assert not (run / "superseded").exists()
    assert "frontier of 4 candidates" in capsys.readouterr().out


def test_changed_stage_is_superseded_and_its_dependents_redone(tiny, tmp_path):
    root, files = tiny
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    teacher_mtime = (run / "stages" / "teacher" / "model.safetensors").stat().st_mtime_ns
    old_student = (run / "stages" / "student" / "model.safetensors").read_bytes()
    assert _run(_write(tmp_path / "p.yaml", _config(files, student_epochs=3)), run) == 0
    kept = sorted(p.name for p in (run / "superseded").iterdir())
    assert [k.rsplit("-", 2)[0] for k in kept] == ["student", "student_int8"]  # the changed stage and its dependent
    assert (run / "superseded" / kept[0] / "model.safetensors").read_bytes() == old_student  # kept, not deleted
    assert (run / "stages" / "teacher" / "model.safetensors").stat().st_mtime_ns == teacher_mtime
    assert len(json.loads((run / "stages" / "student" / "history.json").read_text())) == 3


def test_a_newer_exporter_redoes_only_the_onnx_stages(tiny, tmp_path, monkeypatch):
    import textsift.engines.export as export

    root, _ = tiny
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    weights = {n: (run / "stages" / n / "model.safetensors").stat().st_mtime_ns for n in ("teacher", "student")}
    monkeypatch.setattr(export, "GRAPH_REVISION", export.GRAPH_REVISION + 1)
    assert _run(str(root / "p.yaml"), run) == 0
    # the ONNX export is made again (its old folder kept); torch's dynamic int8 and the trainings are reused
    assert [p.name.rsplit("-", 2)[0] for p in (run / "superseded").iterdir()] == ["teacher_onnx"]
    assert {n: (run / "stages" / n / "model.safetensors").stat().st_mtime_ns for n in weights} == weights


def test_interrupted_training_stage_resumes_from_its_checkpoint(tiny, tmp_path, caplog):
    root, _ = tiny
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    assert (run / "stages" / "student" / "checkpoints" / "latest").is_file()
    state = json.loads((run / "pipeline_state.json").read_text())
    state["stages"]["student"]["status"] = "running"  # as a kill during its training leaves it
    (run / "pipeline_state.json").write_text(json.dumps(state))
    with caplog.at_level("INFO", logger="textsift"):
        assert _run(str(root / "p.yaml"), run) == 0
    assert "stage 2/4 student (distill from teacher): resuming from its last checkpoint" in caplog.text
    assert not (run / "superseded").exists()  # continued in place, not redone
    assert json.loads((run / "pipeline_state.json").read_text())["stages"]["student"]["status"] == "finished"


def test_failing_stage_skips_only_its_dependents(tiny, tmp_path, capsys):
    root, files = tiny
    run = tmp_path / "run"
    shutil.copytree(root / "run", run)
    extra = [{"name": "pruned", "kind": "prune", "width": 0.5},  # a TextCNN has no heads: prune fails
             {"name": "pruned_int8", "kind": "quantize", "from": "pruned"},
             {"name": "student_onnx", "kind": "export", "from": "student"}]
    assert _run(_write(tmp_path / "p.yaml", _config(files, extra=extra)), run) == 1
    state = json.loads((run / "pipeline_state.json").read_text())["stages"]
    assert state["pruned"]["status"] == "failed" and "pretrained-encoder" in state["pruned"]["error"]
    assert "Traceback" in (run / "logs" / "pruned.log").read_text()
    report = json.loads((run / "frontier.json").read_text())
    assert report["stages"]["pruned_int8"]["status"] == "skipped"
    assert "needs 'pruned', which failed" in report["stages"]["pruned_int8"]["reason"]
    assert state["student_onnx"]["status"] == "finished"  # independent: still built
    assert "student_onnx" in {r["name"] for r in report["candidates"]}
    assert "pruned: failed" in capsys.readouterr().out


def test_existing_teacher_run_is_used_in_place(tiny, tmp_path):
    root, files = tiny
    teacher = root / "run" / "stages" / "teacher"
    cfg = {**_config(files), "teacher": {"run": str(teacher)},
           "candidates": [{"name": "teacher", "kind": "teacher"}, {"name": "onnx", "kind": "export"}]}
    assert _run(_write(tmp_path / "p.yaml", cfg), tmp_path / "run", "--min-accuracy", "0.5") == 0
    report = json.loads((tmp_path / "run" / "frontier.json").read_text())
    assert report["stages"]["teacher"]["dir"] == str(teacher) and not (tmp_path / "run" / "stages" / "teacher").exists()
    assert {r["name"]: r["backend"] for r in report["candidates"]} == {"teacher": "torch", "onnx": "onnx"}
    scores = {r["name"]: r["score"] for r in report["candidates"]}
    assert scores["onnx"] == scores["teacher"]  # the same model on another runtime
    assert report["recommendation"]["choice"] in scores


def test_fingerprint_ignores_progress_bars_only():
    from textsift.engines.pipeline import fingerprint

    base = {"kind": "distill", "config": {"train": {"epochs": 2, "progress": True}}}
    quiet = {"kind": "distill", "config": {"train": {"epochs": 2, "progress": False}}}
    longer = {"kind": "distill", "config": {"train": {"epochs": 3, "progress": True}}}
    assert fingerprint(base, "p") == fingerprint(quiet, "p") != fingerprint(longer, "p")
    assert fingerprint(base, "p") != fingerprint(base, "q")  # a rebuilt parent changes every child
    assert fingerprint({"train": {"train": {"progress": True}}}, None) == fingerprint({"train": {"train": {}}}, None)


POINTS = [  # name, score, p50, size
    ("a", 0.90, 1.0, 10), ("b", 0.90, 1.0, 10),    # identical: neither dominates the other
    ("c", 0.85, 0.5, 5),                             # faster and smaller: on the frontier
    ("d", 0.85, 0.6, 5),                             # c is as accurate, as small, faster: dominated
    ("e", 0.95, 3.0, 50),                            # most accurate
    ("f", 0.80, 0.5, 5),                             # c ties latency and size, more accurate: dominated
    ("g", 0.70, 0.2, 20),                            # fastest, though big and weak
]


def _rows():
    return [{"name": n, "score": s, "p50_ms_b1": p, "size_mb": z, "metric": "accuracy"} for n, s, p, z in POINTS]


def test_frontier_marks_exactly_the_non_dominated():
    from textsift.engines.frontier import pareto_flags

    flags = dict(zip([p[0] for p in POINTS], pareto_flags(_rows())))
    assert flags == {"a": True, "b": True, "c": True, "d": False, "e": True, "f": False, "g": True}


def test_recommendation_for_budgets():
    from textsift.engines.frontier import recommend
    from textsift.errors import TextsiftError

    rows = _rows()
    assert recommend(rows, max_latency_ms=1.0)["choice"] == "a"      # best accuracy within 1 ms (a/b tie: first)
    assert recommend(rows, max_latency_ms=0.55)["choice"] == "c"
    assert recommend(rows, min_score=0.85)["choice"] == "c"          # fastest at or above the floor
    assert recommend(rows, min_score=0.9)["choice"] == "a"
    assert recommend(rows, max_latency_ms=2, min_score=0.85)["choice"] == "a"
    none = recommend(rows, max_latency_ms=0.1)
    assert none["choice"] is None and "no candidate has p50 <= 0.1 ms" in none["message"] and "g" in none["message"]
    assert recommend(rows, min_score=0.99)["choice"] is None
    assert recommend(rows)["choice"] is None
    with pytest.raises(TextsiftError, match="expected a fraction between 0 and 1"):
        recommend(rows, min_score=90)


@pytest.mark.parametrize("candidates, message", [
    ([{"name": "s", "kind": "quantize", "from": "studnet"}], r"candidates\[0\] \(s, line \d+\)\.from: unknown stage "
                                                            r"'studnet'"),
    ([{"name": "x", "kind": "export", "from": "y"}, {"name": "y", "kind": "export", "from": "x"}], "makes a cycle"),
    ([{"name": "x", "kind": "shrink"}], r"candidates\.0\.kind: Input should be 'teacher', 'distill'"),
    ([{"name": "x", "kind": "quantize", "width": 0.5}], "`width` is a prune setting, but kind is 'quantize'"),
    ([{"name": "x", "kind": "export", "int9": True}], "candidates.0.int9 .*unknown key; did you mean 'int8'"),
    ([{"name": "x", "kind": "distill", "config": {"model": {"name": "textcn"}}}], "did you mean 'textcnn'"),
    ([{"name": "q", "kind": "quantize"}, {"name": "e", "kind": "export", "from": "q"}],
     "'q' is a quantize stage; export builds on a PyTorch run"),
    ([{"name": "x", "kind": "export"}, {"name": "x", "kind": "quantize"}], "used twice"),
])
def test_bad_pipeline_configs_are_reported(tmp_path, tiny_data, candidates, message):
    from textsift.config.pipeline import load_pipeline_config
    from textsift.errors import ConfigError

    cfg = {**_config(tiny_data), "candidates": candidates}
    with pytest.raises(ConfigError, match=message):
        load_pipeline_config(_write(tmp_path / "bad.yaml", cfg))


def test_a_directory_that_is_not_a_pipeline_is_refused(tiny, tmp_path, capsys):
    root, _ = tiny
    (tmp_path / "notes.txt").write_text("mine")
    assert _run(str(root / "p.yaml"), tmp_path) == 2
    assert "is not a pipeline directory" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]  # nothing written


def test_teacher_run_must_be_a_finished_run(tmp_path, tiny_data):
    from textsift.config.pipeline import load_pipeline_config
    from textsift.errors import ConfigError

    cfg = {**_config(tiny_data), "teacher": {"run": str(tmp_path / "nowhere")}}
    with pytest.raises(ConfigError, match="teacher.run: .*run directory not found"):
        load_pipeline_config(_write(tmp_path / "bad.yaml", cfg))


def test_frontier_files_when_nothing_was_measured(tmp_path):
    from textsift.engines.frontier import recommend
    from textsift.reporting.frontier import frontier_report, summary, write_frontier

    stages = {"teacher": {"kind": "teacher", "status": "failed", "reason": "OSError: disk full"},
              "student": {"kind": "distill", "status": "skipped", "reason": "needs 'teacher', which failed"}}
    report = frontier_report([], stages, None, recommend([], max_latency_ms=1))
    write_frontier(report, tmp_path)
    assert (tmp_path / "frontier.png").is_file() and json.loads((tmp_path / "frontier.json").read_text())["candidates"] == []
    text = summary(report, tmp_path)
    assert "teacher: failed: OSError: disk full" in text and "no candidate was measured" in text


def test_every_pipeline_preset_validates(monkeypatch, tmp_path):
    """Shipped pipeline presets parse, and their stage configs validate (paths are not checked here)."""
    from textsift.config.load import _expand, read_yaml
    from textsift.config.pipeline import (PIPELINE_PRESET_DIR, PipelineConfig, graph_problems, pipeline_presets,
                                          stage_config_problems)

    assert {"sst2_sentence_pipeline", "thucnews_title_pipeline"} <= set(pipeline_presets())
    for name in pipeline_presets():
        text = (PIPELINE_PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8")
        assert text.startswith("# ") and "textsift pipeline -c " + name in text.splitlines()[0]
        cfg = PipelineConfig(**_expand(read_yaml(PIPELINE_PRESET_DIR / f"{name}.yaml")))
        assert graph_problems(cfg) == []
        assert [p for p in stage_config_problems(cfg) if "not found" not in p and "folder" not in p] == []


def test_readme_pipeline_example_validates():
    """The README's example pipeline config parses and its stage configs are valid."""
    import re

    from textsift.config.load import _expand
    from textsift.config.pipeline import PipelineConfig, graph_problems, order, stage_config_problems
    from conftest import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"```yaml\n(# my_pipeline\.yaml.*?)```", readme, re.S).group(1)
    cfg = PipelineConfig(**_expand(yaml.safe_load(block)))
    assert graph_problems(cfg) == []
    assert [p for p in stage_config_problems(cfg) if "not found" not in p and "folder" not in p] == []
    assert order(cfg) == ["teacher", "teacher_int8", "l2", "l2_int8", "half", "half_onnx"]
