//! Everything `beckon` writes to stdout: human lines (coloured on a terminal),
//! or one JSON object per line with `--json`, and the rewritable status line
//! (the countdown, the prompt) that only a terminal gets.

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};
use beckon::protocol::InviteeState;
use serde_json::Value;

/// `event!(out, "name", "key" => value, ...)`: one `--json` line. Each value
/// is anything `serde_json::Value` converts from.
macro_rules! event {
    ($out:expr, $name:literal $(, $key:literal => $value:expr)* $(,)?) => {
        $out.event($name, &[$(($key, serde_json::Value::from($value))),*])
    };
}
pub(crate) use event;

pub struct Output {
    json: bool,
    /// stdout is a terminal: a status line may be drawn and rewritten.
    tty: bool,
    colour: bool,
    /// A status line (no newline yet) is on the screen.
    status_shown: bool,
    /// A prompt waits for its answer on the last line: lines printed
    /// meanwhile go above it.
    prompt: Option<String>,
}

impl Output {
    pub fn new(json: bool) -> Output {
        let tty = std::io::stdout().is_terminal();
        Output {
            json,
            tty,
            colour: tty && !json && colour_allowed(),
            status_shown: false,
            prompt: None,
        }
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    /// A status line can be drawn: human output on a terminal.
    pub fn is_live(&self) -> bool {
        self.tty && !self.json
    }

    /// `{"event": name, key: value, ...}` on a line of its own (only with
    /// `--json`), keys in the order given: serde_json's maps would sort
    /// them, and people and scripts look for `event` first.
    pub fn event(&mut self, name: &str, fields: &[(&str, Value)]) {
        if !self.json {
            return;
        }
        let mut line = format!("{{\"event\":{}", Value::from(name));
        for (key, value) in fields {
            line.push_str(&format!(",{}:{value}", Value::from(*key)));
        }
        line.push_str("}\n");
        self.write(&line);
    }

    /// One human line (nothing with `--json`).
    pub fn line(&mut self, text: &str) {
        if !self.json {
            self.clear_status();
            match self.prompt.clone() {
                Some(prompt) => self.write(&format!("\r\x1b[K{text}\n{prompt}")),
                None => self.write(&format!("{text}\n")),
            }
        }
    }

    /// Replaces the status line (terminal and human output only). It stays
    /// under the lines printed after it.
    pub fn status(&mut self, text: &str) {
        if self.is_live() {
            self.write(&format!("\r\x1b[K{text}"));
            self.status_shown = true;
        }
    }

    pub fn clear_status(&mut self) {
        if self.status_shown {
            self.status_shown = false;
            self.write("\r\x1b[K");
        }
    }

    /// A prompt (human output on a terminal): the last line, left open for
    /// the answer. The terminal's echo of the answer ends the line.
    pub fn prompt(&mut self, text: &str) {
        if self.is_live() {
            self.clear_status();
            self.clear_prompt();
            self.write(text);
            self.prompt = Some(text.to_owned());
        }
    }

    /// The answer to the prompt was typed (and its Enter ended the line).
    pub fn prompt_answered(&mut self) {
        self.prompt = None;
    }

    /// Takes a prompt that is no longer current off the screen.
    pub fn clear_prompt(&mut self) {
        if self.prompt.take().is_some() {
            self.write("\r\x1b[K");
        }
    }

    /// After Ctrl-C: the terminal echoed "^C" on the last line; wipe that
    /// line (a status or a prompt that no longer matters) for what follows.
    pub fn interrupted(&mut self) {
        if self.is_live() {
            self.status_shown = false;
            self.prompt = None;
            self.write("\r\x1b[K");
        }
    }

    fn write(&mut self, text: &str) {
        let mut out = std::io::stdout().lock();
        // A closed stdout (a pipe whose reader left) must not stop the
        // command from answering or cancelling: what it writes is lost.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }

    pub fn bold(&self, text: &str) -> String {
        self.paint(Style::new().bold(), text)
    }

    pub fn dim(&self, text: &str) -> String {
        self.paint(Style::new().dimmed(), text)
    }

    /// The state's name, coloured by what it means for the inviter.
    pub fn state(&self, state: InviteeState) -> String {
        let colour = match state {
            InviteeState::Accepted => AnsiColor::Green,
            InviteeState::Rejected => AnsiColor::Red,
            InviteeState::Cancelled | InviteeState::Timeout => AnsiColor::Yellow,
            InviteeState::Offline => AnsiColor::Magenta,
            InviteeState::Inviting | InviteeState::Received => AnsiColor::Cyan,
        };
        self.paint(
            Style::new().fg_color(Some(colour.into())).bold(),
            state.name(),
        )
    }

    pub fn good(&self, text: &str) -> String {
        self.paint(Style::new().fg_color(Some(AnsiColor::Green.into())), text)
    }

    pub fn bad(&self, text: &str) -> String {
        self.paint(Style::new().fg_color(Some(AnsiColor::Red.into())), text)
    }

    pub fn warn(&self, text: &str) -> String {
        self.paint(Style::new().fg_color(Some(AnsiColor::Yellow.into())), text)
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.colour {
            format!("{}{text}{}", style.render(), style.render_reset())
        } else {
            text.to_owned()
        }
    }
}

/// https://no-color.org: a NO_COLOR that is set and not empty turns colours
/// off.
fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

/// An error for people on stderr, and for scripts as an `error` event.
pub fn report_error(out: &mut Output, failure: &crate::failure::Failure) {
    out.clear_status();
    event!(
        out,
        "error",
        "code" => failure.code,
        "message" => failure.message.as_str(),
        "exit_code" => failure.exit as u8,
    );
    eprintln!("beckon: {}", failure.message);
}

/// A problem that does not end the command (an answer that came too late, a
/// dropped connection being restored): said on stderr and as an event.
pub fn report_warning(out: &mut Output, code: &str, message: &str) {
    out.clear_status();
    event!(
        out,
        "warning",
        "code" => code,
        "message" => message,
    );
    if !out.is_json() {
        eprintln!("beckon: {message}");
    }
}

/// Text for a human line: quoted, so empty data and spaces stay visible.
pub fn quoted(text: &str) -> String {
    format!("{text:?}")
}
