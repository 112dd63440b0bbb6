"""The line command: `generate-line` (a random line like the reference one, at any size)."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from agent.cli.flags import as_flags, count, flag_problem, not_negative, path_arg, positive, seed
from agent.cli.outputs import force_option
from agent.errors import UsageError
from twin.linegen import LineGenerator, LineSpec


def cmd_generate_line(args: argparse.Namespace) -> int:
    out = args.out
    if out.is_dir():
        raise UsageError(f"--out {out}: a folder, not a file (give a path like lines/plant.toml)")
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
    except ValueError as exc:
        raise UsageError(_flag_names(as_flags(str(exc)))) from None
    header = f"# A generated line, made by:\n#   {spec.command(args.seed, str(out))}\n\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(header + text, encoding="utf-8")
    print(
        f"wrote {out}: {len(line.types)} types in {spec.family_count} families, {len(line.fas)} FAS, "
        f"PAS {line.pas.unit_time_s} s per unit, batch {line.pas.batch_size}, buffer {line.buffer.capacity}"
    )
    return 0


def _flag_names(message: str) -> str:
    """Field names as the flags say them: fas_unit_time_s is --fas-unit-time, a bare field is a flag."""
    message = message.replace("--fas-unit-time-s", "--fas-unit-time")
    for field in ("types", "families", "fas", "load", "fill", "name"):
        if message.startswith(f"{field} "):
            return f"--{field} {message.removeprefix(field + ' ')}"
    return message


def add_line_command(sub: Any) -> None:
    """generate-line, on the subparsers `sub` of `linetwin`."""
    d = LineSpec()
    gen = sub.add_parser("generate-line", help="write a random line like the reference one, at any size")
    gen.add_argument("--types", type=count, default=d.types, help=f"pre-product types (default {d.types})")
    gen.add_argument("--families", type=count, default=None, help="setup families (default: types / 4)")
    gen.add_argument("--fas", type=count, default=d.fas, help=f"final assembly stations (default {d.fas})")
    gen.add_argument("--load", type=positive, default=d.load, help=f"planned PAS load (default {d.load})")
    gen.add_argument("--fill", type=positive, default=d.fill, help=f"week fill the load assumes ({d.fill})")
    gen.add_argument(
        "--fas-unit-time", type=count, default=d.fas_unit_time_s, help=f"FAS s per unit ({d.fas_unit_time_s})"
    )
    gen.add_argument(
        "--fas-spread", type=not_negative, default=d.fas_spread, help="FAS unit times +- this share"
    )
    gen.add_argument(
        "--batch-size", type=count, default=d.batch_size, help=f"units per batch ({d.batch_size})"
    )
    gen.add_argument("--name", default=None, help="line name (default plant-<fas>x<types>)")
    gen.add_argument("--seed", type=seed, required=True, help="same seed, same line")
    gen.add_argument("--out", type=path_arg, required=True, help="line.toml to write")
    force_option(gen, "(overwrite) an existing --out file")
    gen.set_defaults(func=cmd_generate_line)
