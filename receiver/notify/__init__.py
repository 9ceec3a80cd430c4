"""Notifications: the outbox worker and one small module per target kind, one ``send`` interface."""
