//! Reads a kernel module's `.modinfo` ELF section (what `modinfo` prints),
//! so the builder needs no kmod tools to resolve dependencies and aliases.

use anyhow::{bail, Context, Result};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ModuleInfo {
    pub name: String,
    pub depends: Vec<String>,
    pub aliases: Vec<String>,
}

/// Parses a little-endian ELF64 relocatable object (a `.ko`).
pub fn parse(elf: &[u8]) -> Result<ModuleInfo> {
    if elf.get(..4) != Some(b"\x7fELF") || elf.get(4) != Some(&2) || elf.get(5) != Some(&1) {
        bail!("not a little-endian ELF64 file");
    }
    let section_table = read_u64(elf, 0x28)? as usize;
    let entry_size = read_u16(elf, 0x3a)? as usize;
    let count = read_u16(elf, 0x3c)? as usize;
    let names_index = read_u16(elf, 0x3e)? as usize;
    let section = |index: usize| -> Result<(u32, &[u8])> {
        // Offsets come from the file: checked, so a crafted one is an error.
        let header = index
            .checked_mul(entry_size)
            .and_then(|at| at.checked_add(section_table))
            .context("section header outside the file")?;
        let name = read_u32(elf, header)?;
        let offset = read_u64(elf, header.saturating_add(24))? as usize;
        let size = read_u64(elf, header.saturating_add(32))? as usize;
        let data = elf
            .get(offset..offset.saturating_add(size))
            .context("section outside the file")?;
        Ok((name, data))
    };
    let (_, names) = section(names_index)?;
    for index in 0..count {
        let (name_offset, data) = section(index)?;
        let name = names
            .get(name_offset as usize..)
            .and_then(|rest| rest.split(|&b| b == 0).next())
            .unwrap_or_default();
        if name == b".modinfo" {
            return Ok(parse_fields(data));
        }
    }
    bail!("no .modinfo section")
}

fn parse_fields(data: &[u8]) -> ModuleInfo {
    let mut info = ModuleInfo::default();
    for field in data.split(|&b| b == 0) {
        let field = String::from_utf8_lossy(field);
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        match key {
            "name" => info.name = value.to_string(),
            "alias" => info.aliases.push(value.to_string()),
            "depends" => info.depends.extend(
                value
                    .split(',')
                    .filter(|d| !d.is_empty())
                    .map(str::to_string),
            ),
            _ => {}
        }
    }
    info
}

fn read_bytes<const N: usize>(data: &[u8], offset: usize) -> Result<[u8; N]> {
    data.get(offset..offset.saturating_add(N))
        .and_then(|bytes| bytes.try_into().ok())
        .context("ELF header truncated")
}

fn read_u16(data: &[u8], offset: usize) -> Result<u16> {
    read_bytes(data, offset).map(u16::from_le_bytes)
}

fn read_u32(data: &[u8], offset: usize) -> Result<u32> {
    read_bytes(data, offset).map(u32::from_le_bytes)
}

fn read_u64(data: &[u8], offset: usize) -> Result<u64> {
    read_bytes(data, offset).map(u64::from_le_bytes)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minimal ELF64 with a section-name table and a `.modinfo` section.
    pub(crate) fn fake_module(modinfo: &[u8]) -> Vec<u8> {
        let names = b"\0.shstrtab\0.modinfo\0";
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let names_offset = elf.len();
        elf.extend_from_slice(names);
        let modinfo_offset = elf.len();
        elf.extend_from_slice(modinfo);
        let table = elf.len();
        elf[0x28..0x30].copy_from_slice(&(table as u64).to_le_bytes());
        elf[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        elf[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        elf[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        for (name, offset, size) in [
            (0u32, 0usize, 0usize),
            (1, names_offset, names.len()),
            (11, modinfo_offset, modinfo.len()),
        ] {
            let mut header = [0u8; 64];
            header[..4].copy_from_slice(&name.to_le_bytes());
            header[24..32].copy_from_slice(&(offset as u64).to_le_bytes());
            header[32..40].copy_from_slice(&(size as u64).to_le_bytes());
            elf.extend_from_slice(&header);
        }
        elf
    }

    #[test]
    fn reads_name_dependencies_and_aliases() {
        let elf = fake_module(
            b"license=GPL\0alias=virtio:d00000001v*\0depends=net_failover,virtio_ring\0name=virtio_net\0alias=pci:v1*\0",
        );
        let info = parse(&elf).unwrap();
        assert_eq!(info.name, "virtio_net");
        assert_eq!(info.depends, ["net_failover", "virtio_ring"]);
        assert_eq!(info.aliases, ["virtio:d00000001v*", "pci:v1*"]);
    }

    #[test]
    fn empty_depends_and_garbage_are_handled() {
        let info = parse(&fake_module(b"depends=\0name=failover\0")).unwrap();
        assert!(info.depends.is_empty());
        assert!(parse(b"not an elf").is_err());
        let mut truncated = fake_module(b"name=x\0");
        truncated.truncate(100);
        assert!(parse(&truncated).is_err());
        // A section table offset near the top of the address space.
        let mut crafted = fake_module(b"name=x\0");
        crafted[0x28..0x30].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse(&crafted).is_err());
    }
}
