//! The state all sessions share: the running configuration, the commit
//! history, the startup file, the embedder's commit hook and commands.
//! Commits are serialised by one lock; a commit made on a candidate that was
//! started before another session's commit is refused, never merged.

use crate::actions::{Action, ModeKind, Trees, SHOW_HELP};
use crate::interrupt::Interrupt;
use crate::startup;
use grammar::config::Config;
use grammar::{render, validate, validate_change, Args, CliError, SyntaxError};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Implemented by the appliance to apply configurations to the dataplane.
pub trait CommitHook: Send + Sync {
    /// Called with the complete new configuration after it passed
    /// validation (and at start with the startup configuration: when that
    /// is refused, again with parts of it, to keep what can be kept).
    /// `Err(message)` refuses it: nothing changes and the user sees it.
    /// Commits are serialised around this call, so it must not commit or
    /// roll back itself (it would wait for itself); `Shell::running` is fine.
    fn apply(&self, config: &Config) -> Result<(), String>;
}

impl<F: Fn(&Config) -> Result<(), String> + Send + Sync> CommitHook for F {
    fn apply(&self, config: &Config) -> Result<(), String> {
        self(config)
    }
}

/// Told of every change of the running configuration once it is made
/// (commits, rollbacks, reverts of unconfirmed commits): who and what.
pub type CommitNotice = Box<dyn Fn(&CommitRecord) + Send + Sync>;

/// One entry of the commit history.
#[derive(Clone, Debug)]
pub struct CommitRecord {
    pub id: u64,
    pub at: Instant,
    pub by: String,
    /// What it did: `commit`, `commit confirmed 5`, `rollback 2`, ...
    pub label: String,
    /// The running configuration before this commit.
    pub previous: Arc<Config>,
}

struct PendingConfirm {
    commit_id: u64,
    previous: Arc<Config>,
    /// When it reverts; a `commit confirmed` without changes moves it.
    deadline: Instant,
}

struct State {
    running: Arc<Config>,
    /// Counts changes of the running configuration (stale candidate check).
    generation: u64,
    next_commit_id: u64,
    /// Newest first, at most `history_depth` entries.
    history: VecDeque<CommitRecord>,
    pending_confirm: Option<PendingConfirm>,
}

/// The shared CLI engine; sessions hold an `Arc` to it.
pub struct Shell {
    pub(crate) trees: Trees,
    state: Mutex<State>,
    /// A copy of `state.running` for readers (prompts, show commands), so
    /// they do not wait while a commit runs the hook under `state`.
    published: Mutex<Arc<Config>>,
    hook: Option<Box<dyn CommitHook>>,
    notice: Option<CommitNotice>,
    startup_path: Option<PathBuf>,
    history_depth: usize,
    confirm_minute: Duration,
    pub(crate) version: String,
    pub(crate) about: Option<Box<AboutFn>>,
    pub(crate) login_notice: Option<Box<LoginNoticeFn>>,
    pub(crate) started: Instant,
    myself: Weak<Shell>,
}

/// What the embedder adds to `show version` (image, memory, interfaces).
pub type AboutFn = dyn Fn() -> String + Send + Sync;
/// What every session is told when it starts, if anything (a failed upgrade).
pub type LoginNoticeFn = dyn Fn() -> Option<String> + Send + Sync;

/// Builds a [`Shell`]: the embedder registers its hook and commands here.
pub struct ShellBuilder {
    trees: Trees,
    hook: Option<Box<dyn CommitHook>>,
    notice: Option<CommitNotice>,
    startup_path: Option<PathBuf>,
    /// The configuration text used when the startup file does not exist.
    factory: Option<String>,
    history_depth: usize,
    confirm_minute: Duration,
    version: String,
    about: Option<Box<AboutFn>>,
    login_notice: Option<Box<LoginNoticeFn>>,
}

impl Default for ShellBuilder {
    fn default() -> Self {
        ShellBuilder {
            trees: Trees::with_builtins().expect("built-in command syntax is valid"),
            hook: None,
            notice: None,
            startup_path: None,
            factory: None,
            history_depth: 20,
            confirm_minute: Duration::from_secs(60),
            version: env!("CARGO_PKG_VERSION").to_string(),
            about: None,
            login_notice: None,
        }
    }
}

impl ShellBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Where `write memory` saves and where the configuration is loaded from.
    pub fn startup_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.startup_path = Some(path.into());
        self
    }

    /// The configuration a box with no startup file boots with (the
    /// image's first NIC asking DHCP); without one it is the empty default.
    pub fn factory_config(mut self, text: impl Into<String>) -> Self {
        self.factory = Some(text.into());
        self
    }

    pub fn hook(mut self, hook: impl CommitHook + 'static) -> Self {
        self.hook = Some(Box::new(hook));
        self
    }

    /// Tells `notice` of every change of the running configuration (the
    /// commit lock is held: it must not commit, and should be quick).
    pub fn on_commit(mut self, notice: impl Fn(&CommitRecord) + Send + Sync + 'static) -> Self {
        self.notice = Some(Box::new(notice));
        self
    }

    /// How many earlier configurations `rollback` can return to.
    pub fn history_depth(mut self, depth: usize) -> Self {
        self.history_depth = depth.max(1);
        self
    }

    /// The length of a "minute" of `commit confirmed` (tests shorten it).
    pub fn confirm_minute(mut self, minute: Duration) -> Self {
        self.confirm_minute = minute;
        self
    }

    /// The version `show version` reports.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Lines `show version` prints after the version and uptime, made
    /// when it runs (the system image, memory, interfaces, as IOS's).
    pub fn about(mut self, about: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.about = Some(Box::new(about));
        self
    }

    /// A notice shown with the banner when a session starts (console or
    /// SSH), made then, so it says what is true at that moment.
    pub fn login_notice(
        mut self,
        notice: impl Fn() -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.login_notice = Some(Box::new(notice));
        self
    }

    /// Adds `show SYNTAX` in the EXEC and configuration modes; `help` has
    /// one text per token of `syntax` (which excludes `show`).
    pub fn show(
        mut self,
        syntax: &str,
        help: &[&str],
        handler: impl Fn(&Args) -> String + Send + Sync + 'static,
    ) -> Result<Self, SyntaxError> {
        let help: Vec<&str> = std::iter::once(SHOW_HELP)
            .chain(help.iter().copied())
            .collect();
        self.trees.add(
            &[ModeKind::User, ModeKind::Privileged, ModeKind::Config],
            &format!("show {syntax}"),
            &help,
            Action::Show(Arc::new(handler)),
        )?;
        Ok(self)
    }

    /// Adds a privileged EXEC command (`reload`, `poweroff`, ...), also
    /// reachable with `do` from configuration modes.
    pub fn exec(
        mut self,
        syntax: &str,
        help: &[&str],
        handler: impl Fn(&Args) -> Result<String, String> + Send + Sync + 'static,
    ) -> Result<Self, SyntaxError> {
        self.trees.add(
            &[ModeKind::Privileged],
            syntax,
            help,
            Action::Exec(Arc::new(move |args: &Args, _: &Interrupt| handler(args))),
        )?;
        Ok(self)
    }

    /// Like `exec`, for a long command that Ctrl-C may stop: the handler
    /// gets the session's [`Interrupt`].
    pub fn exec_stoppable(
        mut self,
        syntax: &str,
        help: &[&str],
        handler: impl Fn(&Args, &Interrupt) -> Result<String, String> + Send + Sync + 'static,
    ) -> Result<Self, SyntaxError> {
        self.trees.add(
            &[ModeKind::Privileged],
            syntax,
            help,
            Action::Exec(Arc::new(handler)),
        )?;
        Ok(self)
    }

    /// Loads the startup configuration (if a path was given), hands it to
    /// the hook, and returns the shell with a report of any problems.
    pub fn build(self) -> (Arc<Shell>, Vec<String>) {
        let check = |config: &Config| -> Vec<String> {
            let problems = validate(config);
            match &self.hook {
                Some(hook) if problems.is_empty() => hook.apply(config).err().into_iter().collect(),
                _ => problems,
            }
        };
        let (config, mut report) = match &self.startup_path {
            Some(path) => {
                let loaded = startup::load(path, self.factory.as_deref(), &check);
                (loaded.config, loaded.report)
            }
            None => (Config::default(), Vec::new()),
        };
        // A configuration from a file was applied by `check`; the default
        // one (no file, or nothing in it accepted) is applied here.
        if config == Config::default() {
            for reason in check(&config) {
                report.push(format!("% The default configuration was refused: {reason}"));
            }
        }
        let config = Arc::new(config);
        let shell = Arc::new_cyclic(|myself| Shell {
            trees: self.trees,
            published: Mutex::new(config.clone()),
            state: Mutex::new(State {
                running: config,
                generation: 0,
                next_commit_id: 1,
                history: VecDeque::new(),
                pending_confirm: None,
            }),
            hook: self.hook,
            notice: self.notice,
            startup_path: self.startup_path,
            history_depth: self.history_depth,
            confirm_minute: self.confirm_minute,
            version: self.version,
            about: self.about,
            login_notice: self.login_notice,
            started: Instant::now(),
            myself: myself.clone(),
        });
        (shell, report)
    }
}

/// Whether `candidate` may replace the running configuration: it was
/// started from the running configuration of `base_generation` and passes
/// the checks.
fn check(state: &State, candidate: &Config, base_generation: u64) -> Result<(), CliError> {
    if state.generation != base_generation {
        return Err(CliError::new(
            "% Commit refused: another session changed the running configuration since \
             this candidate was started; 'abort' and enter the changes again",
        ));
    }
    // The running configuration passed every check: only the elements
    // whose inputs changed are checked again.
    let problems = validate_change(&state.running, candidate);
    if !problems.is_empty() {
        return Err(CliError::new(format!(
            "% Commit failed, nothing was changed:\n{}",
            problems.join("\n")
        )));
    }
    Ok(())
}

impl Shell {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data
        // (every update is a single assignment), so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The running configuration.
    pub fn running(&self) -> Arc<Config> {
        let published = self.published.lock();
        published.unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The running configuration and its generation (for candidates).
    pub(crate) fn running_with_generation(&self) -> (Arc<Config>, u64) {
        let state = self.lock();
        (state.running.clone(), state.generation)
    }

    /// Checks a login against the `username` entries of the running
    /// configuration; returns the user's privilege level.
    pub fn authenticate(&self, user: &str, password: &str) -> Option<u8> {
        let running = self.running();
        let entry = running.users.get(user)?;
        let secret = entry.secret.as_ref()?;
        secret.verify(password).then_some(entry.privilege)
    }

    /// Whether some user may administer the box (privilege 15 with a
    /// password or a key): until one does, SSH lets nobody in.
    pub fn has_administrator(&self) -> bool {
        let running = self.running();
        let admin = |u: &&grammar::config::User| {
            u.privilege == 15 && (u.secret.is_some() || !u.ssh_keys.is_empty())
        };
        running.users.values().any(|u| admin(&u))
    }

    /// Checks a public key (its SSH wire blob) offered by `user` against the
    /// user's `ssh-key` entries; returns the user's privilege level.
    pub fn authorize_key(&self, user: &str, blob: &[u8]) -> Option<u8> {
        let running = self.running();
        let entry = running.users.get(user)?;
        let known = entry
            .ssh_keys
            .iter()
            .any(|k| k.blob().as_deref() == Some(blob));
        known.then_some(entry.privilege)
    }

    /// The commit history, newest first.
    pub fn history(&self) -> Vec<CommitRecord> {
        self.lock().history.iter().cloned().collect()
    }

    /// Whether a `commit confirmed` is waiting for its confirmation.
    pub fn confirmation_pending(&self) -> bool {
        self.lock().pending_confirm.is_some()
    }

    /// Validates `candidate` and makes it the running configuration, if
    /// the running configuration is still the one it was based on
    /// (`base_generation`) and the hook accepts it.
    pub fn commit(
        &self,
        candidate: Arc<Config>,
        base_generation: u64,
        by: &str,
        confirm_minutes: Option<u64>,
    ) -> Result<String, CliError> {
        let mut state = self.lock();
        check(&state, &candidate, base_generation)?;
        if *candidate == *state.running {
            return Ok(match (state.pending_confirm.as_mut(), confirm_minutes) {
                (Some(_), None) => {
                    state.pending_confirm = None;
                    "Commit confirmed.\n".to_string()
                }
                (Some(pending), Some(minutes)) => {
                    pending.deadline = self.arm_confirm_timer(minutes);
                    format!(
                        "Commit {} will now be rolled back in {minutes} minute(s) unless confirmed with 'commit'.\n",
                        pending.commit_id
                    )
                }
                (None, _) => "% No configuration changes to commit.\n".to_string(),
            });
        }
        let label = match confirm_minutes {
            Some(m) => format!("commit confirmed {m}"),
            None => "commit".to_string(),
        };
        let id = self.install(&mut state, candidate, by, label, None)?;
        let Some(minutes) = confirm_minutes else {
            state.pending_confirm = None;
            return Ok(String::new());
        };
        let previous = state
            .pending_confirm
            .take()
            .map(|p| p.previous)
            .or_else(|| state.history.front().map(|r| r.previous.clone()))
            .unwrap_or_default();
        state.pending_confirm = Some(PendingConfirm {
            commit_id: id,
            previous,
            deadline: self.arm_confirm_timer(minutes),
        });
        Ok(format!(
            "Commit {id} will be rolled back in {minutes} minute(s) unless confirmed with 'commit'.\n"
        ))
    }

    /// Commits the lines a `configure terminal` session typed since its
    /// last commit, through the same checks and hook as [`Shell::commit`].
    /// A session's commits make one entry of the history (`joins`: the id
    /// of its entry, while no other commit came after it), so a rollback
    /// undoes the session as a whole; they leave a pending `commit
    /// confirmed` pending. Returns the entry's id.
    pub fn commit_lines(
        &self,
        candidate: Arc<Config>,
        base_generation: u64,
        by: &str,
        joins: Option<u64>,
    ) -> Result<u64, CliError> {
        let mut state = self.lock();
        check(&state, &candidate, base_generation)?;
        let label = "configure terminal".to_string();
        self.install(&mut state, candidate, by, label, joins)
    }

    /// Hands `config` to the hook and, if accepted, makes it the running
    /// configuration and records the commit (in the newest entry of the
    /// history when its id is `joins`); returns the entry's id.
    fn install(
        &self,
        state: &mut State,
        config: Arc<Config>,
        by: &str,
        label: String,
        joins: Option<u64>,
    ) -> Result<u64, CliError> {
        if let Some(hook) = &self.hook {
            hook.apply(&config).map_err(|reason| {
                CliError::new(format!("% Commit refused by the system: {reason}"))
            })?;
        }
        *self.published.lock().unwrap_or_else(|p| p.into_inner()) = config.clone();
        let previous = std::mem::replace(&mut state.running, config);
        state.generation += 1;
        let id = match state.history.front_mut().filter(|e| Some(e.id) == joins) {
            Some(entry) => {
                entry.at = Instant::now();
                entry.id
            }
            None => {
                let id = state.next_commit_id;
                state.next_commit_id += 1;
                state.history.push_front(CommitRecord {
                    id,
                    at: Instant::now(),
                    by: by.to_string(),
                    label,
                    previous,
                });
                state.history.truncate(self.history_depth);
                id
            }
        };
        if let (Some(notice), Some(record)) = (&self.notice, state.history.front()) {
            notice(record);
        }
        Ok(id)
    }

    /// Starts a timer that reverts the pending commit when it is due;
    /// returns the deadline. (Timers made obsolete by a later deadline or a
    /// confirmation find nothing due and do nothing.)
    fn arm_confirm_timer(&self, minutes: u64) -> Instant {
        let after = self.confirm_minute * minutes.try_into().unwrap_or(u32::MAX);
        let deadline = Instant::now() + after;
        let shell = self.myself.clone();
        // Sleeps until the deadline itself: a timer that woke before it
        // would find nothing due and never look again.
        std::thread::spawn(move || {
            std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            if let Some(shell) = shell.upgrade() {
                shell.revert_if_due();
            }
        });
        deadline
    }

    /// Reverts the pending `commit confirmed` if its deadline has passed.
    /// Returns whether it reverted.
    pub fn revert_if_due(&self) -> bool {
        let mut state = self.lock();
        if !matches!(&state.pending_confirm, Some(p) if p.deadline <= Instant::now()) {
            return false;
        }
        let Some(pending) = state.pending_confirm.take() else {
            return false;
        };
        let label = format!("revert of unconfirmed commit {}", pending.commit_id);
        match self.install(&mut state, pending.previous, "system", label, None) {
            Ok(_) => true,
            Err(error) => {
                // No session is waiting for this answer: the console (the
                // process's standard error) is where an operator sees it.
                eprintln!(
                    "% Could not revert unconfirmed commit {}: {}",
                    pending.commit_id,
                    error.message.trim_start_matches("% ")
                );
                false
            }
        }
    }

    /// Returns to the configuration from before the last `count` commits,
    /// as a new commit.
    pub fn rollback(&self, count: usize, by: &str) -> Result<String, CliError> {
        let mut state = self.lock();
        let Some(record) = state.history.get(count.saturating_sub(1)) else {
            return Err(CliError::new(format!(
                "% Only {} commit(s) in the history",
                state.history.len()
            )));
        };
        let target = record.previous.clone();
        let problems = validate(&target);
        if !problems.is_empty() {
            return Err(CliError::new(format!(
                "% Rollback failed, nothing was changed:\n{}",
                problems.join("\n")
            )));
        }
        let id = self.install(&mut state, target, by, format!("rollback {count}"), None)?;
        state.pending_confirm = None;
        Ok(format!("Rolled back {count} commit(s) as commit {id}.\n"))
    }

    /// Saves the running configuration to the startup file.
    pub fn save_startup(&self) -> Result<String, CliError> {
        let path = self.startup_path.as_ref().ok_or_else(|| {
            CliError::new("% No startup-config file: start with --startup FILE to save")
        })?;
        let text = render(&self.running());
        startup::save(path, &text)
            .map_err(|e| CliError::new(format!("% Cannot write {}: {e}", path.display())))?;
        Ok(format!(
            "Building configuration...\n[OK] saved to {}\n",
            path.display()
        ))
    }

    /// The text of the startup file.
    pub fn startup_text(&self) -> Result<String, CliError> {
        let path = self
            .startup_path
            .as_ref()
            .ok_or_else(|| CliError::new("% No startup-config file"))?;
        std::fs::read_to_string(path)
            .map_err(|e| CliError::new(format!("% Cannot read {}: {e}", path.display())))
    }
}
