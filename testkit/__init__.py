"""Helpers of the test suite that benchmarks use too: scripted scenes, small models and
bags, reference implementations written independently of the package, and the programs
tests start as separate processes (DDS peers, a bag recorder, torchrun ranks, a node
driver). Not part of the installed package; importable from the checkout (env.sh puts
it on PYTHONPATH; pytest runs from the repository root)."""
