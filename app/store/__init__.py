"""Storage: SQLAlchemy 2 async models and repositories. Repositories never commit."""
