"""The command line's flags: value types that refuse what a command cannot use, and a parser whose
every mistake is one line (`linetwin: error: ...`, exit code 2) that suggests the closest name.

No flag is taken by a prefix of its name (`allow_abbrev=False`): `--batch-size` is never read as
`--batch-sizes`, and a flag a command does not have is an error, never silently another flag."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from agent.errors import suggest


def count(text: str) -> int:
    """A whole number of at least 1 (steps, envs, seeds, jobs, plans, ...)."""
    return _whole(text, 1)


def natural(text: str) -> int:
    """A whole number of at least 0 (a stock)."""
    return _whole(text, 0)


SEED_MAX = 2**32 - 1
"""The largest seed numpy's and Stable-Baselines3's generators take (a seed is 0 ... 2**32-1)."""
STEPS_MAX = 10**9
"""The largest training budget (`--steps`): some days of training at the speeds in the README."""
ENVS_MAX = 64
"""The most parallel envs of one training run (`--envs`, a process each when > 1)."""
CPUS = os.cpu_count() or 1
JOBS_MAX = 4 * CPUS
"""The most parallel processes of a study (`--jobs`) or CP-SAT workers (`--workers`): four per CPU."""


def seed(text: str) -> int:
    """A seed: a whole number 0 ... 2**32-1 (what numpy and Stable-Baselines3 take)."""
    return _whole(text, 0, SEED_MAX)


def steps(text: str) -> int:
    """A training budget in env steps: 1 ... 10**9."""
    return _whole(text, 1, STEPS_MAX)


def envs(text: str) -> int:
    """Parallel envs of a training run: 1 ... 64."""
    return _whole(text, 1, ENVS_MAX)


def jobs(text: str) -> int:
    """Parallel processes or solver workers: 1 ... four per CPU of this machine."""
    return _whole(text, 1, JOBS_MAX)


def at_most(most: int) -> Callable[[str], int]:
    """The flag type of a whole number 1 ... `most`."""

    def whole(text: str) -> int:
        return _whole(text, 1, most)

    return whole


def _whole(text: str, least: int, most: int | None = None) -> int:
    """ASCII digits only: int() would also take `1_0`, ` 5` and `١٠`. A number beyond `most` in
    other spelling (`1e9`) is refused for its size."""
    if not re.fullmatch(r"-?[0-9]+", text):
        if most is not None and _number_or_nan(text) > most:
            raise argparse.ArgumentTypeError(f"{text}: must be at most {most}")
        raise argparse.ArgumentTypeError(f"{text}: not a whole number")
    value = int(text)
    if value < least:
        raise argparse.ArgumentTypeError(f"{text}: must be at least {least}")
    if most is not None and value > most:
        raise argparse.ArgumentTypeError(f"{text}: must be at most {most}")
    return value


def _number_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def path_arg(text: str) -> Path:
    """A file or folder path; an empty one (`--out ''`) would mean the current folder: refused."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: an empty path; give a file or folder")
    return Path(text)


def _number(text: str, zero: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text}: not a number") from None
    if not (value >= 0 if zero else value > 0) or not value < math.inf:
        rule = "a finite number, at least 0" if zero else "a finite number above 0"
        raise argparse.ArgumentTypeError(f"{text}: must be {rule}")
    return value


def positive(text: str) -> float:
    """A finite number above 0 (a share, a concentration)."""
    return _number(text, zero=False)


_CHOICE = re.compile(
    r"argument (?P<flag>\S+): invalid choice: '(?P<typed>[^']*)' \(choose from (?P<known>.*)\)"
)


_VALUE_FIRST = re.compile(r"\S+: ")

MISSING_FLAG_HINTS = {"--model": "; plan and compare name an agent's model in the planner: rl:MODEL"}
"""What to say when a command lacks a flag other commands have."""


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser without prefix matching whose errors are one line with a suggestion."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("linetwin").strip()
        choice = _CHOICE.fullmatch(message)
        if choice:
            known = re.findall(r"'([^']*)'", choice["known"])
            flag = choice["flag"] if choice["flag"].startswith("-") else ""
            what = f"{command} {flag}".strip() + ": " if command or flag else ""
            message = f"{what}unknown {'value' if flag else 'command'} {choice['typed']!r}" + (
                suggest(choice["typed"], known) or f"; choose from {', '.join(known)}"
            )
        else:
            flag, _, rest = message.removeprefix("argument ").partition(": ")
            if _VALUE_FIRST.match(rest):  # our types say 'VALUE: rule': `--steps 0: must be at least 1`
                message = f"{command} {flag} {rest}".strip()
            elif message.startswith("argument "):
                message = f"{command} {message.removeprefix('argument ')}".strip()
            else:  # `the following arguments are required: --planner`
                message = f"{command}: {message}" if command else message
        self.exit(2, f"linetwin: error: {message}\n")

    def unknown_flags(self, extras: list[str], command: argparse.ArgumentParser) -> NoReturn:
        """The flags (and stray words) `command` does not have, with the closest flag it has."""
        flags = [s for action in command._actions for s in action.option_strings if s not in ("-h", "--help")]
        first = next((e.split("=")[0] for e in extras if e.startswith("-")), "")
        hint = (suggest(first, flags) or MISSING_FLAG_HINTS.get(first, "")) if first else ""
        name = command.prog.removeprefix("linetwin").strip()
        self.exit(2, f"linetwin: error: {name}: unrecognized arguments: {' '.join(extras)}{hint}\n")


def stdout_closed() -> NoReturn:
    """The reader of our output went away (`linetwin ... | head`): what is left to say goes
    nowhere, and the exit code is that of a process ended by SIGPIPE (128 + 13), as for other
    programs in a pipeline (see the Python docs, `signal`: "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(141)


def not_negative(text: str) -> float:
    """A finite number of at least 0 (seconds; 0 can mean 'none')."""
    return _number(text, zero=True)


def flag_problem(exc: ValidationError) -> str:
    """A pydantic error of a model built from flags as one line naming the flag and the value,
    e.g. `--fill 2.0: must be at most 1.5` (field `a_b` is flag `--a-b`)."""
    err = exc.errors()[0]
    fields = [str(p) for p in err["loc"] if isinstance(p, str)]
    reason = as_flags(err["msg"].removeprefix("Value error, "))
    if not fields:
        return reason
    return f"--{fields[0].replace('_', '-')} {err['input']}: {_RULES.get(err['type'], reason)}".format(
        **err.get("ctx", {})
    )


def as_flags(message: str) -> str:
    """A model's own message with its field names (`order_min`) written as flags (`--order-min`)."""
    return re.sub(r"\b([a-z]+(?:_[a-z]+)+)\b", lambda m: "--" + m[1].replace("_", "-"), message)


_RULES = {
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "finite_number": "must be a finite number",
}


def ray_address_option(p: argparse.ArgumentParser) -> None:
    """--ray-address: the heavy jobs' Ray cluster (default: a local Ray in this process)."""
    p.add_argument(
        "--ray-address",
        dest="ray_address",
        default=None,
        help="run the tasks on this Ray cluster, HOST:PORT of its head (`ray start --head`) or auto "
        "(default: a local Ray started here with --jobs CPUs)",
    )
