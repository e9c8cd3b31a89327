"""In-memory fakes of the service's ports, for handler tests."""
