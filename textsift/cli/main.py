"""``textsift`` entry point: dispatches to one module per subcommand.

User errors (``TextsiftError``) are printed as one ``error:`` message and exit with status 2, without a
traceback; ``TEXTSIFT_DEBUG=1`` shows the traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from textsift import __version__

COMMANDS = ["train", "distill", "validate", "evaluate", "predict", "export", "prune", "quantize", "pipeline", "serve", "info", "ls", "data_report"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textsift", description="Train, evaluate and use text classifiers.",
        epilog="Run `textsift COMMAND --help` for examples.")
    parser.add_argument("--version", action="version", version=f"textsift {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"textsift.cli.{name}")
        p = sub.add_parser(name.replace("_", "-"), help=module.HELP, description=module.HELP,
                           epilog=module.EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from textsift.errors import TextsiftError

    args = build_parser().parse_args(argv)
    try:
        code = int(args.run(args) or 0)
        if argv is None:  # the console command, not a call from Python
            from textsift.engines.distributed import end_process

            end_process(code)
        return code
    except TextsiftError as e:
        if os.environ.get("TEXTSIFT_DEBUG"):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `textsift predict ... | head`
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
