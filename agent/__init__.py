"""Planners and everything around them: rules (`policies`), the trained agent as a planner
(`rl_policy`), training with curricula (`train`, `curriculum`), the paper's evaluation (`evaluate`),
the batch-size study (`study`) and the `linetwin` CLI (`cli`).

Modules are imported one by one (`from agent.train import train`): the rules and the CLI must not pay
for torch."""
