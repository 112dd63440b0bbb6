"""Training the agent: MaskablePPO on the twin's env (`train`), what a run reports in summary.json
(`summary`), the paper's curricula A/B/C (`curriculum`), and the batch-size study over sizes and
seeds (`study`)."""
