//! CLI sessions for Gatehouse.
