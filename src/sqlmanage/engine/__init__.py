"""The migration engine: the graph, the plan, applying it (lock, audit, timeouts), SQL,
and autodetection. It knows nothing of commands or output."""
