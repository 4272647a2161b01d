"""The dead-letter store: list, show and replay events that could not be delivered."""
