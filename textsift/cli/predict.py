from __future__ import annotations

HELP = "Predict labels for a file (streaming, JSON Lines out), or interactively when no --input is given."
EXAMPLES = """examples:
  textsift predict runs/thucnews --input titles.txt --output predictions.jsonl
  textsift predict runs/thucnews --input test.jsonl --output - --top-k 3
  textsift predict runs/thucnews --text "国足客场两球不敌日本队"
  textsift predict runs/thucnews                      # interactive: type a text, get its labels
"""


def add_arguments(p) -> None:
    from textsift.cli.serve import add_backend_arguments

    p.add_argument("run_dir", help="a run directory written by `textsift train` (an export folder with --backend onnx)")
    add_backend_arguments(p)
    p.add_argument("--text", action="append", help="a text to classify (repeatable); JSON Lines to stdout")
    p.add_argument("--input", help=".txt (one text per line), .jsonl, .csv or .tsv; text fields as in training")
    p.add_argument("--output", help="JSON Lines output file, or - for stdout (default: stdout)")
    p.add_argument("--top-k", type=int, default=3, help="how many top labels to list per text")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")


def run(args) -> int:
    from textsift.api import TextClassifier

    clf = TextClassifier.load(args.run_dir, backend=args.backend, threads=args.threads, spinning=not args.no_spin,
                              precision=args.precision)
    if args.top_k < 1:
        from textsift.errors import TextsiftError
        raise TextsiftError(f"--top-k: expected a positive number, got {args.top_k}")
    clf.batch_size = args.batch_size
    if args.text:
        import json
        for rec in clf.predict_details(args.text, args.top_k):
            print(json.dumps(rec, ensure_ascii=False))
        return 0
    if args.input is None:
        return _interactive(clf, args.top_k)
    return _stream(clf, args)


def _stream(clf, args) -> int:
    import json
    import os
    import sys
    from itertools import islice
    from pathlib import Path

    from textsift.data import iter_texts
    from textsift.engines.logging_utils import progress
    from textsift.errors import TextsiftError

    to_stdout = args.output in (None, "-")
    if not to_stdout:
        out_path = Path(args.output)
        if Path(args.input).resolve() == out_path.resolve():
            raise TextsiftError("--output: refusing to write predictions over the --input file")
        if out_path.exists() and not args.overwrite:
            raise TextsiftError(f"--output {out_path}: file exists; pass --overwrite to replace it")
        tmp = out_path.with_name(f".{out_path.name}.partial")
        sink = open(tmp, "w", encoding="utf-8")
    else:
        sink = sys.stdout
    texts = iter_texts(args.input, clf.bundle.config.data)
    # constant memory: read, predict and write one chunk at a time; the bar shows texts/s
    bar = progress(total=None, enabled=not to_stdout and sys.stderr.isatty(), desc="predict", unit="texts")
    count = 0
    try:
        while True:
            chunk = list(islice(texts, args.batch_size * 8))  # bounded memory on any input size
            if not chunk:
                break
            for (line, _), rec in zip(chunk, clf.predict_details([t for _, t in chunk], args.top_k)):
                sink.write(json.dumps({"line": line, **rec}, ensure_ascii=False) + "\n")
            count += len(chunk)
            bar.update(len(chunk))
    except BaseException:
        if not to_stdout:
            sink.close()
            os.unlink(tmp)
        raise
    bar.close()
    if not to_stdout:
        sink.close()
        os.replace(tmp, out_path)  # the output appears only when complete
        print(f"{count} predictions written to {out_path}", file=sys.stderr)
    return 0


def _interactive(clf, top_k: int) -> int:
    import sys

    interactive = sys.stdin.isatty()
    if interactive:
        print(f"textsift interactive prediction ({clf.task}, {len(clf.labels)} labels). "
              "Type a text and press Enter; an empty line or Ctrl-D quits.")
    while True:
        try:
            text = input("> " if interactive else "")
        except EOFError:
            break
        if not text.strip():
            if interactive:
                break
            continue
        rec = clf.predict_details([text], top_k)[0]
        if "tasks" in rec:  # a multi-task student: one answer per task
            print("\t".join(f"{task}: {r['label']} [" + ", ".join(f"{x['label']} {x['probability']:.3f}"
                                                               for x in r["top_k"]) + "]"
                            for task, r in rec["tasks"].items()), flush=True)
            continue
        shown = ", ".join(f"{x['label']} {x['probability']:.3f}" for x in rec["top_k"])
        decided = rec.get("label") or ", ".join(rec["labels"]) or "(no label above threshold)"
        print(f"{decided}\t[{shown}]", flush=True)
    return 0
