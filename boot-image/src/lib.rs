//! The image's boot conventions in one place, so the builder that writes
//! them and the appliance that upgrades itself agree byte for byte:
//! - [`slot`]: the A/B slots on the EFI system partition and their
//!   systemd-boot entries (names with boot counters, versions, trial flag);
//! - [`artifact`]: the upgrade file (release, kernel, initramfs, command
//!   line) with its SHA-256 and ed25519 signature.

pub mod artifact;
pub mod slot;
