"""`linetwin`: the command line of the twin and its planners.

Every user mistake ends with exit code 2 and one readable line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from agent.cli.flags import CommandParser, stdout_closed
from agent.cli.lines import add_line_command
from agent.cli.live import add_live_commands
from agent.cli.offline import add_offline_commands
from agent.cli.sweep import add_sweep_command
from agent.cli.training import add_training_commands
from agent.cli.weeks import add_week_commands
from agent.errors import AgentError, UsageError
from bridge.errors import BridgeError
from twin import TwinError


def build_parser() -> CommandParser:
    parser = CommandParser(prog="linetwin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_offline_commands(sub)
    add_sweep_command(sub)
    add_training_commands(sub)
    add_week_commands(sub)
    add_line_command(sub)
    add_live_commands(sub)
    return parser


def _subparser(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: argparse.ArgumentParser = subparsers.choices[command]
    return found


def flag_of(command: argparse.ArgumentParser, argv: Sequence[str], param: str) -> str:
    """The flag of a library parameter (`time_limit`, `planners`) as the user typed it (an
    alias included), else its last spelling; `--param-name` when the command has none."""
    if param in SAID_AS:
        return SAID_AS[param]
    dests = {param, *PARAM_DESTS.get(param, ())}
    typed = [a.split("=")[0] for a in argv if a.startswith("--")]
    for action in command._actions:
        if action.dest in dests and action.option_strings:
            said = [s for s in typed if s in action.option_strings]
            return said[-1] if said else action.option_strings[-1]
    return "--" + param.replace("_", "-")


PARAM_DESTS = {"planners": ("planner",)}
"""Library parameters that some commands take under another option name."""
SAID_AS = {"batch_sizes": "--batch-sizes"}
"""Parameters said by one flag whichever spelling was typed: a study's list of batch sizes is at
fault even when it was typed as `--batch-size 50,600`."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            parser.unknown_flags(extras, _subparser(parser, args.command))
    except SystemExit as exc:  # a flag mistake (exit code 2) or --help (0): returned like the others
        return exc.code if isinstance(exc.code, int) else 2
    except BrokenPipeError:  # `linetwin --help | head`
        stdout_closed()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args.argv = argv
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
        return code
    except BrokenPipeError:  # `linetwin ... | head`: the reader is gone
        stdout_closed()
    except UsageError as exc:  # the library names a parameter; the user reads the flag
        flag = flag_of(_subparser(parser, args.command), argv, exc.param) if exc.param else None
        print(f"linetwin: error: {exc.said_as(flag)}", file=sys.stderr)
        return 2
    except (TwinError, AgentError, BridgeError) as exc:
        print(f"linetwin: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("linetwin: interrupted", file=sys.stderr)
        return 130
