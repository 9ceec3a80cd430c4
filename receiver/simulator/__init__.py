"""Local stand-ins for the providers' APIs, for development, the demo and the end-to-end tests."""
