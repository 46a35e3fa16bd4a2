from __future__ import annotations

HELP = "Evaluate a trained run on a labelled file: metrics, per-class report, confusion matrix."
EXAMPLES = """examples:
  textsift evaluate runs/thucnews --data ../shared/datasets/thucnews_title/test.jsonl
  textsift evaluate runs/thucnews --data test.csv --json
  textsift evaluate runs/thucnews --data test.jsonl --report-dir out/   # also bad cases + confusion PNG
  textsift evaluate runs/multi --data trec6/test.jsonl --task question  # one task of a multi-task student
"""


def add_arguments(p) -> None:
    from textsift.cli.serve import add_backend_arguments

    p.add_argument("run_dir", help="a run directory written by `textsift train` (an export folder with --backend onnx)")
    add_backend_arguments(p)
    p.add_argument("--data", required=True, help="labelled file (same fields as the training data)")
    p.add_argument("--json", action="store_true", help="print metrics and the report as JSON")
    p.add_argument("--report-dir", help="also write report, confusion matrix and bad cases here")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--task", help="a multi-task student (distill.tasks): the task whose labels the file holds")


def run(args) -> int:
    import json
    import tempfile
    from pathlib import Path

    from textsift.engines.evaluation import evaluate_examples
    from textsift.reporting.metrics import format_report
    from textsift.rundir import load_bundle

    b = load_bundle(args.run_dir, backend=args.backend, threads=args.threads, spinning=not args.no_spin,
                    precision=args.precision)
    examples, labels, prefix = _examples(args, b)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.report_dir) if args.report_dir else Path(tmp)
        metrics = evaluate_examples(b.model, b.scheme, b.encoder, examples, b.max_length, args.batch_size,
                                    report_dir=out, split="eval", bad_cases=b.config.report.bad_cases,
                                    plots=bool(args.report_dir))
        report = json.loads((out / f"{prefix}_report.json").read_text(encoding="utf-8"))["report"]
        confusion = (json.loads((out / f"{prefix}_confusion.json").read_text(encoding="utf-8"))
                     if (out / f"{prefix}_confusion.json").is_file() else None)
    if args.json:
        print(json.dumps({"metrics": metrics, "report": report, "confusion": confusion}, ensure_ascii=False, indent=2))
    else:
        print(format_report(report, metrics, f"{args.data} ({len(examples)} examples)"))
        if confusion is not None and len(labels) <= 20:
            print(_confusion_table(confusion, labels))
        if args.report_dir:
            print(f"reports written to {args.report_dir}")
    return 0


def _examples(args, b):
    """The labelled examples, the label names of the report and its files' prefix. A multi-task student's
    file holds one task's labels (``--task``): they are read as that task's ``task/label``."""
    from textsift.data import check_known_labels, read_examples
    from textsift.errors import TextsiftError

    scheme = b.scheme
    if not scheme.multi_task:
        if args.task:
            raise TextsiftError(f"--task: {args.run_dir} is a {scheme.task} model, not a multi-task student; "
                                "leave --task out")
        examples = read_examples(args.data, b.config.data, task=scheme.task)
        check_known_labels(examples, scheme.labels, "evaluation", args.data)
        return examples, scheme.labels, "eval"
    if args.task not in scheme.tasks:
        raise TextsiftError(f"--task: {args.run_dir} is a multi-task student; name the task whose labels "
                            f"{args.data} holds with --task, one of {', '.join(scheme.tasks)} (found "
                            f"{args.task or 'no --task'})")
    labels = scheme.task_labels(scheme.tasks.index(args.task))
    examples = read_examples(args.data, b.config.data, task="single_label")
    check_known_labels(examples, labels, "evaluation", args.data)
    return scheme.prefix(examples, args.task), labels, f"eval_{args.task}"


def _confusion_table(confusion, labels) -> str:
    matrix = confusion["matrix"] if isinstance(confusion, dict) else confusion
    width = max(6, max(len(x) for x in labels) + 1)
    lines = ["confusion matrix (rows: gold, columns: predicted)",
             " " * width + "".join(f"{i:>6}" for i in range(len(labels)))]
    for i, (label, row) in enumerate(zip(labels, matrix)):
        lines.append(f"{label:<{width}}" + "".join(f"{v:>6}" for v in row) + f"   [{i}]")
    return "\n".join(lines)
