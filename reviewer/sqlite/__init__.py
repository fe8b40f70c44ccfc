"""SQLite with writers taking turns fairly (the database ENGINE when DATABASE_URL is SQLite); see base.py."""
