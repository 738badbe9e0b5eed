"""The application layer: the operations the CLI, tests and other programs call.

Plain typed functions that take a database URL (or a connection) and return
typed records or rows as dicts. They never print and never parse arguments:
the CLI (`vectorkeep.cli`) does that around one call of an operation here.

- `database`: the database's URL, the embedded server, migrations
- `up`: from nothing to a searchable sample corpus
- `worker`: run a worker's service (embedding queue and jobs)
- `collections`: attach a table, set its chunking
- `status`: embedding progress per collection and model
- `search`: search by text, rows similar to a row
- `models`: list, register (an encoder or an inverter), activate, retire
- `jobs`: queue train and reembed jobs, list them, wait for them
- `adopt`, `recovery`: legacy vector tables and text recovered for them
- `maps`, `sequences`: a map's gaps; ordered collections and predictions
- `schema`: the current definition of an object; drift of an installed schema
- `errors`: the exceptions that are the user's to fix
"""
