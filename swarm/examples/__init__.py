"""Example agent packs that ship with swarm; `swarm demo` runs the quickstart one."""
