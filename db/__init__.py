"""Python access to the database: settings, the embedded server, connections, migrations."""
