"""One module per CLI command; each exposes one function the parser calls."""
