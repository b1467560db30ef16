"""The appliance runtime: configuration, supervisor, connection runners and the CLI."""
