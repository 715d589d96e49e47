"""Example packs for swarm, as their own distribution (`swarm-examples`): the bank (customer and
engineering desks on BANKING77), its ops desk, and the quickstart help desk. Each module exports a
`swarm.agents.Pack` named PACK; `swarm demo NAME` runs one (entry points `swarm.demos`).
"""
