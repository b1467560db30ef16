"""Storage adapters: the StorageAdapter/UserStore protocols, in-memory and SQLite."""
