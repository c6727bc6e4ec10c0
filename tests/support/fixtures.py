"""Fixtures a folder takes by importing them into its conftest."""

from __future__ import annotations

import pytest

from bento_track.emulator import EmulatorServer


@pytest.fixture(name="emulator")
def isolated_emulator(own_emulator: EmulatorServer) -> EmulatorServer:
    """The folder's `emulator`: one of each test's own, so that a child
    process of an earlier test that delivers late can never count here."""
    return own_emulator
