"""Operating the gateway: metrics, the live figures and the dashboard."""
