"""Benchmarks: commands that print measured figures and ratios against a baseline run in the same invocation.

Durations are never asserted in tests; figures are recorded in docs/benchmarks.md.
"""
