"""Resolvers: the agent's only source of context for kernel events (users, containers, time, processes)."""
