from __future__ import annotations

HELP = "Analyse data files: labels, empty and duplicate texts, train/dev/test leakage, lengths, max_length."
EXAMPLES = """examples:
  textsift data-report ../shared/datasets/thucnews_title/train.jsonl ../shared/datasets/thucnews_title/test.jsonl
  textsift data-report train.csv --text-field title --text-field body --label-field category --json
  textsift data-report train.jsonl -c my.yaml       # read the files the way the config does
"""


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", help="data files (.jsonl, .csv, .tsv)")
    p.add_argument("-c", "--config", help="take data/tokenizer settings from this config or preset")
    p.add_argument("--text-field", action="append", help="text field (repeat to join several)")
    p.add_argument("--label-field", help="label field (default: label, else labels)")
    p.add_argument("--tokenizer", choices=["char", "word"], help="tokenizer for token lengths (default char)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args) -> int:
    import json

    from textsift.config.load import load_config
    from textsift.config.schema import DataConfig, TokenizerConfig
    from textsift.data.report import build_report, format_report
    from textsift.tokenizers import build_tokenizer

    if args.config:
        cfg = load_config(args.config, check_files=False)
        data_cfg, tok_cfg = cfg.data, cfg.tokenizer
    else:
        data_cfg, tok_cfg = DataConfig(), TokenizerConfig()
    updates = {}
    if args.text_field:
        updates["text_field"] = args.text_field if len(args.text_field) > 1 else args.text_field[0]
    if args.label_field:
        updates["label_field"] = args.label_field
    data_cfg = data_cfg.model_copy(update=updates)
    if args.tokenizer:
        tok_cfg = tok_cfg.model_copy(update={"name": args.tokenizer})
    report = build_report(args.files, data_cfg, build_tokenizer(tok_cfg))
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else format_report(report))
    return 0
