"""HTTP: callback intake, the bearer-protected API, health and metrics."""
