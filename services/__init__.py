"""Use cases, called by both the API and the actors."""
