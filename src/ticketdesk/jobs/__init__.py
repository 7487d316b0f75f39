"""The delivery engine: durable jobs in the database, and the workers that run them."""
