"""Benchmarks: metrics, degradations with a fixed seed, baselines and result tables."""
