//! The startup configuration file: loading it (reporting bad lines and
//! keeping the good ones) and saving it atomically (temporary file, fsync,
//! rename, fsync of the directory), so a crash never leaves half a file.

use grammar::apply_text;
use grammar::config::Config;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// The result of reading a startup file.
pub struct Loaded {
    pub config: Config,
    /// `%` lines describing what was wrong; empty for a clean file.
    pub report: Vec<String>,
}

/// Checks a configuration as a commit would: the commit checks first, then
/// the system's own check, which applies the configuration when it passes
/// (so asking again about a refused one changes nothing); returns the
/// problems, none when accepted.
pub type Check<'c> = &'c dyn Fn(&Config) -> Vec<String>;

/// Reads and parses the startup file. A missing file gives the `factory`
/// text's configuration, or the default one; bad lines are reported and skipped; blocks (an
/// `interface` with its lines, a route, ...) that make the configuration
/// fail `check` (a commit check, or a NIC that is not there) are reported
/// and left out, the rest is used. The configuration returned from a
/// file has passed `check`.
pub fn load(path: &Path, factory: Option<&str>, check: Check<'_>) -> Loaded {
    let text = match fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let missing = format!("% {} does not exist: starting with the", path.display());
            let Some(factory) = factory else {
                return Loaded {
                    config: Config::default(),
                    report: vec![format!("{missing} default configuration")],
                };
            };
            let mut loaded = parse(path, factory, check);
            loaded
                .report
                .insert(0, format!("{missing} factory configuration"));
            return loaded;
        }
        Err(e) => {
            return Loaded {
                config: Config::default(),
                report: vec![format!("% Cannot read {}: {e}", path.display())],
            }
        }
    };
    let mut loaded = parse(path, &text, check);
    if !loaded.report.is_empty() {
        loaded.report.push(keep_original(path, &text));
    }
    loaded
}

/// The configuration `text` (read from `path`) gives, with its bad lines
/// and refused blocks reported and left out.
fn parse(path: &Path, text: &str, check: Check<'_>) -> Loaded {
    let blocks = blocks(text);
    let mut report = Vec::new();
    let mut parsed = Config::default();
    for block in &blocks {
        for e in apply_text(&mut parsed, &block.text) {
            report.push(format!(
                "% {} line {}: \"{}\": {}",
                path.display(),
                block.first_line + e.line_number - 1,
                e.line.trim(),
                e.error.message.trim_start_matches("% ")
            ));
        }
    }
    let config = if check(&parsed).is_empty() {
        parsed
    } else {
        keep_valid_parts(path, &blocks, check, &mut report)
    };
    Loaded { config, report }
}

/// The configuration made of the blocks that pass the commit checks; the
/// others are reported.
fn keep_valid_parts(
    path: &Path,
    blocks: &[Block<'_>],
    check: Check<'_>,
    report: &mut Vec<String>,
) -> Config {
    let mut config = Config::default();
    for block in keep_valid_blocks(&mut config, blocks, check) {
        report.push(format!(
            "% {} line {}: \"{}\": left out: {}",
            path.display(),
            block.first_line,
            block.header,
            check(&with_block(&config, block))
                .iter()
                .map(|problem| problem.trim_start_matches("% "))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    config
}

/// Saves the file as read beside it, since the next `write memory` will
/// replace it without the lines that were refused; returns the line to
/// report.
fn keep_original(path: &Path, text: &str) -> String {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".rejected");
    let copy = path.with_file_name(name);
    match save(&copy, text) {
        Ok(()) => format!(
            "% The file as read is kept as {}; 'write memory' replaces {}",
            copy.display(),
            path.display()
        ),
        Err(e) => format!("% Cannot keep a copy as {}: {e}", copy.display()),
    }
}

/// A top-level line of a configuration text with its indented lines.
struct Block<'t> {
    /// 1-based line number of the header.
    first_line: usize,
    header: &'t str,
    text: String,
}

/// Splits a configuration text into blocks. Each is applied from the
/// global mode, so a refused `interface` line cannot hand its indented
/// lines to the interface before it.
fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut blocks: Vec<Block<'_>> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let indented = line.starts_with([' ', '\t']);
        match blocks.last_mut() {
            Some(block) if indented => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            _ => blocks.push(Block {
                first_line: index + 1,
                header: line.trim(),
                text: format!("{line}\n"),
            }),
        }
    }
    blocks
}

fn with_block(config: &Config, block: &Block<'_>) -> Config {
    let mut trial = config.clone();
    apply_text(&mut trial, &block.text);
    trial
}

/// Adds to `config` every block it can take while passing `check`, and
/// returns the ones refused. Blocks are tried in groups, halved
/// on failure, so a few bad blocks cost a few checks each; refused blocks
/// are tried again while that helps (a VXLAN interface may come before the
/// source interface it names).
fn keep_valid_blocks<'b, 't>(
    config: &mut Config,
    blocks: &'b [Block<'t>],
    check: Check<'_>,
) -> Vec<&'b Block<'t>> {
    let mut waiting: Vec<&Block<'_>> = blocks.iter().collect();
    loop {
        let mut refused = Vec::new();
        add_valid(config, &waiting, check, &mut refused);
        if refused.is_empty() || refused.len() == waiting.len() {
            return refused;
        }
        waiting = refused;
    }
}

fn add_valid<'b, 't>(
    config: &mut Config,
    group: &[&'b Block<'t>],
    check: Check<'_>,
    refused: &mut Vec<&'b Block<'t>>,
) {
    let mut trial = config.clone();
    for block in group {
        apply_text(&mut trial, &block.text);
    }
    if check(&trial).is_empty() {
        *config = trial;
        return;
    }
    if let [one] = group {
        refused.push(one);
        return;
    }
    let (first, second) = group.split_at(group.len() / 2);
    add_valid(config, first, check, refused);
    add_valid(config, second, check, refused);
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
    // A name of its own per save, so two sessions saving at once never
    // write into each other's temporary file.
    static SAVES: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{}.tmp{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        SAVES.fetch_add(1, Ordering::Relaxed)
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
