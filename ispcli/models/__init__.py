"""Learned models: architectures by name (`registry`) and shipped weights (`weights`)."""
