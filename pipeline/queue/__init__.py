"""The Postgres queue: numbered migrations, named queries, and the small runner around them."""
