//! rtctr's built-in networking hook (placeholder until the networking issue lands).
