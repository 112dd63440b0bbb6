"""`linetwin`, the command line: `main` parses and maps every error to one line and exit code 2;
`flags` reads option values, `inputs` the line and week, `outputs` the --out folder; the live
commands (serve, emulate, status, record, replay) are in `live`."""

from agent.cli.main import main

__all__ = ["main"]
