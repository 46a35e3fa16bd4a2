"""The Hugging Face ``Trainer`` peer of the pretrained-encoder benchmark, run in its own child process
by ``pretrained.py``.

    HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python benchmarks/hf_trainer_peer.py \\
        --model ~/.cache/textsift-assets/minilm-l6 --train train.jsonl --test test.jsonl --precision bf16

Fine-tunes ``AutoModelForSequenceClassification`` from a local folder with the stock ``Trainer`` and
its defaults (AdamW, linear decay, no warmup, weight decay 0, gradient clipping at 1.0, random
sampler), tokenised with truncation to ``--max-length`` and the Trainer's default dynamic-padding
collator (the tokenizer is passed as ``processing_class``). No evaluation during training, then
``trainer.predict`` on the test file. Departures from the defaults, all outside the training loop:
no checkpoints (``save_strategy="no"``), no progress bars, and an evaluation batch of 4 x the
training batch (as textsift's default) instead of 8.

Prints exactly one JSON line on stdout (the last one; the Trainer's own log dicts come before it);
progress goes to stderr. Reading the JSONL files is not timed. Timings:

    load_s      tokenizer + model from the folder
    tokenize_s  tokenising train (and test) once, before training
    train_s     our perf_counter around ``trainer.train()``
    train_runtime / train_samples_per_second   the Trainer's own numbers from ``train()``'s metrics
    predict_s   ``trainer.predict`` on test + argmax
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_data import all_classes, read_jsonl, score  # noqa: E402

# Nothing in this process may reach the Hugging Face hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def log(msg: str) -> None:
    print(f"[hf_trainer] {msg}", file=sys.stderr, flush=True)


class Encoded:
    """A map-style dataset of tokenised examples (plain lists; the collator pads and tensorises)."""

    def __init__(self, enc: dict, labels: list[int] | None):
        self.enc, self.labels = enc, labels

    def __len__(self) -> int:
        return len(self.enc["input_ids"])

    def __getitem__(self, i: int) -> dict:
        item = {k: v[i] for k, v in self.enc.items()}
        if self.labels is not None:
            item["labels"] = self.labels[i]
        return item


def _name(option) -> str:
    """``adamw_torch_fused`` rather than ``OptimizerNames.ADAMW_TORCH_FUSED``."""
    return str(getattr(option, "value", option))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, required=True,
                   help="local Hugging Face folder (config.json, weights, tokenizer)")
    p.add_argument("--train", type=Path, required=True)
    p.add_argument("--test", type=Path, required=True)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--eval-batch-size", type=int, default=None, help="default 4 x --batch-size")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch
    import transformers
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments,
                              set_seed)

    train_x, train_y = read_jsonl(args.train)
    test_x, test_y = read_jsonl(args.test)
    classes = sorted(set(train_y))   # the head knows train's labels; a test-only label counts as wrong
    index = {c: i for i, c in enumerate(classes)}
    log(f"{len(train_x)} train / {len(test_x)} test examples, {len(classes)} labels, precision {args.precision}, "
        f"torch threads {torch.get_num_threads()}")

    t0 = time.perf_counter()
    set_seed(args.seed)   # before the model: seeds the new classification head's initialisation
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=len(classes), id2label=dict(enumerate(classes)), label2id=index,
        dtype=torch.float32)   # fp32 master weights in both modes; bf16 is autocast, as the Trainer does it
    load_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    train_ds = Encoded(tok(train_x, truncation=True, max_length=args.max_length), [index[y] for y in train_y])
    test_ds = Encoded(tok(test_x, truncation=True, max_length=args.max_length), None)
    tokenize_s = time.perf_counter() - t0

    with tempfile.TemporaryDirectory(prefix="hf-trainer-") as out_dir:
        targs = TrainingArguments(
            output_dir=out_dir,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            per_device_eval_batch_size=args.eval_batch_size or 4 * args.batch_size,
            learning_rate=args.lr,
            seed=args.seed,
            bf16=args.precision == "bf16",
            use_cpu=True,
            eval_strategy="no",
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
        )
        trainer = Trainer(model=model, args=targs, train_dataset=train_ds, processing_class=tok)
        t0 = time.perf_counter()
        out = trainer.train()
        train_s = time.perf_counter() - t0
        log(f"trained in {train_s:.1f} s: {out.metrics}")

        t0 = time.perf_counter()
        pred = trainer.predict(test_ds)
        pred_ids = pred.predictions.argmax(-1).tolist()
        predict_s = time.perf_counter() - t0

    n_seen = len(train_ds) * args.epochs
    result = {
        "metrics": score(test_y, [classes[i] for i in pred_ids], all_classes(train_y, test_y)),
        "n_train": len(train_ds), "n_test": len(test_ds), "epochs": args.epochs,
        "train_examples": n_seen,
        "load_s": load_s, "tokenize_s": tokenize_s, "train_s": train_s, "predict_s": predict_s,
        "own_train_ex_s": n_seen / train_s,
        "train_runtime": out.metrics.get("train_runtime"),
        "train_samples_per_second": out.metrics.get("train_samples_per_second"),
        "global_step": out.global_step, "training_loss": out.training_loss,
        "torch_threads": torch.get_num_threads(),
        "mixed_precision": str(getattr(trainer.accelerator, "mixed_precision", None)),
        "recipe": (f"transformers {transformers.__version__} Trainer, AutoModelForSequenceClassification, "
                   f"{'bf16 autocast (bf16=True, use_cpu=True)' if args.precision == 'bf16' else 'fp32'}, "
                   f"optim {_name(targs.optim)}, lr {args.lr} {_name(targs.lr_scheduler_type)} "
                   f"warmup {targs.warmup_steps}, "
                   f"weight decay {targs.weight_decay}, max_grad_norm {targs.max_grad_norm}, "
                   f"batch {args.batch_size}, epochs {args.epochs:g}, max_length {args.max_length} "
                   f"(truncation, dynamic padding), seed {args.seed}, no eval/checkpoints during training"),
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
