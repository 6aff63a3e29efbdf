//! Loads the kernel modules the machine's devices need: every device's
//! `modalias` (PCI, virtio, …) is matched against /lib/modules/modules.alias
//! and the module is loaded after its dependencies (modules.dep) with
//! finit_module. Loading a bus driver (virtio_pci) creates new devices
//! (virtio0…), so the scan repeats until nothing new matches.

use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::fs;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

const MAX_ROUNDS: usize = 5;

pub struct ModuleIndex {
    dir: PathBuf,
    dependencies: HashMap<String, Vec<String>>,
    aliases: Vec<(String, String)>,
}

impl ModuleIndex {
    /// Reads `modules.dep` (`name: dep dep`) and `modules.alias`
    /// (`alias <pattern> <name>`) as the image builder writes them.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let dependencies = fs::read_to_string(dir.join("modules.dep"))?;
        let aliases = fs::read_to_string(dir.join("modules.alias"))?;
        Ok(Self::parse(dir, &dependencies, &aliases))
    }

    fn parse(dir: &Path, dependencies: &str, aliases: &str) -> Self {
        let dependencies = dependencies
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(name, deps)| {
                let deps = deps.split_whitespace().map(str::to_string).collect();
                (name.trim().to_string(), deps)
            })
            .collect();
        let aliases = aliases
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                match (words.next(), words.next(), words.next()) {
                    (Some("alias"), Some(pattern), Some(module)) => {
                        Some((pattern.to_string(), module.to_string()))
                    }
                    _ => None,
                }
            })
            .collect();
        ModuleIndex {
            dir: dir.to_path_buf(),
            dependencies,
            aliases,
        }
    }

    /// The modules whose alias patterns match a device's modalias.
    pub fn modules_for<'a>(&'a self, modalias: &str) -> impl Iterator<Item = &'a str> + 'a {
        let modalias = modalias.trim().to_string();
        self.aliases
            .iter()
            .filter(move |(pattern, _)| glob_match(pattern.as_bytes(), modalias.as_bytes()))
            .map(|(_, module)| module.as_str())
    }

    /// `name` after its dependencies, each once, in load order.
    fn load_order(&self, name: &str, order: &mut Vec<String>) {
        if order.iter().any(|n| n == name) {
            return;
        }
        // Mark before recursing so a dependency cycle cannot loop forever.
        order.push(name.to_string());
        let position = order.len() - 1;
        for dependency in self.dependencies.get(name).into_iter().flatten() {
            self.load_order(dependency, order);
        }
        let name = order.remove(position);
        order.push(name);
    }
}

/// Shell-style glob as used in modules.alias: `*`, `?` and `[...]` classes.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') => (0..=text.len()).any(|skip| glob_match(&pattern[1..], &text[skip..])),
        Some(b'?') => !text.is_empty() && glob_match(&pattern[1..], &text[1..]),
        Some(b'[') => match (pattern.iter().position(|&b| b == b']'), text.first()) {
            (Some(end), Some(&c)) if end > 1 => {
                class_matches(&pattern[1..end], c) && glob_match(&pattern[end + 1..], &text[1..])
            }
            _ => false,
        },
        Some(&p) => text.first() == Some(&p) && glob_match(&pattern[1..], &text[1..]),
    }
}

fn class_matches(class: &[u8], c: u8) -> bool {
    let (negated, class) = match class.first() {
        Some(b'!' | b'^') => (true, &class[1..]),
        _ => (false, class),
    };
    let mut i = 0;
    let mut found = false;
    while i < class.len() {
        if i + 2 < class.len() && class[i + 1] == b'-' {
            found |= (class[i]..=class[i + 2]).contains(&c);
            i += 3;
        } else {
            found |= class[i] == c;
            i += 1;
        }
    }
    found != negated
}

/// Every device's modalias under /sys/bus.
fn device_modaliases() -> Vec<String> {
    let mut found = Vec::new();
    let Ok(buses) = fs::read_dir("/sys/bus") else {
        return found;
    };
    for bus in buses.flatten() {
        let Ok(devices) = fs::read_dir(bus.path().join("devices")) else {
            continue;
        };
        for device in devices.flatten() {
            if let Ok(alias) = fs::read_to_string(device.path().join("modalias")) {
                found.push(alias.trim().to_string());
            }
        }
    }
    found
}

/// Loads modules from the index, each at most once, dependencies first;
/// collects what was loaded and what failed.
pub struct Loader {
    index: ModuleIndex,
    attempted: BTreeSet<String>,
    pub loaded: Vec<String>,
    pub problems: Vec<String>,
}

impl Loader {
    pub fn open(dir: &Path) -> Result<Self, String> {
        let index = ModuleIndex::load(dir)
            .map_err(|error| format!("no module index in {}: {error}", dir.display()))?;
        Ok(Loader {
            index,
            attempted: BTreeSet::new(),
            loaded: Vec::new(),
            problems: Vec::new(),
        })
    }

    /// Loads the modules for the devices present, rescanning while new
    /// devices keep selecting new modules.
    pub fn load_for_devices(&mut self) {
        for _ in 0..MAX_ROUNDS {
            let wanted: BTreeSet<String> = device_modaliases()
                .iter()
                .flat_map(|alias| {
                    self.index
                        .modules_for(alias)
                        .map(str::to_string)
                        .collect::<Vec<_>>()
                })
                .filter(|module| !self.attempted.contains(module))
                .collect();
            if wanted.is_empty() {
                break;
            }
            for module in wanted {
                self.load(&module);
            }
        }
    }

    /// Loads `module` after its dependencies; a module the image does not
    /// carry (built into this kernel) is skipped quietly.
    pub fn load(&mut self, module: &str) {
        if !self.index.dependencies.contains_key(module) {
            return;
        }
        let mut order = Vec::new();
        self.index.load_order(module, &mut order);
        for name in order {
            if !self.attempted.insert(name.clone()) {
                continue;
            }
            match insert_module(&self.index.dir.join(format!("{name}.ko"))) {
                Ok(()) => self.loaded.push(name),
                Err(error) => self
                    .problems
                    .push(format!("module {name} failed to load: {error}")),
            }
        }
    }
}

fn insert_module(path: &Path) -> std::io::Result<()> {
    let file = fs::File::open(path)?;
    let no_parameters = CString::default();
    let result = unsafe {
        libc::syscall(
            libc::SYS_finit_module,
            file.as_raw_fd(),
            no_parameters.as_ptr(),
            0,
        )
    };
    let error = std::io::Error::last_os_error();
    match result {
        0 => Ok(()),
        _ if error.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        _ => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as the builder generates them from Debian's cloud kernel.
    const DEP: &str = "virtio_net: net_failover virtio_ring virtio\nnet_failover: failover\n\
        failover: \nvirtio_pci: virtio_pci_legacy_dev virtio_pci_modern_dev virtio_ring virtio\n\
        virtio_ring: \nvirtio: \nvirtio_pci_legacy_dev: \nvirtio_pci_modern_dev: \ne1000e: \n";
    const ALIAS: &str = "alias virtio:d00000001v* virtio_net\n\
        alias pci:v00001AF4d*sv*sd*bc*sc*i* virtio_pci\n\
        alias pci:v00008086d000010D3sv*sd*bc*sc*i* e1000e\n\
        alias pci:v00008086d0000[12]5[0-9A]Asv*sd*bc*sc*i* classy\n";

    fn index() -> ModuleIndex {
        ModuleIndex::parse(Path::new("/lib/modules"), DEP, ALIAS)
    }

    #[test]
    fn pci_and_virtio_modaliases_select_their_drivers() {
        let index = index();
        let pick = |alias: &str| index.modules_for(alias).collect::<Vec<_>>();
        // Sample /sys/bus/pci/devices/0000:00:03.0/modalias of a QEMU virtio NIC.
        assert_eq!(
            pick("pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00\n"),
            ["virtio_pci"]
        );
        assert_eq!(pick("virtio:d00000001v00001AF4"), ["virtio_net"]);
        assert_eq!(
            pick("pci:v00008086d000010D3sv00008086sd0000A01Fbc02sc00i00"),
            ["e1000e"]
        );
        assert_eq!(pick("pci:v00008086d0000153Asv0sd0bc02sc00i00"), ["classy"]);
        assert!(pick("pci:v00008086d00001237sv00001AF4sd00001100bc06sc00i00").is_empty());
        assert!(pick("").is_empty());
    }

    #[test]
    fn dependencies_load_first_once() {
        let mut order = Vec::new();
        index().load_order("virtio_net", &mut order);
        assert_eq!(
            order,
            [
                "failover",
                "net_failover",
                "virtio_ring",
                "virtio",
                "virtio_net"
            ]
        );
        index().load_order("virtio_pci", &mut order);
        assert_eq!(order.len(), 8);
        assert_eq!(order.last().unwrap(), "virtio_pci");
    }

    #[test]
    fn glob_corner_cases() {
        assert!(glob_match(b"a*b*c", b"axxbyyc"));
        assert!(!glob_match(b"a*b", b"axxc"));
        assert!(glob_match(b"a?c", b"abc"));
        assert!(glob_match(b"[!x]b", b"ab"));
        assert!(!glob_match(b"[", b"a"));
        assert!(!glob_match(b"[]", b"a"));
        let cyclic = ModuleIndex::parse(Path::new("/"), "a: b\nb: a\n", "");
        let mut order = Vec::new();
        cyclic.load_order("a", &mut order);
        assert_eq!(order, ["b", "a"]);
    }
}
