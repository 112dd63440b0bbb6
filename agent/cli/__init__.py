"""`linetwin`, the command line: `main` parses and maps every error to one line and exit code 2;
`flags` reads option values, `inputs` the line, week and policy, `outputs` the --out folder. The
commands by job: `offline` (simulate, plan, compare, demo, evaluate), `training` (train, study),
`weeks` (generate-week, validate) and `live` (serve, emulate, status, record, replay)."""

from agent.cli.main import main

__all__ = ["main"]
