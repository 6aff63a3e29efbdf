//! A reproducible writer for the "newc" cpio format the kernel unpacks as
//! its initramfs: entries sorted by path, fixed inode numbers, owner root,
//! mtime 0, so the same inputs always give the same bytes.

use std::collections::BTreeMap;
use std::io::{self, Write};

const MAGIC: &str = "070701";
const TRAILER: &str = "TRAILER!!!";
const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Directory,
    File(Vec<u8>),
    CharDevice { major: u32, minor: u32 },
}

#[derive(Clone, Debug)]
struct Entry {
    permissions: u32,
    kind: Kind,
}

/// An in-memory archive; paths are relative to the root ("init", "dev/console").
#[derive(Default, Debug)]
pub struct Archive {
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add_dir(&mut self, path: &str, permissions: u32) {
        self.insert(path, permissions, Kind::Directory);
    }

    pub fn add_file(&mut self, path: &str, permissions: u32, data: Vec<u8>) {
        self.insert(path, permissions, Kind::File(data));
    }

    pub fn add_char_device(&mut self, path: &str, permissions: u32, major: u32, minor: u32) {
        self.insert(path, permissions, Kind::CharDevice { major, minor });
    }

    /// Adds the entry and any missing parent directories (mode 0755), so the
    /// kernel never meets a file before its directory.
    fn insert(&mut self, path: &str, permissions: u32, kind: Kind) {
        let path = path.trim_matches('/');
        let mut parent = String::new();
        for component in path.split('/').take(path.split('/').count() - 1) {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(component);
            self.entries.entry(parent.clone()).or_insert(Entry {
                permissions: 0o755,
                kind: Kind::Directory,
            });
        }
        self.entries
            .insert(path.to_string(), Entry { permissions, kind });
    }

    /// Writes the archive (with its trailer) in newc format.
    pub fn write_to(&self, out: &mut impl Write) -> io::Result<()> {
        let mut written = 0usize;
        for (index, (path, entry)) in self.entries.iter().enumerate() {
            let (file_type, data, rdev): (u32, &[u8], (u32, u32)) = match &entry.kind {
                Kind::Directory => (S_IFDIR, &[], (0, 0)),
                Kind::File(data) => (S_IFREG, data, (0, 0)),
                Kind::CharDevice { major, minor } => (S_IFCHR, &[], (*major, *minor)),
            };
            let header = Header {
                inode: index as u32 + 1,
                mode: file_type | (entry.permissions & 0o7777),
                nlink: if file_type == S_IFDIR { 2 } else { 1 },
                size: data.len() as u32,
                rdev,
            };
            written += header.write(out, path, written)?;
            written += write_padded(out, data, written)?;
        }
        let trailer = Header {
            inode: 0,
            mode: 0,
            nlink: 1,
            size: 0,
            rdev: (0, 0),
        };
        trailer.write(out, TRAILER, written)?;
        Ok(())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_to(&mut bytes)
            .expect("writing to a Vec cannot fail");
        bytes
    }
}

struct Header {
    inode: u32,
    mode: u32,
    nlink: u32,
    size: u32,
    rdev: (u32, u32),
}

impl Header {
    /// Writes header and NUL-terminated name, padded to 4 bytes; returns bytes written.
    fn write(&self, out: &mut impl Write, name: &str, offset: usize) -> io::Result<usize> {
        let fields = [
            self.inode,
            self.mode,
            0, // uid
            0, // gid
            self.nlink,
            0, // mtime
            self.size,
            0, // devmajor
            0, // devminor
            self.rdev.0,
            self.rdev.1,
            name.len() as u32 + 1,
            0, // check
        ];
        let mut header = String::from(MAGIC);
        for field in fields {
            header.push_str(&format!("{field:08X}"));
        }
        let mut bytes = header.into_bytes();
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        write_padded(out, &bytes, offset)
    }
}

/// Writes `data` then zeros up to the next 4-byte boundary of the archive.
fn write_padded(out: &mut impl Write, data: &[u8], offset: usize) -> io::Result<usize> {
    out.write_all(data)?;
    let padding = (4 - (offset + data.len()) % 4) % 4;
    out.write_all(&[0u8; 3][..padding])?;
    Ok(data.len() + padding)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Archive {
        let mut archive = Archive::new();
        archive.add_file("lib/modules/a.ko", 0o644, b"module".to_vec());
        archive.add_file("init", 0o755, b"#!binary".to_vec());
        archive.add_char_device("dev/console", 0o600, 5, 1);
        archive
    }

    #[test]
    fn same_entries_in_any_order_give_identical_bytes() {
        let mut reversed = Archive::new();
        reversed.add_char_device("dev/console", 0o600, 5, 1);
        reversed.add_file("init", 0o755, b"#!binary".to_vec());
        reversed.add_file("lib/modules/a.ko", 0o644, b"module".to_vec());
        assert_eq!(sample().to_bytes(), reversed.to_bytes());
    }

    #[test]
    fn headers_are_aligned_and_archive_ends_with_trailer() {
        let bytes = sample().to_bytes();
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.starts_with(b"070701"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("TRAILER!!!"));
        // Parent directories are created before their files.
        let lib = text.find("lib\0").unwrap();
        let module = text.find("lib/modules/a.ko\0").unwrap();
        assert!(lib < module);
    }

    /// Debian's cpio is the real peer: it must list and extract what we wrote.
    #[test]
    fn gnu_cpio_reads_the_archive() {
        use std::process::{Command, Stdio};
        let Ok(mut child) = Command::new("cpio")
            .args(["-t", "-v", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
        else {
            panic!("cpio is not installed (apt-get install cpio)");
        };
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&sample().to_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success());
        let listing = String::from_utf8(output.stdout).unwrap();
        let names: Vec<&str> = listing
            .lines()
            .map(|line| line.split_whitespace().last().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "dev",
                "dev/console",
                "init",
                "lib",
                "lib/modules",
                "lib/modules/a.ko"
            ]
        );
        assert!(listing
            .lines()
            .any(|l| l.starts_with("crw-------") && l.contains("5,")));
        assert!(listing
            .lines()
            .any(|l| l.starts_with("-rwxr-xr-x") && l.ends_with("init")));
    }
}
