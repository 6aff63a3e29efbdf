//! The startup configuration file: loading it (reporting bad lines and
//! keeping the good ones) and saving it atomically (temporary file, fsync,
//! rename, fsync of the directory), so a crash never leaves half a file.

use grammar::config::Config;
use grammar::{parse_config, validate};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// The result of reading a startup file.
pub struct Loaded {
    pub config: Config,
    /// `%` lines describing what was wrong; empty for a clean file.
    pub report: Vec<String>,
}

/// Reads and parses the startup file. A missing file gives the default
/// configuration; bad lines are reported and skipped; a configuration that
/// fails the commit checks is reported and not used.
pub fn load(path: &Path) -> Loaded {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Loaded {
                config: Config::default(),
                report: vec![format!(
                    "% {} does not exist: starting with the default configuration",
                    path.display()
                )],
            }
        }
        Err(e) => {
            return Loaded {
                config: Config::default(),
                report: vec![format!("% Cannot read {}: {e}", path.display())],
            }
        }
    };
    let (config, errors) = parse_config(&text);
    let mut report: Vec<String> = errors
        .iter()
        .map(|e| {
            format!(
                "% {} line {}: \"{}\": {}",
                path.display(),
                e.line_number,
                e.line.trim(),
                e.error.message.trim_start_matches("% ")
            )
        })
        .collect();
    let problems = validate(&config);
    if !problems.is_empty() {
        report.push(format!(
            "% {} is not a valid configuration; starting with the default configuration:",
            path.display()
        ));
        report.extend(problems);
        return Loaded {
            config: Config::default(),
            report,
        };
    }
    Loaded { config, report }
}

/// Writes `text` to `path` atomically.
pub fn save(path: &Path, text: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let temp = dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
