"""payrouter: an asynchronous, high-throughput payment router."""

__version__ = "0.1.0"
