//! Cisco-style command grammar for Gatehouse.

pub mod config;
