"""Webhooks: signed calls to integrators' endpoints for every event they subscribe to."""
