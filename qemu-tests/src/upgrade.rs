//! What the upgrade tests serve: upgrade files (a newer release, one whose
//! init exits, damaged and foreign-signed copies) and a plain HTTP server
//! in a namespace host to fetch them from.

use crate::netns::Host;
use anyhow::{Context, Result};
use boot_image::artifact::{self, Artifact};
use image_builder::image::{self, Image};
use image_builder::initramfs::{self, Compression};
use image_builder::modules::ModuleSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// The image of another release, built beside the default one (its own
/// folder), for its upgrade.img.
pub fn release_image(release: &str) -> Result<Image> {
    image::build(&image::Options {
        release: release.to_string(),
        ..image::Options::default()
    })
}

/// A correctly signed upgrade whose /init exits at once: the kernel
/// panics ("Attempted to kill init") and, with panic=-1, reboots.
pub fn upgrade_whose_init_exits(image: &Image) -> Result<Vec<u8>> {
    let kernel = std::fs::read(&image.kernel)?;
    let initramfs = initramfs::build(
        exiting_init(),
        "0.9.1-broken",
        &ModuleSet::default(),
        Compression::Gzip,
    )?;
    let key = std::fs::read(image::development_signing_key())?;
    artifact::seal(
        &Artifact {
            release: "0.9.1-broken",
            cmdline: &image.cmdline,
            kernel: &kernel,
            initramfs: &initramfs,
        },
        &key,
    )
    .map_err(anyhow::Error::msg)
}

/// The smallest static x86-64 program: exit(1). An ELF header, one
/// loadable segment, and `mov edi, 1; mov eax, 60; syscall`.
fn exiting_init() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let code = [0xbf, 1, 0, 0, 0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05];
    let total = HEADERS + code.len() as u64;
    let mut elf = b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0".to_vec();
    elf.extend(2u16.to_le_bytes()); // executable
    elf.extend(0x3eu16.to_le_bytes()); // x86-64
    elf.extend(1u32.to_le_bytes());
    elf.extend((BASE + HEADERS).to_le_bytes()); // entry: the code
    elf.extend(64u64.to_le_bytes()); // program headers follow this header
    elf.extend(0u64.to_le_bytes()); // no section headers
    elf.extend(0u32.to_le_bytes());
    for half in [64u16, 56, 1, 0, 0, 0] {
        elf.extend(half.to_le_bytes());
    }
    elf.extend(1u32.to_le_bytes()); // PT_LOAD
    elf.extend(5u32.to_le_bytes()); // read + execute
    for word in [0, BASE, BASE, total, total, 0x1000] {
        elf.extend(word.to_le_bytes());
    }
    elf.extend(code);
    elf
}

/// The same upgrade signed with a key the appliance does not trust.
pub fn signed_by_a_stranger(upgrade: &[u8]) -> Result<Vec<u8>> {
    let opened = artifact::open(upgrade, &[0; 32], artifact::SignatureCheck::Skipped)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let random = ring::rand::SystemRandom::new();
    let stranger = ring::signature::Ed25519KeyPair::generate_pkcs8(&random)
        .map_err(|_| anyhow::anyhow!("generating a key"))?;
    artifact::seal(&opened.image, stranger.as_ref()).map_err(anyhow::Error::msg)
}

/// `python3 -m http.server` serving a folder from a namespace host;
/// stopped and the folder removed on drop.
pub struct HttpServer {
    child: Child,
    pub folder: PathBuf,
}

impl HttpServer {
    pub fn start(host: &Host, address: &str, port: u16, folder: &Path) -> Result<Self> {
        std::fs::create_dir_all(folder)?;
        let child = host
            .command("python3")
            .args(["-m", "http.server", &port.to_string(), "--bind", address])
            .current_dir(folder)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting python3 -m http.server")?;
        let server = HttpServer {
            child,
            folder: folder.to_path_buf(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("http://{address}:{port}/");
        while host
            .run("curl", &["-sf", "-o", "/dev/null", &url])?
            .status
            .code()
            != Some(0)
        {
            anyhow::ensure!(Instant::now() < deadline, "the HTTP server did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(server)
    }

    pub fn put(&self, name: &str, bytes: &[u8]) -> Result<()> {
        Ok(std::fs::write(self.folder.join(name), bytes)?)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.folder);
    }
}
