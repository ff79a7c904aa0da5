"""Use cases. Only this package commits; routes and the worker call it."""
