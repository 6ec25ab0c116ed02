"""Redis persistence: key names, Lua scripts and the typed store built on them."""
