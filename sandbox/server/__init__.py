"""The sandbox HTTP server: one ASGI app, each vendor under its path prefix."""
