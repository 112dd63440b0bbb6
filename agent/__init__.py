"""Planners (rules now; RL and exact planners later), the CLI and, later, training and the decision service."""
