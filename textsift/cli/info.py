from __future__ import annotations

HELP = "Show a run's model: parameters per module, size on disk, task, labels, metrics."
EXAMPLES = """examples:
  textsift info runs/thucnews
  textsift info runs/thucnews --json
"""


def add_arguments(p) -> None:
    p.add_argument("run_dir", help="a run directory written by `textsift train`")
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    import json

    from textsift.rundir import METRICS, load_bundle, read_json

    b = load_bundle(args.run_dir)
    info = describe(b)
    metrics_path = b.run_dir / METRICS
    info["metrics"] = read_json(metrics_path) if metrics_path.is_file() else None
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return 0
    print(f"run: {b.run_dir}\nmodel: {info['model']}   task: {info['task']}   labels: {len(info['labels'])}")
    print(f"vocabulary: {info['vocab_size']:,} ids   max_length: {b.max_length}")
    width = max(len(m["module"]) for m in info["modules"])
    print(f"\n{'module':<{width}}  {'parameters':>12}  {'trainable':>12}")
    for m in info["modules"]:
        print(f"{m['module']:<{width}}  {m['parameters']:>12,}  {m['trainable']:>12,}")
    print(f"{'total':<{width}}  {info['parameters']:>12,}  {info['trainable']:>12,}")
    print(f"\nsize on disk: weights {_mb(info['weights_bytes'])}, run directory {_mb(info['run_dir_bytes'])}")
    for split in ("dev", "test"):
        m = (info["metrics"] or {}).get(split)
        if m:
            print(f"{split}: " + ", ".join(f"{k} {m[k]:.4f}" for k in ("accuracy", "macro_f1", "micro_f1", "ece")
                                           if k in m))
            for task in getattr(b.scheme, "tasks", ()):  # a multi-task student: each task's own numbers
                if f"{task}/accuracy" in m:
                    print(f"  {task}: " + ", ".join(f"{k} {m[f'{task}/{k}']:.4f}" for k in ("accuracy", "macro_f1")))
    if info["temperature"] is not None:
        print(f"calibration: softmax temperature {info['temperature']:.4f} (calibration.json)")
    return 0


def describe(b) -> dict:
    """Parameters per top-level module and sizes on disk."""
    from textsift.rundir import MODEL_FILE

    modules = []
    for name, module in b.model.named_children():
        params = list(module.parameters())
        modules.append({"module": name, "type": type(module).__name__, "parameters": sum(p.numel() for p in params),
                        "trainable": sum(p.numel() for p in params if p.requires_grad)})
    own = list(b.model.parameters(recurse=False))  # parameters held by the model itself, not a submodule
    if own:
        modules.append({"module": "(own)", "type": "Parameter", "parameters": sum(p.numel() for p in own),
                        "trainable": sum(p.numel() for p in own if p.requires_grad)})
    params = list(b.model.parameters())
    return {"model": type(b.model).__name__, "task": b.scheme.task, "labels": b.scheme.labels,
            "vocab_size": b.encoder.vocab_size, "modules": modules,
            "temperature": None if b.scheme.multi_label or b.scheme.multi_task else b.scheme.temperature,
            "parameters": sum(p.numel() for p in params),
            "trainable": sum(p.numel() for p in params if p.requires_grad),
            "weights_bytes": sum(f.stat().st_size for f in b.run_dir.rglob(MODEL_FILE)),  # K-fold: every fold
            "run_dir_bytes": sum(f.stat().st_size for f in b.run_dir.rglob("*") if f.is_file())}


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"
