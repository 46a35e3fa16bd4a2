from __future__ import annotations

HELP = "Distil teacher runs into a student model (a config with a `distill` section); writes a run directory."
EXAMPLES = """examples:
  textsift distill -c distill.yaml --run-dir runs/student
  textsift distill -c distill.yaml --run-dir runs/student distill.temperature=2 distill.hard_weight=0.5
  textsift distill -c distill.yaml --run-dir runs/s2 distill.teacher=runs/minilm model.name=textcnn
  textsift distill --resume runs/student            # continue a killed distillation exactly
"""


def add_arguments(p) -> None:
    from textsift.cli.train import add_arguments as train_arguments

    train_arguments(p)
    p.set_defaults(require_distill=True)


def run(args) -> int:
    from textsift.cli.train import run as train

    return train(args)
