"""Training stacks."""
