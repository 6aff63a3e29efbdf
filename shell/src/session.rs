//! One CLI session (console, SSH, script): its mode and prompt, its own
//! candidate configuration, and the execution of typed lines.

use crate::actions::{Action, Builtin};
use crate::engine::Shell;
use crate::filter::{filter_tree, parse_filter, split_pipe};
use crate::interrupt::Interrupt;
use grammar::config::Config;
use grammar::editor::run_command;
use grammar::render::{blocks, mask_secrets, render_blocks};
use grammar::tokens::{column_of, split_words};
use grammar::{
    diff, format_help, parse_in_modes, render, Args, CliError, CommandTree, ConfigCommand,
    ConfigContext, ParseError,
};
use std::collections::VecDeque;
use std::sync::Arc;

/// Where the session is, as on IOS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `host>`
    User,
    /// `host#`
    Privileged,
    /// `host(config)#`, `host(config-if)#`
    Config(ConfigContext),
}

/// The outcome of one line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    pub output: String,
    pub error: Option<CliError>,
    /// The session has ended (`exit` from EXEC mode).
    pub quit: bool,
}

/// Changes this session made, not yet committed.
struct Candidate {
    /// The running configuration it started from, and its generation.
    base: Arc<Config>,
    base_generation: u64,
    config: Arc<Config>,
    /// Where its first line was typed, and the configuration lines typed
    /// into it (in `configure terminal`, to type them again or name them).
    context: ConfigContext,
    lines: Vec<String>,
}

/// Lines of `configure terminal` the checks or the system refused, typed
/// again after each later commit (an `ip access-group` typed before its
/// access list) and refused at `end` if still refused.
struct Waiting {
    context: ConfigContext,
    lines: Vec<String>,
    error: CliError,
}

/// How configuration mode applies what is typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// `configure terminal`: each line at once, as IOS does, through the
    /// same checks and hook as `commit`. Inside a block (`interface`, an
    /// access list, ...) a line the checks refuse waits for the block's
    /// next lines, which may complete it (a VXLAN interface before its
    /// `vni`); what is still refused when the block ends waits for later
    /// lines (see [`Waiting`]).
    Lines,
    /// `configure exclusive`: a candidate of this session's own that
    /// `commit` applies whole (refused if another session committed since
    /// it started: it never merges), with `commit confirmed`.
    Exclusive,
}

const HISTORY_LINES: usize = 200;

/// The privilege level that may use privileged EXEC and configuration.
pub const FULL_PRIVILEGE: u8 = 15;

pub struct Session {
    shell: Arc<Shell>,
    user: String,
    /// The user's privilege level: below [`FULL_PRIVILEGE`], `enable` is refused.
    privilege: u8,
    mode: Mode,
    style: Style,
    candidate: Option<Candidate>,
    /// The history entry this `configure terminal` session's lines go to.
    lines_entry: Option<u64>,
    waiting: Vec<Waiting>,
    history: VecDeque<String>,
    closed: bool,
    /// `terminal length`: lines a screen of paged output, 0 for no paging;
    /// None until typed.
    page_length: Option<usize>,
    /// Ctrl-C for the command running.
    interrupt: Interrupt,
    /// The last unindented configuration line was refused.
    refused_block: bool,
}

/// The trees searched in `mode`, innermost first.
fn trees_for<'s>(shell: &'s Shell, mode: &Mode) -> Vec<&'s CommandTree<Action>> {
    let t = &shell.trees;
    match mode {
        Mode::User => vec![&t.user],
        Mode::Privileged => vec![&t.privileged],
        Mode::Config(context) => t.config.for_context(context),
    }
}

/// `?` help for `line` typed in `mode`: the formatted list, or the error.
pub fn help_in(shell: &Shell, mode: &Mode, line: &str) -> Result<String, CliError> {
    let items = match split_pipe(line) {
        (_, Some(at)) => filter_tree()
            .help(&line[at..])
            .map_err(|e| shift(e.into(), line, at)),
        (_, None) => {
            let mut first_error = None;
            let mut found = None;
            for tree in trees_for(shell, mode) {
                match tree.help(line) {
                    Ok(items) => {
                        found = Some(items);
                        break;
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            found.ok_or_else(|| CliError::from(first_error.unwrap_or(ParseError::Empty)))
        }
    }?;
    Ok(format_help(&items))
}

/// Tab completion of `line` in `mode`: where the word starts and the
/// keywords it may complete to.
pub fn complete_in(shell: &Shell, mode: &Mode, line: &str) -> (usize, Vec<String>) {
    if let (_, Some(at)) = split_pipe(line) {
        let (start, words) = filter_tree().complete(&line[at..]);
        return (at + start, words);
    }
    trees_for(shell, mode)
        .into_iter()
        .map(|tree| tree.complete(line))
        .find(|(_, words)| !words.is_empty())
        .unwrap_or((line.len(), Vec::new()))
}

/// The line as `show history` keeps it: a clear-text secret typed after a
/// `secret` keyword (`se` is already a unique abbreviation of it after
/// `username NAME`) is not kept. Erring towards hiding costs nothing here.
fn redact_secret(line: &str) -> String {
    let words = split_words(line).unwrap_or_default();
    match words
        .iter()
        .position(|w| "secret".starts_with(w.text) && w.text.len() >= 2)
    {
        Some(i) if i + 1 < words.len() => format!("{} <removed>", &line[..words[i].end]),
        _ => line.to_string(),
    }
}

/// An uptime as IOS words it: `1 week, 2 days, 3 hours, 1 minute`, units
/// that are zero left out but the minutes.
fn uptime_words(seconds: u64) -> String {
    let units = [
        ("week", seconds / 604_800),
        ("day", seconds / 86_400 % 7),
        ("hour", seconds / 3600 % 24),
        ("minute", seconds / 60 % 60),
    ];
    let words: Vec<String> = units
        .iter()
        .filter(|(unit, n)| *n > 0 || *unit == "minute")
        .map(|(unit, n)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
        .collect();
    words.join(", ")
}

/// Moves a caret from a column of `line[at..]` to a column of `line`.
fn shift(mut error: CliError, line: &str, at: usize) -> CliError {
    error.caret = error.caret.map(|c| c + column_of(line, at));
    error
}

impl Session {
    /// A session for `user`, starting in privileged EXEC mode or in user
    /// EXEC mode.
    pub fn new(shell: Arc<Shell>, user: impl Into<String>, privileged: bool) -> Session {
        Session {
            shell,
            user: user.into(),
            privilege: FULL_PRIVILEGE,
            mode: if privileged {
                Mode::Privileged
            } else {
                Mode::User
            },
            style: Style::Lines,
            candidate: None,
            lines_entry: None,
            waiting: Vec::new(),
            history: VecDeque::new(),
            closed: false,
            page_length: None,
            interrupt: Interrupt::default(),
            refused_block: false,
        }
    }

    /// A session for a logged-in user (see [`Shell::authenticate`]): full
    /// privilege starts in privileged EXEC mode, lower levels stay in user
    /// EXEC mode.
    pub fn for_user(shell: Arc<Shell>, user: impl Into<String>, privilege: u8) -> Session {
        let mut session = Session::new(shell, user, privilege >= FULL_PRIVILEGE);
        session.privilege = privilege;
        session
    }

    pub fn shell(&self) -> &Arc<Shell> {
        &self.shell
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    pub fn prompt(&self) -> String {
        let running = self.shell.running();
        let host = running.hostname_or_default();
        match &self.mode {
            Mode::User => format!("{host}>"),
            Mode::Privileged => format!("{host}#"),
            Mode::Config(ConfigContext::Global) => format!("{host}(config)#"),
            Mode::Config(ConfigContext::Sub(mode, _)) => format!("{host}(config-{})#", mode.prompt),
            Mode::Config(ConfigContext::Range(mode, _)) => {
                format!("{host}(config-{}-range)#", mode.prompt)
            }
        }
    }

    /// Lines a screen for front ends that page (0: no paging); None
    /// until `terminal length` is typed, when the front end pages by the
    /// terminal's height if it knows it.
    pub fn page_length(&self) -> Option<usize> {
        self.page_length
    }

    /// The message of the day and the embedder's notice, to show when the
    /// session starts.
    pub fn banner(&self) -> Option<String> {
        let motd = self.shell.running().system.banner_motd.clone();
        let notice = self.shell.login_notice.as_ref().and_then(|notice| notice());
        match (motd, notice) {
            (Some(motd), Some(notice)) => Some(format!("{motd}\n{notice}")),
            (motd, notice) => motd.or(notice),
        }
    }

    /// Whether this session's candidate differs from what it started from.
    pub fn has_uncommitted_changes(&self) -> bool {
        self.candidate.as_ref().is_some_and(|c| c.config != c.base)
    }

    pub fn help(&self, line: &str) -> Result<String, CliError> {
        help_in(&self.shell, &self.mode, line)
    }

    pub fn complete(&self, line: &str) -> (usize, Vec<String>) {
        complete_in(&self.shell, &self.mode, line)
    }

    /// Ctrl-Z: leaves configuration mode, like `end`.
    pub fn ctrl_z(&mut self) -> Reply {
        match self.mode {
            Mode::Config(_) => {
                let output = self.leave_config();
                self.reply(output)
            }
            _ => Reply::default(),
        }
    }

    /// Runs one typed line.
    /// The session's Ctrl-C, for the front end to raise while a stoppable
    /// command runs.
    pub fn interrupt(&self) -> Interrupt {
        self.interrupt.clone()
    }

    pub fn execute(&mut self, line: &str) -> Reply {
        if !line.trim().is_empty() {
            if self.history.len() == HISTORY_LINES {
                self.history.pop_front();
            }
            self.history.push_back(redact_secret(line.trim()));
        }
        // `!` starts a comment line, as in saved configurations.
        if line.trim_start().starts_with('!') {
            return self.reply(Ok(String::new()));
        }
        // The indented lines of a pasted block whose first line was refused
        // (`router ospf 1` where there is no OSPF) are refused with it:
        // applied in the mode still current, they would change something
        // else.
        let in_config = matches!(self.mode, Mode::Config(_));
        let indented = line.starts_with([' ', '\t']);
        if in_config && indented && self.refused_block {
            let refused = "% Not applied: part of the refused block above";
            return self.reply(Err(CliError::new(refused)));
        }
        let result = self.run(line);
        if in_config && !indented && !line.trim().is_empty() {
            self.refused_block = result.is_err();
        }
        self.reply(result)
    }

    fn reply(&self, result: Result<String, CliError>) -> Reply {
        match result {
            Ok(output) => Reply {
                output,
                error: None,
                quit: self.closed,
            },
            Err(error) => Reply {
                output: String::new(),
                error: Some(error),
                quit: self.closed,
            },
        }
    }

    fn run(&mut self, line: &str) -> Result<String, CliError> {
        let shell = self.shell.clone();
        let trees = trees_for(&shell, &self.mode);
        let (command, pipe) = split_pipe(line);
        let (matched, level) = match parse_in_modes(&trees, command) {
            Err(ParseError::Empty) if pipe.is_none() => return Ok(String::new()),
            Err(ParseError::Empty) => return Err(CliError::new("% Incomplete command.")),
            other => other?,
        };
        match (pipe, matched.action) {
            (Some(at), action) if action.is_filterable() => {
                let filter = parse_filter(&line[at..]).map_err(|e| shift(e, line, at))?;
                let output = self.run_action(matched.action, &matched.args, level, line)?;
                Ok(filter.apply(&output))
            }
            (Some(_), Action::Builtin(Builtin::Do)) | (None, _) => {
                self.run_action(matched.action, &matched.args, level, line)
            }
            // The bar belongs to the command (a description, a banner).
            (Some(_), _) => {
                let (matched, level) = parse_in_modes(&trees, line)?;
                self.run_action(matched.action, &matched.args, level, line)
            }
        }
    }

    fn run_action(
        &mut self,
        action: &Action,
        args: &Args,
        level: usize,
        line: &str,
    ) -> Result<String, CliError> {
        match action {
            Action::Config(command) => self.configure(*command, args, level, line),
            Action::Builtin(builtin) => self.builtin(*builtin, args, line),
            Action::Show(handler) => Ok(handler(args)),
            Action::Exec(handler) => handler(args, &self.interrupt).map_err(CliError::new),
        }
    }

    /// Applies a configuration command to the candidate (and, in
    /// `configure terminal`, commits it). A command found in the parent
    /// mode (`level` > 0) moves the session there, ending the block.
    fn configure(
        &mut self,
        command: ConfigCommand,
        args: &Args,
        level: usize,
        line: &str,
    ) -> Result<String, CliError> {
        let Mode::Config(context) = &self.mode else {
            return Err(CliError::new("% Not in configuration mode"));
        };
        let (context, block) = if level == 0 {
            (context.clone(), String::new())
        } else {
            (ConfigContext::Global, self.commit_lines(false))
        };
        if self.style == Style::Lines {
            // Only lines waiting in a block carry over: a fresh line starts
            // from the running configuration as it is now.
            self.candidate = self.candidate.take().filter(|c| c.config != c.base);
        }
        let shell = &self.shell;
        let candidate = self.candidate.get_or_insert_with(|| {
            let (running, generation) = shell.running_with_generation();
            Candidate {
                base: running.clone(),
                base_generation: generation,
                config: running,
                context: context.clone(),
                lines: Vec::new(),
            }
        });
        let outcome = run_command(
            Arc::make_mut(&mut candidate.config),
            &context,
            command,
            args,
        );
        if outcome.is_ok() {
            candidate.lines.push(line.trim().to_string());
        }
        let applied = outcome.map(|outcome| {
            self.mode = Mode::Config(outcome.enter.unwrap_or(context));
            let in_block = matches!(
                self.mode,
                Mode::Config(ConfigContext::Sub(..) | ConfigContext::Range(..))
            );
            let notes: String = outcome.notes.iter().map(|n| format!("{n}\n")).collect();
            notes + &self.commit_lines(in_block)
        });
        match applied {
            Ok(output) => Ok(block + &output),
            Err(error) if block.is_empty() => Err(error),
            Err(error) => Err(CliError {
                message: format!("{}\n{}", error.message, block.trim_end()),
                caret: error.caret,
            }),
        }
    }

    /// In `configure terminal`, commits what this session typed since its
    /// last commit, then what waits. When the checks or the system refuse
    /// it inside a block (`block_open`), it waits for the block's next
    /// lines; otherwise it waits for later lines, with a note saying so.
    fn commit_lines(&mut self, block_open: bool) -> String {
        if self.style != Style::Lines {
            return String::new();
        }
        let error = match self.commit_candidate() {
            Ok(()) => {
                self.retry_waiting();
                return String::new();
            }
            Err(error) => error,
        };
        if block_open {
            return String::new();
        }
        let Some(candidate) = self.candidate.take() else {
            return String::new();
        };
        let note = format!(
            "% Not applied yet (again after each line, refused at 'end'): {}\n{}\n",
            candidate.lines.join(" / "),
            error.message
        );
        self.waiting.push(Waiting {
            context: candidate.context,
            lines: candidate.lines,
            error,
        });
        note
    }

    /// Commits the candidate as `configure terminal` lines; when refused,
    /// it stays the candidate.
    fn commit_candidate(&mut self) -> Result<(), CliError> {
        let Some(candidate) = self.candidate.take_if(|c| c.config != c.base) else {
            self.candidate = None;
            return Ok(());
        };
        let committed = self.shell.commit_lines(
            candidate.config.clone(),
            candidate.base_generation,
            &self.user,
            self.lines_entry,
        );
        match committed {
            Ok(entry) => {
                self.lines_entry = Some(entry);
                Ok(())
            }
            Err(error) => {
                self.candidate = Some(candidate);
                Err(error)
            }
        }
    }

    /// Types the waiting lines again, each group on the running
    /// configuration as it is now, until no more of them apply.
    fn retry_waiting(&mut self) {
        let mut applied = true;
        while applied && !self.waiting.is_empty() {
            applied = false;
            for mut waiting in std::mem::take(&mut self.waiting) {
                let mode = std::mem::replace(&mut self.mode, Mode::Config(waiting.context.clone()));
                // Typed into a candidate of its own, committed here.
                self.style = Style::Exclusive;
                let typed = waiting.lines.iter().try_for_each(|l| self.run(l).map(drop));
                self.style = Style::Lines;
                self.mode = mode;
                let committed = typed.and_then(|()| self.commit_candidate());
                match committed {
                    Ok(()) => applied = true,
                    Err(error) => {
                        waiting.error = error;
                        self.waiting.push(waiting);
                    }
                }
                self.candidate = None;
            }
        }
    }

    /// Leaves configuration mode; in `configure terminal`, lines still
    /// refused are dropped and named in the error.
    fn leave_config(&mut self) -> Result<String, CliError> {
        self.mode = Mode::Privileged;
        self.commit_lines(false);
        let refused: Vec<String> = std::mem::take(&mut self.waiting)
            .into_iter()
            .map(|w| {
                format!(
                    "% Not applied: {}\n{}",
                    w.lines.join(" / "),
                    w.error.message
                )
            })
            .collect();
        if !refused.is_empty() {
            return Err(CliError::new(refused.join("\n")));
        }
        Ok(if self.has_uncommitted_changes() {
            "% Uncommitted changes are kept in this session: 'commit' or 'abort' them in configuration mode\n".into()
        } else {
            self.candidate = None;
            String::new()
        })
    }

    /// `configure terminal` (line by line) or `configure exclusive`.
    fn enter_config(&mut self, style: Style) -> Result<String, CliError> {
        if style == Style::Lines && self.has_uncommitted_changes() {
            return Err(CliError::new(
                "% This session has uncommitted changes: 'configure exclusive' to commit or abort them",
            ));
        }
        self.style = style;
        self.lines_entry = None;
        self.waiting.clear();
        self.mode = Mode::Config(ConfigContext::Global);
        Ok(String::new())
    }

    fn builtin(&mut self, builtin: Builtin, args: &Args, line: &str) -> Result<String, CliError> {
        match builtin {
            Builtin::Enable if self.privilege < FULL_PRIVILEGE => Err(CliError::new(format!(
                "% Access denied: {} has privilege level {}",
                self.user, self.privilege
            ))),
            Builtin::Enable => {
                self.mode = Mode::Privileged;
                Ok(String::new())
            }
            Builtin::Disable => {
                self.mode = Mode::User;
                Ok(String::new())
            }
            Builtin::Configure => self.enter_config(Style::Lines),
            Builtin::ConfigureExclusive => self.enter_config(Style::Exclusive),
            Builtin::Exit => match &self.mode {
                Mode::User | Mode::Privileged => {
                    self.closed = true;
                    Ok(String::new())
                }
                Mode::Config(ConfigContext::Sub(..) | ConfigContext::Range(..)) => {
                    self.mode = Mode::Config(ConfigContext::Global);
                    Ok(self.commit_lines(false))
                }
                Mode::Config(ConfigContext::Global) => self.leave_config(),
            },
            Builtin::End => self.leave_config(),
            Builtin::Do => self.run_as_exec(line),
            Builtin::Commit => match (self.style, args.number("minutes")) {
                // Old scripts end with `commit`: what they typed is applied.
                (Style::Lines, None) => Ok(self.commit_lines(false)),
                (Style::Lines, Some(_)) => Err(CliError::new(
                    "% 'configure terminal' applies each line at once: \
                     use 'configure exclusive' for 'commit confirmed'",
                )),
                (Style::Exclusive, minutes) => self.commit(minutes),
            },
            Builtin::Abort => {
                self.candidate = None;
                self.waiting.clear();
                self.mode = Mode::Privileged;
                Ok(String::new())
            }
            Builtin::ShowVersion => Ok(self.version()),
            Builtin::ShowClock => Ok(crate::clock::show_clock()),
            Builtin::ShowHistory => Ok(self.history.iter().map(|l| format!("  {l}\n")).collect()),
            // Secrets (WireGuard keys) are kept but never shown.
            Builtin::ShowRunning => self.show_running(args).map(|t| mask_secrets(&t)),
            Builtin::ShowStartup => self.shell.startup_text().map(|t| mask_secrets(&t)),
            Builtin::ShowCandidate => Ok(self
                .candidate
                .as_ref()
                .map(|c| mask_secrets(&diff(&c.base, &c.config)))
                .unwrap_or_default()),
            Builtin::ShowCommitList => Ok(self.commit_list()),
            Builtin::WriteMemory => self.shell.save_startup(),
            Builtin::TerminalLength => {
                self.page_length = args.number("lines").map(|n| n as usize);
                Ok(String::new())
            }
            Builtin::Rollback => {
                if self.has_uncommitted_changes() {
                    return Err(CliError::new(
                        "% This session has uncommitted changes: 'commit' or 'abort' them first",
                    ));
                }
                let count = args.number("count").unwrap_or(1) as usize;
                self.shell.rollback(count, &self.user)
            }
        }
    }

    /// `show running-config [interface [NAME] | SECTION]`: the whole
    /// configuration, or the blocks whose header starts with the words
    /// typed (`interface eth0` is not `interface eth0.100`).
    fn show_running(&self, args: &Args) -> Result<String, CliError> {
        let running = self.shell.running();
        let interface = args.text("interface");
        let section = match interface {
            Some(name) => format!("interface {name}"),
            None if args.has("interface") => "interface".to_string(),
            None => match args.text("section") {
                Some(section) => section.to_string(),
                None => return Ok(render(&running)),
            },
        };
        let wanted: Vec<_> = split_words(&section).unwrap_or_default();
        let starts_with_section = |header: &str| {
            let words = split_words(header).unwrap_or_default();
            words.len() >= wanted.len() && words.iter().zip(&wanted).all(|(h, w)| h.text == w.text)
        };
        let found: Vec<_> = blocks(&running)
            .into_iter()
            .filter(|b| starts_with_section(&b.header))
            .collect();
        match (found.is_empty(), interface) {
            (true, Some(name)) => Err(CliError::new(format!(
                "% Interface {name} is not configured"
            ))),
            _ => Ok(render_blocks(&found)),
        }
    }

    /// `do COMMAND`: runs the rest of the line in privileged EXEC mode.
    fn run_as_exec(&mut self, line: &str) -> Result<String, CliError> {
        let words = split_words(line).unwrap_or_default();
        let Some(first) = words.first() else {
            return Err(CliError::new("% Incomplete command."));
        };
        let inner = &line[first.end..];
        let saved = std::mem::replace(&mut self.mode, Mode::Privileged);
        let result = self.run(inner).map_err(|e| shift(e, line, first.end));
        if !self.closed {
            self.mode = saved;
        }
        result
    }

    fn commit(&mut self, minutes: Option<u64>) -> Result<String, CliError> {
        let (config, base_generation) = match &self.candidate {
            Some(c) if c.config != c.base => (c.config.clone(), c.base_generation),
            _ => {
                self.candidate = None;
                self.shell.running_with_generation()
            }
        };
        let output = self
            .shell
            .commit(config, base_generation, &self.user, minutes)?;
        self.candidate = None;
        Ok(output)
    }

    /// `show version`, as IOS's begins: the version, `HOST uptime is
    /// ...`, then what the embedder adds.
    fn version(&self) -> String {
        let up = self.shell.started.elapsed().as_secs();
        let about = self.shell.about.as_ref().map(|about| about());
        format!(
            "Gatehouse edge gateway, version {}\n{} uptime is {}\n{}",
            self.shell.version,
            self.shell.running().hostname_or_default(),
            uptime_words(up),
            about.unwrap_or_default()
        )
    }

    fn commit_list(&self) -> String {
        let mut out = String::from("  ID  Label                          By          Age\n");
        for record in self.shell.history() {
            out.push_str(&format!(
                "{:>4}  {:<30} {:<11} {}s\n",
                record.id,
                record.label,
                record.by,
                record.at.elapsed().as_secs()
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::uptime_words;

    #[test]
    fn uptime_is_worded_as_ios_words_it() {
        assert_eq!(uptime_words(59), "0 minutes");
        assert_eq!(uptime_words(61), "1 minute");
        assert_eq!(uptime_words(3600 + 120), "1 hour, 2 minutes");
        assert_eq!(
            uptime_words(2 * 604_800 + 86_400 + 3 * 3600 + 60),
            "2 weeks, 1 day, 3 hours, 1 minute"
        );
        assert_eq!(uptime_words(86_400), "1 day, 0 minutes");
    }
}
