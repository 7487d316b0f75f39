"""Setting a forgotten password through a single-use link sent by mail."""
