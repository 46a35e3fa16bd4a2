"""task: hierarchical — hierarchy parsing, max-constraint scoring and loss, consistent decoding, metrics, runs."""
from __future__ import annotations

import json
import math
import random
import re

import numpy as np
import pytest
import torch

from conftest import write_config, write_jsonl
from textsift.api import TextClassifier
from textsift.cli.main import main
from textsift.data.hier_scheme import HierarchicalScheme
from textsift.data.hierarchy import Hierarchy
from textsift.data.labels import LabelScheme
from textsift.errors import DataError
from textsift.losses.base import LossParams
from textsift.losses.mcloss import MCLoss
from textsift.reporting.hierarchy import hierarchical_prf, level_metrics


def _edges(tmp_path, text: str):
    path = tmp_path / "edges.tsv"
    path.write_text(text, encoding="utf-8")
    return path


def _dag() -> Hierarchy:
    # A and B are roots; C has two parents; D below C; E below A
    return Hierarchy({"A": [], "B": [], "C": ["A", "B"], "D": ["C"], "E": ["A"]})


# ----------------------------------------------------------------------------------------- parsing

def test_paths_give_a_tree_with_levels():
    h = Hierarchy.from_paths(["x/y/z", "x/w", "q"])
    assert h.parents == {"x": [], "x/y": ["x"], "x/y/z": ["x/y"], "x/w": ["x"], "q": []}
    assert (h.levels["x"], h.levels["x/y"], h.levels["x/y/z"], h.levels["q"]) == (1, 2, 3, 1)
    assert h.close(["x/y/z"]) == ["x/y/z", "x/y", "x"]


def test_edges_file_with_two_parents(tmp_path):
    h = Hierarchy.from_edges_file(_edges(tmp_path, "# comment\nA\tC\nB\tC\n\nC\tD\nA\tE\n"))
    assert sorted(h.parents["C"]) == ["A", "B"]
    assert set(h.ancestors("D")) == {"C", "A", "B"}
    assert h.levels == {"A": 1, "B": 1, "C": 2, "D": 3, "E": 2}
    # level = 1 + LONGEST path from a root: F hangs below A and below D
    h2 = Hierarchy.from_edges_file(_edges(tmp_path, "A\tC\nB\tC\nC\tD\nA\tF\nD\tF\n"))
    assert h2.levels["F"] == 4


def test_cycle_is_reported_with_file_line_and_the_cycle(tmp_path):
    path = _edges(tmp_path, "root\tA\nA\tB\nB\tC\nC\tA\n")
    with pytest.raises(DataError, match=r"edges\.tsv:2: the hierarchy has a cycle: A -> B -> C -> A"):
        Hierarchy.from_edges_file(path)
    with pytest.raises(DataError, match="cycle: A -> A"):
        Hierarchy.from_edges_file(_edges(tmp_path, "A\tA\n"))


def test_malformed_edge_line(tmp_path):
    with pytest.raises(DataError, match=r"edges\.tsv:2: expected 'parent<TAB>child', found 'B C'"):
        Hierarchy.from_edges_file(_edges(tmp_path, "A\tB\nB C\n"))
    with pytest.raises(DataError, match=r"edges\.tsv:1: expected 'parent<TAB>child'"):
        Hierarchy.from_edges_file(_edges(tmp_path, "A\tB\tC\n"))


# ----------------------------------------------------------------------------------------- scoring

def _scheme(method="max_constraint", decoding="top_down", thresholds=None) -> HierarchicalScheme:
    h = _dag()
    return HierarchicalScheme(h.nodes, h, method, decoding, thresholds)


@pytest.mark.parametrize("method", ["max_constraint", "conditional"])
def test_hierarchy_aware_probabilities_are_monotonic(method):
    scheme = _scheme(method)
    probs = scheme.probabilities(torch.randn(200, 5) * 4).numpy()
    for child, parents in scheme.hierarchy.parents.items():
        for parent in parents:
            assert (probs[:, scheme.index[child]] <= probs[:, scheme.index[parent]]).all()
    flat = _scheme("flat").probabilities(torch.tensor([[-3.0, 0, 0, 3.0, 0]])).numpy()  # C above its parent A
    assert flat[0, 2] > flat[0, 0]  # flat does not constrain


def test_mcloss_against_a_hand_computed_case():
    # parent A (index 0), child B (index 1)
    loss = MCLoss(LossParams(), 2, torch.zeros(1, 2))
    loss.set_hierarchy(np.array([[1, 1], [0, 1]]), np.array([[0, 0], [1, 0]]))
    logits = torch.tensor([[0.0, 1.0], [-1.0, 2.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0]])

    def softplus(x):
        return math.log1p(math.exp(x))
    # row 1: A positive -> max over positive descendants {A} = 0 -> -log s(0); B negative -> -log(1 - s(1))
    # row 2: A negative -> max(-1, 2) = 2 -> -log(1 - s(2)); B negative -> -log(1 - s(2))
    expected = (math.log(2) + softplus(1.0) + softplus(2.0) + softplus(2.0)) / 4
    assert loss(logits, targets).item() == pytest.approx(expected, rel=1e-6)
    # a positive child lifts its positive parent: A scored by max(A, B) = 3
    got = loss(torch.tensor([[-2.0, 3.0]]), torch.tensor([[1.0, 1.0]])).item()
    assert got == pytest.approx((softplus(-3.0) + softplus(-3.0)) / 2, rel=1e-6)


def test_conditional_chains_probabilities_and_trains_below_gold_parents():
    scheme = _scheme("conditional")  # labels A, B, C, D, E; C below A and B; D below C
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0, 0.5]])
    s = torch.sigmoid(logits)[0]
    probs = scheme.probabilities(logits)[0]
    assert probs[2].item() == pytest.approx((s[2] * min(s[0], s[1])).item())  # C: two parents, the lower one
    assert probs[3].item() == pytest.approx((s[3] * s[2] * min(s[0], s[1])).item())
    from textsift.losses.conditional_bce import ConditionalBCE

    loss = ConditionalBCE(LossParams(), 5, torch.zeros(1, 5))
    loss.set_hierarchy(scheme.descendants, scheme.parent_matrix)
    targets = torch.tensor([[1.0, 0.0, 0.0, 0.0, 1.0]])  # B negative: C and D are not counted
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")[0]
    assert loss(logits, targets).item() == pytest.approx(((bce[0] + bce[1] + bce[4]) / 3).item())


@pytest.mark.parametrize("decoding", ["top_down", "threshold_closure"])
@pytest.mark.parametrize("method", ["flat", "max_constraint", "conditional"])
def test_decoding_is_always_consistent(method, decoding):
    rng = np.random.default_rng(0)
    scheme = _scheme(method, decoding, thresholds=rng.uniform(0.2, 0.8, 5))
    probs = scheme.probabilities(torch.from_numpy(rng.normal(0, 3, (500, 5)).astype(np.float32))).numpy()
    pred = scheme.decide(probs)
    assert scheme.consistent(pred).all()
    raw = scheme.raw_decide(probs)
    if method == "flat":
        assert not scheme.consistent(raw).all()  # the check above could fail
    if decoding == "threshold_closure":
        assert (pred >= raw).all()  # only adds ancestors
    else:
        assert (pred <= raw).all()  # only removes orphans


def test_top_down_needs_every_parent_in_a_dag():
    scheme = _scheme("flat", "top_down")
    raw = np.zeros((1, 5), dtype=np.int64)
    raw[0, [scheme.index["A"], scheme.index["C"], scheme.index["D"]]] = 1  # B (C's other parent) missing
    assert scheme.names(scheme.decode(raw)[0]) == ["A"]
    closure = _scheme("flat", "threshold_closure")
    assert closure.names(closure.decode(raw)[0]) == ["A", "B", "C", "D"]


def test_hierarchical_precision_recall_on_a_hand_worked_example():
    # tree: a -> a1, a -> a2, b ; labels order [a, a1, a2, b]
    scheme = LabelScheme.create("hierarchical", ["a", "a/1", "a/2", "b"])
    gold = np.array([[1, 1, 0, 0], [0, 0, 0, 1]])
    pred = np.array([[0, 0, 1, 0], [1, 1, 0, 1]])  # row 1 unclosed: a/2 alone is augmented with a
    # row 1: G={a,a1}, P={a,a2}: overlap 1; row 2: G={b}, P={a,a1,b}: overlap 1
    got = hierarchical_prf(gold, pred, scheme.descendants)
    assert got["h_precision"] == pytest.approx(2 / 5) and got["h_recall"] == pytest.approx(2 / 3)
    assert got["h_f1"] == pytest.approx(2 * (2 / 5) * (2 / 3) / (2 / 5 + 2 / 3))
    levels = level_metrics(gold, pred, scheme.levels)
    assert levels["1"]["labels"] == 2 and levels["2"]["labels"] == 2
    # level 1: gold {a},{b}; pred {},{a,b}: tp 1 (b), fp 1 (a), fn 1 (a) -> 2tp / (2tp + fp + fn)
    assert levels["1"]["micro_f1"] == pytest.approx(2 / 4)


def test_scheme_round_trips_through_labels_json():
    scheme = _scheme("max_constraint", "threshold_closure", thresholds=[0.1, 0.2, 0.3, 0.4, 0.5])
    back = LabelScheme.from_dict(json.loads(json.dumps(scheme.to_dict())))
    assert isinstance(back, HierarchicalScheme)
    assert (back.method, back.decoding, back.labels) == ("max_constraint", "threshold_closure", scheme.labels)
    assert back.hierarchy.parents == scheme.hierarchy.parents
    assert np.allclose(back.thresholds, scheme.thresholds)


# ----------------------------------------------------------------------------------------- runs

WORDS = {"sport/football": ["goal", "striker", "penalty", "keeper"], "sport/tennis": ["serve", "racket", "ace", "set"],
         "money/stock": ["shares", "index", "trader", "dividend"], "money/bank": ["loan", "deposit", "branch", "rate"],
         "tech": ["chip", "code", "robot", "cloud"]}


def _hier_rows(n: int, seed: int, with_paths: bool = True) -> list[dict]:
    rng = random.Random(seed)
    leaves = sorted(WORDS)
    rows = []
    for _ in range(n):
        picked = sorted(rng.sample(leaves, rng.choice([1, 1, 1, 2])))
        words = [w for leaf in picked for w in rng.sample(WORDS[leaf], 2)] + rng.sample(["the", "a", "new", "big"], 2)
        rng.shuffle(words)
        labels = picked if with_paths else [leaf.split("/")[-1] for leaf in picked]
        rows.append({"text": " ".join(words), "labels": labels})
    return rows


@pytest.fixture(scope="module")
def hier_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hier")
    return {split: str(write_jsonl(tmp / f"{split}.jsonl", _hier_rows(n, seed)))
            for split, n, seed in (("train", 240, 1), ("dev", 60, 2), ("test", 60, 3))}


@pytest.mark.parametrize("method,decoding", [("flat", "top_down"), ("max_constraint", "threshold_closure"),
                                             ("conditional", "top_down")])
def test_train_evaluate_predict_and_reload(hier_data, tmp_path, method, decoding):
    cfg = write_config(tmp_path / "h.yaml", hier_data, model_name="textcnn", model={"num_filters": 16},
                       task="hierarchical", hierarchy={"method": method, "decoding": decoding},
                       train={"epochs": 6}, report={"plots": False, "tensorboard": False})
    run = tmp_path / "run"
    assert main(["train", "-c", str(cfg), "--run-dir", str(run)]) == 0
    labels = json.loads((run / "labels.json").read_text())
    assert (labels["task"], labels["method"], labels["decoding"]) == ("hierarchical", method, decoding)
    assert labels["hierarchy"]["parents"]["sport/tennis"] == ["sport"]
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["consistency"] == 1.0 and test["level2_macro_f1"] > 0.5 and test["h_f1"] > 0.6
    reports = run / "reports"
    summary = json.loads((reports / "test_hierarchy.json").read_text())
    assert set(summary["levels"]) == {"1", "2"} and summary["method"] == method
    for name in ("test_level1_report.txt", "test_level2_report.json", "test_level2_badcases.jsonl",
                 "dev_hierarchy.json"):
        assert (reports / name).is_file(), name

    clf = TextClassifier.load(run)  # reload from the run directory
    rows = [json.loads(line) for line in open(hier_data["test"], encoding="utf-8")]
    predicted = clf.predict([r["text"] for r in rows])
    for names in predicted:
        assert all(n.split("/")[0] in names for n in names)  # every ancestor is there
    exact = np.mean([set(p) == set(Hierarchy.from_paths(r["labels"]).nodes) for p, r in zip(predicted, rows)])
    assert exact == pytest.approx(test["subset_accuracy"])  # predict decodes exactly as evaluation does
    if method == "conditional":  # an ONNX export decodes exactly as the run it came from
        assert main(["export", str(run), "--out", str(tmp_path / "onnx")]) == 0
        assert TextClassifier.load(tmp_path / "onnx", backend="onnx").predict([r["text"] for r in rows]) == predicted
    assert main(["evaluate", str(run), "--data", hier_data["test"], "--report-dir", str(tmp_path / "ev")]) == 0
    assert json.loads((tmp_path / "ev" / "eval_hierarchy.json").read_text())["consistency"] == 1.0


def test_edges_file_run_adds_ancestors_and_checks_labels(tmp_path, capsys):
    data = {split: str(write_jsonl(tmp_path / f"{split}.jsonl", _hier_rows(n, seed, with_paths=False)))
            for split, n, seed in (("train", 120, 1), ("dev", 40, 2))}
    edges = _edges(tmp_path, "sport\tfootball\nsport\ttennis\nmoney\tstock\nmoney\tbank\nballgame\tfootball\n"
                             "ballgame\ttennis\n")  # tech missing; football/tennis with two parents
    cfg = write_config(tmp_path / "e.yaml", {**data, "hierarchy": str(edges)}, task="hierarchical",
                       train={"epochs": 2}, report={"plots": False, "tensorboard": False})
    assert main(["train", "-c", str(cfg), "--run-dir", str(tmp_path / "bad")]) == 2
    assert re.search(r"train\.jsonl:\d+: label 'tech' is not a node of the edges file", capsys.readouterr().err)
    edges.write_text(edges.read_text() + "things\ttech\n")
    run = tmp_path / "run"
    assert main(["train", "-c", str(cfg), "--run-dir", str(run)]) == 0
    clf = TextClassifier.load(run)
    for names in clf.predict(["goal striker", "chip robot", "serve ace"]):
        for n in names:
            assert set(clf._bundle.scheme.hierarchy.ancestors(n)) <= set(names)
    assert json.loads((run / "metrics.json").read_text())["dev"]["consistency"] == 1.0


def test_hierarchy_settings_need_a_hierarchical_task(tmp_path, hier_data):
    from textsift.config.load import load_config
    from textsift.errors import ConfigError

    cfg = write_config(tmp_path / "c.yaml", hier_data, task="multi_label", hierarchy={"method": "max_constraint"})
    with pytest.raises(ConfigError, match="hierarchy.method only apply to task: hierarchical, but task is multi_label"):
        load_config(str(cfg))
    cfg = write_config(tmp_path / "d.yaml", {**hier_data, "hierarchy": str(tmp_path / "nope.tsv")})
    with pytest.raises(ConfigError, match="data.hierarchy: file not found"):
        load_config(str(cfg))


def test_kfold_hierarchical_run(hier_data, tmp_path):
    cfg = write_config(tmp_path / "k.yaml", {"train": hier_data["train"], "test": hier_data["test"]},
                       task="hierarchical", hierarchy={"method": "max_constraint"},
                       train={"epochs": 2, "kfold": 2}, report={"plots": False, "tensorboard": False})
    run = tmp_path / "kf"
    assert main(["train", "-c", str(cfg), "--run-dir", str(run)]) == 0
    assert json.loads((run / "labels.json").read_text())["method"] == "max_constraint"
    assert json.loads((run / "metrics.json").read_text())["test"]["consistency"] == 1.0


def test_streaming_hierarchical_run(hier_data, tmp_path):
    cfg = write_config(tmp_path / "s.yaml", {**hier_data, "streaming": True}, task="hierarchical",
                       hierarchy={"method": "conditional"}, train={"epochs": 2},
                       report={"plots": False, "tensorboard": False})
    run = tmp_path / "st"
    assert main(["train", "-c", str(cfg), "--run-dir", str(run)]) == 0
    labels = json.loads((run / "labels.json").read_text())
    assert labels["method"] == "conditional" and labels["hierarchy"]["parents"]["money/bank"] == ["money"]
    assert json.loads((run / "metrics.json").read_text())["test"]["consistency"] == 1.0
