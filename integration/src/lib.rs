//! Helpers for tests that run real containers through the rtctr binary.
