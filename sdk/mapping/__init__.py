"""The mapping engine: source paths, value formats, templates, compiled once per connector."""
