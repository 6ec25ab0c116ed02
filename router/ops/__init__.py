"""Operating the gateway: metrics."""
