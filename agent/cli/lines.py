"""The line command: `generate-line` (a random line like the reference one, at any size)."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from agent.cli.flags import at_most, count, flag_problem, not_negative, path_arg, positive, seed
from agent.cli.outputs import force_option, no_file_in_the_way
from agent.errors import UsageError
from agent.folders import make_folder
from twin.config import MAX_TIME_S
from twin.linegen import MAX_FAS, MAX_TYPES, LineGenerator, LineSpec
from twin.weekgen import SpecError

FLAGS = {"fas_unit_time_s": "--fas-unit-time"}
"""LineSpec fields whose flag is not the field's name in flag spelling."""


def cmd_generate_line(args: argparse.Namespace) -> int:
    out = args.out
    if out.is_dir():
        raise UsageError(f"--out {out}: a folder, not a file (give a path like lines/plant.toml)")
    no_file_in_the_way(out, out.parent)
    if out.exists() and not args.force:
        raise UsageError(f"--out {out}: already exists: give a new file, or --force to overwrite")
    try:
        spec = LineSpec(
            types=args.types,
            families=args.families,
            fas=args.fas,
            load=args.load,
            fill=args.fill,
            fas_unit_time_s=args.fas_unit_time,
            fas_spread=args.fas_spread,
            batch_size=args.batch_size,
            name=args.name,
        )
    except ValidationError as exc:
        raise UsageError(_flag_names(flag_problem(exc))) from None
    try:
        line, text = LineGenerator(spec).generate(args.seed)
    except SpecError as exc:
        raise UsageError(f"{_flag(exc.field)} {exc.value}: {exc.reason}") from None
    except ValidationError as exc:  # a line the spec's checks let through: its field, never a dump
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        reason = err["msg"].removeprefix("Value error, ")
        raise UsageError(f"the generated line's {field} {err['input']}: {reason}") from None
    header = f"# A generated line, made by:\n#   {spec.command(args.seed, str(out))}\n\n"
    make_folder(out.parent)
    try:
        out.write_text(header + text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot write the file: {exc.strerror}", "out", out) from None
    print(
        f"wrote {out}: {_count(len(line.types), 'type', 'types')} in "
        f"{_count(spec.family_count, 'family', 'families')}, {len(line.fas)} FAS, "
        f"PAS {line.pas.unit_time_s} s per unit, batch {line.pas.batch_size}, buffer {line.buffer.capacity}"
    )
    return 0


def _flag(field: str) -> str:
    return FLAGS.get(field, "--" + field.replace("_", "-"))


def _count(n: int, one: str, many: str) -> str:
    """`1 family`, `3 families`."""
    return f"{n} {one if n == 1 else many}"


def _flag_names(message: str) -> str:
    """Field names as the flags say them: fas_unit_time_s is --fas-unit-time, a bare field is a flag."""
    message = message.replace("--fas-unit-time-s", "--fas-unit-time")
    for field in ("types", "families", "fas", "load", "fill", "name"):
        if message.startswith(f"{field} "):
            return f"--{field} {message.removeprefix(field + ' ')}"
    return message


def _share(least: float, most: float, below: bool = False) -> Any:
    """The flag type of a number in (least, most] (or [least, most) when `below`)."""

    def share(text: str) -> float:
        value = not_negative(text) if below else positive(text)
        if value < least or (value >= most if below else value > most):
            raise argparse.ArgumentTypeError(
                f"{text}: must be {'less than' if below else 'at most'} {most:g}"
            )
        return value

    return share


def add_line_command(sub: Any) -> None:
    """generate-line, on the subparsers `sub` of `linetwin`."""
    d = LineSpec()
    gen = sub.add_parser("generate-line", help="write a random line like the reference one, at any size")
    gen.add_argument(
        "--types", type=at_most(MAX_TYPES), default=d.types, help=f"pre-product types (default {d.types})"
    )
    gen.add_argument("--families", type=count, default=None, help="setup families (default: types / 4)")
    gen.add_argument(
        "--fas", type=at_most(MAX_FAS), default=d.fas, help=f"final assembly stations (default {d.fas})"
    )
    gen.add_argument("--load", type=_share(0, 1), default=d.load, help=f"planned PAS load (default {d.load})")
    gen.add_argument(
        "--fill", type=_share(0, 1.5), default=d.fill, help=f"week fill the load assumes ({d.fill})"
    )
    gen.add_argument(
        "--fas-unit-time",
        type=at_most(MAX_TIME_S),
        default=d.fas_unit_time_s,
        help=f"FAS s per unit ({d.fas_unit_time_s}; at most fill x 270,000 / 20: a plan holds an order)",
    )
    gen.add_argument(
        "--fas-spread",
        type=_share(0, 1, below=True),
        default=d.fas_spread,
        help="FAS unit times +- this share",
    )
    gen.add_argument(
        "--batch-size", type=count, default=d.batch_size, help=f"units per batch ({d.batch_size})"
    )
    gen.add_argument("--name", default=None, help="line name (default plant-<fas>x<types>)")
    gen.add_argument("--seed", type=seed, required=True, help="same seed, same line")
    gen.add_argument("--out", type=path_arg, required=True, help="line.toml to write")
    force_option(gen, "(overwrite) an existing --out file")
    gen.set_defaults(func=cmd_generate_line)
