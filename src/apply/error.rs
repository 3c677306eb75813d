//! Errors of the apply layer. They keep the errno of the system call that
//! failed and know nothing of the volume: the command layer, which knows
//! which volume it was, turns each one into a [`HookError`] exactly once.

use std::io;

use crate::error::{Class, HookError};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// A system call on a named object failed: `op` names both
    /// (`fstat /srv/data`), `source` keeps the errno.
    #[error("{op}: {source}")]
    Sys {
        op: String,
        #[source]
        source: io::Error,
        hint: Option<String>,
    },
    /// The volume, its source or the image is not usable as it stands.
    #[error("{why}")]
    Unusable { why: String, hint: Option<String> },
    /// The request cannot be carried out as asked (U on a system path).
    #[error("{why}")]
    Invalid { why: String, hint: Option<String> },
    /// The admin's policy refuses what the opened object turned out to be.
    #[error("{why}")]
    Denied { why: String, hint: Option<String> },
}

impl ApplyError {
    pub fn sys(op: impl Into<String>, source: impl Into<io::Error>) -> Self {
        ApplyError::Sys {
            op: op.into(),
            source: source.into(),
            hint: None,
        }
    }

    pub fn unusable(why: impl Into<String>) -> Self {
        ApplyError::Unusable {
            why: why.into(),
            hint: None,
        }
    }

    pub fn invalid(why: impl Into<String>) -> Self {
        ApplyError::Invalid {
            why: why.into(),
            hint: None,
        }
    }

    pub fn denied(why: impl Into<String>) -> Self {
        ApplyError::Denied {
            why: why.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, text: impl Into<String>) -> Self {
        match &mut self {
            ApplyError::Sys { hint, .. }
            | ApplyError::Unusable { hint, .. }
            | ApplyError::Invalid { hint, .. }
            | ApplyError::Denied { hint, .. } => *hint = Some(text.into()),
        }
        self
    }

    /// The class the user sees: denied by policy, invalid, or failed.
    pub fn class(&self) -> Class {
        match self {
            ApplyError::Sys { .. } | ApplyError::Unusable { .. } => Class::Failed,
            ApplyError::Invalid { .. } => Class::Invalid,
            ApplyError::Denied { .. } => Class::Denied,
        }
    }

    /// What to do about it, if the user can do something.
    pub fn hint_text(&self) -> Option<&str> {
        match self {
            ApplyError::Sys { hint, .. }
            | ApplyError::Unusable { hint, .. }
            | ApplyError::Invalid { hint, .. }
            | ApplyError::Denied { hint, .. } => hint.as_deref(),
        }
    }

    /// The errno of the failed system call, if one failed.
    pub fn errno(&self) -> Option<i32> {
        match self {
            ApplyError::Sys { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    /// The user-facing error, about `subject` (the volume, or the container).
    pub fn into_hook(self, subject: impl Into<String>) -> HookError {
        let why = self.to_string();
        let (class, hint) = match self {
            ApplyError::Sys { hint, .. } | ApplyError::Unusable { hint, .. } => {
                (Class::Failed, hint)
            }
            ApplyError::Invalid { hint, .. } => (Class::Invalid, hint),
            ApplyError::Denied { hint, .. } => (Class::Denied, hint),
        };
        let e = HookError::new(class, subject, why);
        match hint {
            Some(h) => e.hint(h),
            None => e,
        }
    }
}

/// An apply error with the subject it concerns: `volume "SPEC"`, or the
/// container as a whole.
#[derive(Debug, thiserror::Error)]
#[error("{subject}: {error}")]
pub struct AttachError {
    pub subject: String,
    pub error: ApplyError,
}

impl From<AttachError> for HookError {
    fn from(e: AttachError) -> HookError {
        e.error.into_hook(e.subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_kept_and_the_line_is_built_once() {
        let e = ApplyError::sys("fstat /srv/x", rustix::io::Errno::NOENT).hint("create it");
        assert_eq!(e.errno(), Some(libc::ENOENT));
        let h = e.into_hook("volume \"x:/y\"");
        assert_eq!(h.class, Class::Failed);
        assert!(
            h.to_string()
                .starts_with("volume \"x:/y\" failed: fstat /srv/x: No such file or directory"),
            "{h}"
        );
        assert_eq!(h.hint.as_deref(), Some("create it"));
        let d = ApplyError::denied("outside the policy").into_hook("volume \"a:/b\"");
        assert_eq!(d.exit_code(), 3);
        assert_eq!(ApplyError::unusable("x").errno(), None);
    }
}
