"""An in-process rail that answers at once: for tests and benchmarks of the router alone."""
