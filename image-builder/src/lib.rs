//! Builds the Gatehouse appliance image and boots it in QEMU.
//!
//! Outputs (under `.cache/image/<kernel metapackage>/`): `vmlinuz`,
//! `initrd.img` (newc cpio, reproducible) and `disk.img` (GPT: an EFI
//! system partition with systemd-boot and boot slots A and B, and the
//! persistent config partition). See README.md for the slot layout.

pub mod appliance_binary;
pub mod command;
pub mod cpio;
pub mod disk;
pub mod esp;
pub mod gpt;
pub mod image;
pub mod initramfs;
pub mod kernel;
pub mod modinfo;
pub mod modules;
pub mod qemu;
