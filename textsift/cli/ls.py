from __future__ import annotations

HELP = "List registered models, tokenizers, losses, tricks and shipped presets."
EXAMPLES = """examples:
  textsift ls
  textsift ls models
"""

KINDS = ("models", "tokenizers", "losses", "tricks", "presets")


def add_arguments(p) -> None:
    p.add_argument("kind", nargs="?", choices=KINDS, help="list only this kind")


def run(args) -> int:
    from textsift.config.load import PRESET_DIR, preset_names
    from textsift.config.pipeline import PIPELINE_PRESET_DIR, pipeline_presets
    from textsift.registry import LOSSES, MODELS, TOKENIZERS, TRICKS

    registries = {"models": MODELS, "tokenizers": TOKENIZERS, "losses": LOSSES, "tricks": TRICKS}
    for kind in KINDS if args.kind is None else (args.kind,):
        print(f"{kind}:")
        if kind == "presets":
            for name in preset_names():
                first = (PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0].lstrip("# ")
                print(f"  {name:<20} {first}")
            print("pipeline presets (textsift pipeline -c NAME):")
            for name in pipeline_presets():
                first = (PIPELINE_PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8").splitlines()[0]
                print(f"  {name:<24} {first.lstrip('# ').split('. Run:')[0]}")
        else:
            names = registries[kind].names()
            for name in names:
                print(f"  {name:<20} {registries[kind].entry(name).summary}")
            if not names:
                print("  (none yet)")
    return 0
