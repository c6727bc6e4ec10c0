"""What `bento_track.api`'s two clients are made of: the settings, retry and
request-building part they share, and the asyncio client. `bento_track.api`
holds the synchronous client and re-exports the asyncio one.
"""
