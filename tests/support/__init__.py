"""Helpers shared by the test suite: service bootstrapping, a TCP fault proxy, RabbitMQ admin."""
