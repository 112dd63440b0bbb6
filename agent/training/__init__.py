"""Training the agent: MaskablePPO on the twin's env (`train`), the paper's curricula A/B/C
(`curriculum`), and the batch-size study over sizes and seeds (`study`)."""
