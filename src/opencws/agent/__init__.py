"""The agent: the layer that joins the kernel probe and the rule engine.

The probe knows nothing of SECL and SECL nothing of the probe; this package turns a loaded policy into the
probe's kernel filters (`opencws.agent.filters`) and learns discarders from the events that arrive.
"""
