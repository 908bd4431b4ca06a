"""Benchmarks of pkgcache.fleet against the tools an operator would otherwise use (du, rm, cp, ping).

Every figure is a ratio of our code (A) to a reference (B) measured in the same run, on the same
tree, alternating A and B so that load from elsewhere on the machine hits both alike.  Entry point:
``python -m bench [--quick] [--only NAME]``; see ``README.md`` next to this file.
"""
