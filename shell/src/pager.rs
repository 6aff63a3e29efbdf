//! `--More--` paging of long output, as IOS does after `terminal length N`:
//! N - 1 lines, then `--More--`; Space shows the next screen, Enter the
//! next line, any other key (`q`, Ctrl-C) drops the rest. Front ends page
//! only where a person reads a terminal, never exec, script or piped
//! output; each gives a [`Screen`] to write to and read keys from.

use std::io;

/// What a key pressed at `--More--` asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Screen,
    Line,
    Stop,
}

impl Key {
    pub fn of(byte: u8) -> Key {
        match byte {
            b' ' => Key::Screen,
            b'\r' | b'\n' => Key::Line,
            _ => Key::Stop,
        }
    }
}

/// The prompt between screens.
pub const MORE: &str = " --More-- ";
/// Wipes the prompt off its line, so the output reads on as if unbroken.
const ERASE: &str = "\r          \r";

/// A terminal: where output goes, and where keys come from.
pub trait Screen {
    fn write(&mut self, text: &str) -> io::Result<()>;
    /// Waits for a key (end of input is [`Key::Stop`]); what was written
    /// must be on screen first.
    fn key(&mut self) -> io::Result<Key>;
}

/// Writes `text` to `screen`, `length` lines a screen (0: all at once).
pub fn page(text: &str, length: usize, screen: &mut dyn Screen) -> io::Result<()> {
    if length == 0 {
        return screen.write(text);
    }
    let full = length.saturating_sub(1).max(1);
    let mut lines = text.split_inclusive('\n').peekable();
    let mut room = full;
    loop {
        for line in lines.by_ref().take(room) {
            screen.write(line)?;
        }
        if lines.peek().is_none() {
            return Ok(());
        }
        screen.write(MORE)?;
        let key = screen.key()?;
        screen.write(ERASE)?;
        room = match key {
            Key::Screen => full,
            Key::Line => 1,
            Key::Stop => return Ok(()),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what is written; answers keys from a list (then Stop).
    struct Recorder {
        written: String,
        keys: Vec<Key>,
    }

    impl Screen for Recorder {
        fn write(&mut self, text: &str) -> io::Result<()> {
            self.written.push_str(text);
            Ok(())
        }
        fn key(&mut self) -> io::Result<Key> {
            Ok(match self.keys.is_empty() {
                true => Key::Stop,
                false => self.keys.remove(0),
            })
        }
    }

    fn paged(text: &str, length: usize, keys: &[Key]) -> String {
        let mut screen = Recorder {
            written: String::new(),
            keys: keys.to_vec(),
        };
        page(text, length, &mut screen).unwrap();
        screen.written.replace(MORE, "<More>").replace(ERASE, "")
    }

    const TEN: &str = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";

    #[test]
    fn space_shows_a_screen_enter_a_line_and_other_keys_stop() {
        assert_eq!(
            paged(TEN, 4, &[Key::Line, Key::Screen]),
            "1\n2\n3\n<More>4\n<More>5\n6\n7\n<More>"
        );
        assert_eq!(
            paged(TEN, 4, &[Key::Screen; 3]),
            "1\n2\n3\n<More>4\n5\n6\n<More>7\n8\n9\n<More>10\n"
        );
        assert_eq!(Key::of(b'q'), Key::Stop);
        assert_eq!(Key::of(0x03), Key::Stop);
        assert_eq!(Key::of(b'\r'), Key::Line);
    }

    #[test]
    fn output_that_fits_and_length_zero_never_pause() {
        assert_eq!(paged(TEN, 0, &[]), TEN);
        assert_eq!(paged(TEN, 11, &[]), TEN);
        assert_eq!(paged("1\n2\n3", 4, &[]), "1\n2\n3");
        assert_eq!(paged("", 4, &[]), "");
    }

    #[test]
    fn a_one_line_screen_still_moves_on() {
        assert_eq!(
            paged("a\nb\nc\n", 1, &[Key::Screen; 2]),
            "a\n<More>b\n<More>c\n"
        );
    }
}
