"""One module per test platform: its payload structs, its client, and how its results normalise."""
