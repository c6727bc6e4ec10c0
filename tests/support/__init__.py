"""What the suites share besides fixtures: child processes and free ports
(`processes`), a `redis-server` of the tests' own (`redis_server`), and stores
of every kind behind one harness (`stores`) for the store contract."""
