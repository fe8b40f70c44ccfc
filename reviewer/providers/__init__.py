"""Provider clients and wire-format parsers. No ORM in here: only normalized records."""
