"""Each signed-in user's own pages: the dashboard and the account page."""
