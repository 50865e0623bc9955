"""Acting on a match: interest, dismissal and the introduction that follows mutual interest."""
