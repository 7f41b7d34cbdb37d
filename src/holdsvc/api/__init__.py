"""The HTTP layer: thin controllers, the problem+json mapping, the strict body DTO."""
