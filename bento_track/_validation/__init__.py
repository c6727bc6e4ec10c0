"""How an event's parts are checked and normalised to plain JSON: text and
email addresses, flat `fields`, nested `details` within a size budget, and
dates. `bento_track.events` builds events with these and re-exports the
public ones; this package imports only the foundation layer.
"""
