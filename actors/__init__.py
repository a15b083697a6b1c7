"""Broker set-up, the event bus, and one module per worker pool."""
