"""Administration: organisations, users, moderation, allocation rounds and metrics."""
