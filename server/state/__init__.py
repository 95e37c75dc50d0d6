"""state room."""
