"""What `bento_track.client.Client` is made of, one job a module: its checked
settings and store, the intake that hands captured events to the worker,
the process's registry of clients with its fork and exit hooks, the request
permit, the stats snapshot and the exit message. `bento_track.client` holds
the public `Client` and re-exports what users import from it.
"""
