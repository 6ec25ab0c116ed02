"""Background work of every gateway process: the sweeper and the webhook workers."""
