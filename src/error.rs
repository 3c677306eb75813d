//! The errors a user sees. Every failure that reaches `main` is a [`HookError`]:
//! one of three classes a user must tell apart at a glance (denied by policy,
//! invalid request, failed), the volume it concerns, what went wrong and what
//! to do about it.

use std::fmt;

/// The class of an error; it decides the exit code and the wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// The system failed (mount, I/O, missing bundle, bad config file): exit 1.
    Failed,
    /// The user's request is malformed (annotation, state JSON, usage): exit 2.
    Invalid,
    /// The admin's policy does not allow the request: exit 3.
    Denied,
}

impl Class {
    pub fn exit_code(self) -> u8 {
        match self {
            Class::Failed => 1,
            Class::Invalid => 2,
            Class::Denied => 3,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Class::Failed => "failed",
            Class::Invalid => "invalid",
            Class::Denied => "denied by policy",
        }
    }
}

/// A user-facing error: `<subject> <verb>: <why> (<hint>)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookError {
    pub class: Class,
    /// What the error is about, e.g. `volume "myapp:/myapp"` or `state`.
    pub subject: String,
    /// Why, e.g. `host path /etc is not under allowed_host_paths`.
    pub why: String,
    /// What to do, if there is something the user can do.
    pub hint: Option<String>,
}

impl HookError {
    pub fn new(class: Class, subject: impl Into<String>, why: impl Into<String>) -> Self {
        HookError {
            class,
            subject: subject.into(),
            why: why.into(),
            hint: None,
        }
    }

    pub fn failed(subject: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(Class::Failed, subject, why)
    }

    pub fn invalid(subject: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(Class::Invalid, subject, why)
    }

    pub fn denied(subject: impl Into<String>, why: impl Into<String>) -> Self {
        Self::new(Class::Denied, subject, why)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Prefix the subject, e.g. with the volume spec the error concerns.
    pub fn about(mut self, subject: impl Into<String>) -> Self {
        self.subject = subject.into();
        self
    }

    pub fn exit_code(&self) -> u8 {
        self.class.exit_code()
    }
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            NoControl(&self.subject),
            self.class.verb(),
            NoControl(&self.why)
        )?;
        if let Some(hint) = &self.hint {
            write!(f, " ({})", NoControl(hint))?;
        }
        Ok(())
    }
}

/// Text with its control characters escaped: whatever a message embeds
/// (a path, a TOML or JSON parser's message), the error stays one printable
/// line on a terminal and in syslog.
struct NoControl<'a>(&'a str);

impl fmt::Display for NoControl<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for HookError {}

/// Text from an image, a volume or a request as one printable line: control
/// characters (ESC, BEL, newline, …) escaped, so that nothing a user or an
/// image author wrote can drive the admin's terminal. For reports.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(char::is_control) {
        NoControl(s).to_string().into()
    } else {
        s.into()
    }
}

/// The subject text for a volume spec, quoted as the user wrote it.
pub fn volume_subject(spec: &str) -> String {
    format!("volume {}", quote(spec))
}

/// Quote untrusted text for an error line: printable ASCII stays, anything
/// else (control characters, NUL, non-ASCII) is escaped, and it is cut at 200
/// characters so a huge annotation cannot flood the log.
pub fn quote(s: &str) -> String {
    const MAX: usize = 200;
    let mut out = String::with_capacity(s.len().min(MAX) + 2);
    out.push('"');
    for (n, c) in s.chars().enumerate() {
        if n == MAX {
            out.push_str("...");
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => out.push_str(&c.escape_default().to_string()),
        }
    }
    out.push('"');
    out
}

/// The short container id every error and log line names (its first 12
/// characters).
pub fn short_id(id: &str) -> &str {
    match id.char_indices().nth(12) {
        Some((i, _)) => &id[..i],
        None => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denial_is_worded_as_a_denial() {
        let e = HookError::denied("volume \"/etc:/x\"", "host path /etc is not allowed")
            .hint("ask the admin");
        assert_eq!(
            e.to_string(),
            "volume \"/etc:/x\" denied by policy: host path /etc is not allowed (ask the admin)"
        );
        assert_eq!(e.exit_code(), 3);
        let f = HookError::failed("volume \"a:/b\"", "open_tree: EPERM");
        assert!(!f.to_string().contains("denied"));
        assert_eq!(f.exit_code(), 1);
        assert_eq!(HookError::invalid("x", "y").exit_code(), 2);
    }

    #[test]
    fn display_escapes_control_characters() {
        let e = HookError::failed("config", "unknown field `\u{7}`\nforged").hint("a\u{1b}b");
        assert_eq!(
            e.to_string(),
            "config failed: unknown field `\\u{7}`\\nforged (a\\u{1b}b)"
        );
    }

    #[test]
    fn printable_escapes_terminal_controls() {
        assert_eq!(printable("/data/app"), "/data/app");
        assert_eq!(
            printable("a\u{1b}[31mred\u{7}\nx"),
            "a\\u{1b}[31mred\\u{7}\\nx"
        );
        assert!(!printable("\u{1b}]0;title\u{7}").contains('\u{1b}'));
    }

    #[test]
    fn quote_escapes_and_truncates() {
        assert_eq!(quote("a\0b\n"), "\"a\\u{0}b\\n\"");
        let long = "x".repeat(1000);
        let q = quote(&long);
        assert!(q.len() < 210, "{}", q.len());
        assert!(q.ends_with("...\""));
    }
}
