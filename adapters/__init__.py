"""Payment rail adapters: one package per rail, behind the boundary in `adapters.base`."""
