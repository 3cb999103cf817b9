"""The CWS event JSON Schema and its Markdown reference, both generated from the event model."""

from opencws.schema.generate import event_schema

__all__ = ["event_schema"]
