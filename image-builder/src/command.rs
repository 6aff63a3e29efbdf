//! Running the Debian tools the builder relies on (apt-get, dpkg-deb,
//! mkfs.ext4, strip) with errors that name the command.

use anyhow::{bail, Context, Result};
use std::process::Command;

pub fn run(command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}
