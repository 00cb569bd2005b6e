"""The SQLite projection of the event log: schema, apply, queries and the log follower."""
