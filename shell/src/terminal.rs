//! The CLI on a terminal with rustyline: line editing, history, Tab
//! completion, `?` help that keeps the line, Ctrl-Z for `end`, and long
//! output paged when standard output is the terminal too.

use crate::engine::Shell;
use crate::interrupt::{is_stop_key, Interrupt};
use crate::pager::{page, Key, Screen};
use crate::session::{complete_in, Mode, Reply, Session};
use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, SpecialCharacterIndices};
use rustyline::completion::Completer;
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{
    Cmd, CompletionType, ConditionalEventHandler, Config, Context, Editor, Event, EventContext,
    EventHandler, Helper, KeyEvent, Modifiers, RepeatCount,
};
use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Completion for the session's current mode.
struct CliHelper {
    shell: Arc<Shell>,
    mode: Mode,
}

impl Completer for CliHelper {
    type Candidate = String;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let (start, mut words) =
            complete_in(&self.shell, &self.mode, line.get(..pos).unwrap_or(line));
        if let [word] = words.as_mut_slice() {
            word.push(' ');
        }
        Ok((start, words))
    }
}

impl Hinter for CliHelper {
    type Hint = String;
}
impl Highlighter for CliHelper {}
impl Validator for CliHelper {}
impl Helper for CliHelper {}

/// Accepts the line at once and raises a flag, so the loop knows why the
/// line ended (`?` help or Ctrl-Z) rather than Enter.
struct AcceptWithFlag(Arc<AtomicBool>);

impl ConditionalEventHandler for AcceptWithFlag {
    fn handle(&self, _: &Event, _: RepeatCount, _: bool, _: &EventContext<'_>) -> Option<Cmd> {
        self.0.store(true, Ordering::SeqCst);
        Some(Cmd::AcceptLine)
    }
}

/// Runs `session` on the controlling terminal until `exit` or Ctrl-D.
pub fn run_terminal(session: &mut Session) -> rustyline::Result<()> {
    let config = Config::builder()
        .completion_type(CompletionType::List)
        .auto_add_history(false)
        .build();
    let mut editor: Editor<CliHelper, DefaultHistory> = Editor::with_config(config)?;
    editor.set_helper(Some(CliHelper {
        shell: session.shell().clone(),
        mode: session.mode().clone(),
    }));
    let help_wanted = Arc::new(AtomicBool::new(false));
    let end_wanted = Arc::new(AtomicBool::new(false));
    editor.bind_sequence(
        KeyEvent::new('?', Modifiers::NONE),
        EventHandler::Conditional(Box::new(AcceptWithFlag(help_wanted.clone()))),
    );
    editor.bind_sequence(
        KeyEvent::ctrl('Z'),
        EventHandler::Conditional(Box::new(AcceptWithFlag(end_wanted.clone()))),
    );
    if let Some(banner) = session.banner() {
        println!("{banner}");
    }
    let mut pending = String::new();
    loop {
        if let Some(helper) = editor.helper_mut() {
            helper.mode = session.mode().clone();
        }
        let prompt = session.prompt();
        let line = match editor.readline_with_initial(&prompt, (&pending, "")) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                pending.clear();
                continue;
            }
            Err(ReadlineError::Eof) => return Ok(()),
            Err(e) => return Err(e),
        };
        pending.clear();
        if help_wanted.swap(false, Ordering::SeqCst) {
            match session.help(&line) {
                Ok(help) => print!("{help}"),
                Err(error) => print!("{}", error.render(prompt.chars().count())),
            }
            pending = line;
            continue;
        }
        let reply = if end_wanted.swap(false, Ordering::SeqCst) {
            session.ctrl_z()
        } else {
            if !line.trim().is_empty() {
                let _ = editor.add_history_entry(line.as_str());
            }
            execute_watching(session, &line)
        };
        let length = match io::stdout().is_terminal() {
            true => session.page_length().unwrap_or_else(|| rows(&mut editor)),
            false => 0,
        };
        if show(&prompt, reply, length)? {
            return Ok(());
        }
    }
}

/// Runs `line`, taking Ctrl-C from the terminal while a stoppable command
/// runs: the terminal leaves canonical mode and ISIG meanwhile, so Ctrl-C
/// is a key for the command, not a signal ending the process.
fn execute_watching(session: &mut Session, line: &str) -> Reply {
    let interrupt = session.interrupt();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| watch_ctrl_c(&interrupt, &done));
        let reply = session.execute(line);
        done.store(true, Ordering::SeqCst);
        reply
    })
}

/// Until `done`: while a stoppable command runs, prints its output as it
/// comes and reads keys (each read waits at most a tenth of a second),
/// raising `interrupt` on Ctrl-C. The terminal's settings are back before
/// it returns, so rustyline finds them as it left them.
fn watch_ctrl_c(interrupt: &Interrupt, done: &AtomicBool) {
    const IDLE: std::time::Duration = std::time::Duration::from_millis(20);
    while !done.load(Ordering::SeqCst) {
        if !interrupt.is_running() {
            std::thread::sleep(IDLE);
            continue;
        }
        let stdin = io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return;
        };
        let mut raw = saved.clone();
        raw.local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG);
        raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 0;
        raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 1;
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return;
        }
        while interrupt.is_running() && !done.load(Ordering::SeqCst) {
            let shown = interrupt.take_progress();
            if !shown.is_empty() {
                let mut stdout = io::stdout();
                let _ = stdout.write_all(shown.as_bytes());
                let _ = stdout.flush();
            }
            let mut byte = [0u8];
            if nix::unistd::read(&stdin, &mut byte) == Ok(1) && is_stop_key(byte[0]) {
                interrupt.raise();
            }
        }
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    }
}

/// The terminal's height, IOS's default screen; 0 (no paging) where it
/// is not known, as on a serial console, which says 0 rows.
fn rows(editor: &mut Editor<CliHelper, DefaultHistory>) -> usize {
    match editor.dimensions() {
        Some((_, rows)) if rows < u16::MAX => rows.into(),
        _ => 0,
    }
}

/// Prints a reply, `length` lines a screen; true when the session ended.
fn show(prompt: &str, reply: Reply, length: usize) -> io::Result<bool> {
    page(&reply.output, length, &mut Console)?;
    if let Some(error) = reply.error {
        print!("{}", error.render(prompt.chars().count()));
    }
    Ok(reply.quit)
}

/// The controlling terminal, between two lines rustyline reads.
struct Console;

impl Screen for Console {
    fn write(&mut self, text: &str) -> io::Result<()> {
        io::stdout().write_all(text.as_bytes())
    }

    /// One key, without Enter and without echo: the terminal leaves
    /// canonical mode for the read (Ctrl-C arrives as a key, not a signal).
    fn key(&mut self) -> io::Result<Key> {
        io::stdout().flush()?;
        let stdin = io::stdin();
        let saved = tcgetattr(&stdin)?;
        let mut raw = saved.clone();
        raw.local_flags
            .remove(LocalFlags::ICANON | LocalFlags::ECHO | LocalFlags::ISIG);
        raw.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
        raw.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
        tcsetattr(&stdin, SetArg::TCSANOW, &raw)?;
        // Straight from the descriptor: std's buffered stdin would keep
        // type-ahead from rustyline, which reads the descriptor itself.
        let mut byte = [0u8];
        let read = nix::unistd::read(&stdin, &mut byte);
        tcsetattr(&stdin, SetArg::TCSANOW, &saved)?;
        Ok(match read? {
            0 => Key::Stop,
            _ => Key::of(byte[0]),
        })
    }
}
