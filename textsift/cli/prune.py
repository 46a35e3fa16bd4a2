from __future__ import annotations

HELP = "Prune a run into a new, smaller run: attention heads, neurons and layers (`hf`), or the vocabulary (any model)."
EXAMPLES = """examples:
  textsift prune runs/sst2_minilm --run-dir runs/sst2_half --width 0.5 --retrain-epochs 2
  textsift prune runs/sst2_minilm --run-dir runs/sst2_h8 --heads 8 --ffn 768
  textsift prune runs/thucnews --run-dir runs/thucnews_small --vocab-from titles.txt
  textsift prune runs/sst2_minilm --run-dir runs/sst2_l3 --layers 0,2,4 --retrain-epochs 1 --set train.lr=3e-5
"""


def add_arguments(p) -> None:
    p.add_argument("run_dir", help="a finished `hf` run")
    p.add_argument("--run-dir", dest="out", required=True, help="the new run directory for the pruned model")
    p.add_argument("--width", type=float, help="keep this fraction of heads and neurons per layer (DynaBERT-style "
                                               "0.75, 0.5, 0.25)")
    p.add_argument("--heads", type=int, help="attention heads kept per layer")
    p.add_argument("--ffn", type=int, help="feed-forward neurons kept per layer")
    p.add_argument("--layers", help="comma-separated 0-based layers to keep, e.g. 0,2,4")
    p.add_argument("--vocab-from", help="keep only the vocabulary this corpus uses (.txt lines, .jsonl, .csv): "
                                        "a smaller embedding matrix, same logits on covered text; any model")
    p.add_argument("--retrain-epochs", type=int, default=0,
                   help="re-train the pruned model this many epochs by distillation from the unpruned run")
    p.add_argument("--importance-examples", type=int, default=512, help="training texts used to rank heads/neurons")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for re-training (repeatable), e.g. --set train.lr=3e-5")


def run(args) -> int:
    from textsift.engines.logging_utils import setup_console_logging
    from textsift.engines.prune import prune_run
    from textsift.errors import TextsiftError

    setup_console_logging()
    layers = None
    if args.layers:
        try:
            layers = [int(x) for x in args.layers.split(",")]
        except ValueError:
            raise TextsiftError(f"--layers: expected comma-separated layer numbers such as 0,2,4, got {args.layers!r}") from None
    report = prune_run(args.run_dir, args.out, args.width, args.heads, args.ffn, layers, args.retrain_epochs,
                       args.importance_examples, args.overrides, args.vocab_from)
    print(f"pruned run: {args.out}\n{report['table']}")
    return 0
