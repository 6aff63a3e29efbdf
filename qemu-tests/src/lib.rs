//! Harness for booting the Gatehouse image in QEMU with namespace hosts.
