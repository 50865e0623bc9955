"""Collaboration records: what followed each introduction (pages, reminders)."""
