"""Planners (rules now; RL and exact planners later) and the linetwin CLI."""
