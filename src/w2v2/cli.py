"""The ``w2v2`` command line: argument wiring only; each area registers its own sub-commands."""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from .analysis import commands as analysis_commands
    from .data import commands as data_commands
    from .decode import commands as decode_commands
    from .decode import lm_commands
    from .experiment import commands as experiment_commands
    from .interop import commands as interop_commands
    from .serve import commands as serve_commands
    from .train import commands as train_commands

    parser = argparse.ArgumentParser(prog="w2v2", description="wav2vec 2.0 end to end")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in (data_commands.register, decode_commands.register, interop_commands.register, train_commands.register, analysis_commands.register,
                     experiment_commands.register, lm_commands.register, serve_commands.register):
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"w2v2 {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"w2v2 {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
