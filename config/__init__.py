"""Settings read once from the environment (12-factor), and the wiring of adapters."""
