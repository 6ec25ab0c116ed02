"""Load tests: throughput benchmarks of the gateway against a plain aiohttp baseline.

`python -m loadtest.bench_create` is the entry point; see loadtest/README.md.
"""
