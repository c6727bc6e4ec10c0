"""Browser tests: headless Chromium drives the emulator's inbox page."""
