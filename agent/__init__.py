"""Everything that decides for the line, in four rooms:

- `planners/`: the decision policies and planners (rules, the trained agent, CP-SAT), their
  registry by name, a planned run of a week, and comparisons of planners;
- `training/`: MaskablePPO with the paper's curricula, and the batch-size study;
- `live/`: the agent service that mirrors the line over MQTT and dispatches, its journal, and the
  line emulator;
- `cli/`: the `linetwin` command line, which maps every error to one line and exit code 2.

`errors` holds the package's exceptions (`UsageError` names the parameter at fault).

Imports go one way: cli -> live, training -> planners -> twin, bridge. Modules are imported one
by one (`from agent.training.train import train`): the rules and the CLI must not pay for torch."""
