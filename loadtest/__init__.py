"""Load tests: throughput and latency of the gateway against a plain aiohttp baseline.

Entry points: `payrouter bench` (`loadtest.suite`, the standard suite and its report),
`python -m loadtest.bench_create` (closed-loop throughput ratios), `python -m
loadtest.openloop` (fixed arrival rate, corrected latency) and `loadtest/locustfile.py`
(a realistic mix for locust); see loadtest/README.md.
"""
