"""Local stand-ins for the providers' APIs, for development, demos and tests."""
