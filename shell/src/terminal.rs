//! The CLI on a terminal with rustyline: line editing, history, Tab
//! completion, `?` help that keeps the line, Ctrl-Z for `end`.

use crate::engine::Shell;
use crate::session::{complete_in, Mode, Reply, Session};
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
            session.execute(&line)
        };
        if show(&prompt, reply) {
            return Ok(());
        }
    }
}

/// Prints a reply; true when the session ended.
fn show(prompt: &str, reply: Reply) -> bool {
    print!("{}", reply.output);
    if let Some(error) = reply.error {
        print!("{}", error.render(prompt.chars().count()));
    }
    reply.quit
}
