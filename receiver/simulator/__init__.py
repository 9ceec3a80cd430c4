"""Local stand-ins for provider APIs, for development, the demo and the end-to-end tests."""
