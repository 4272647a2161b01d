"""The router: per-destination delivery workers with ordering, retries, throttling and dead letters."""
