//! What the host says about SELinux: whether it is enabled, the policy's
//! container file context, and its booleans. Read once by the command layer
//! and handed to the plan as data ([`SelinuxHost`]), so the plan reads no
//! file.

use std::path::{Path, PathBuf};

use crate::error::HookError;

/// Where the kernel's SELinux file system is mounted when SELinux is enabled.
pub const SELINUXFS: &str = "/sys/fs/selinux";
/// The SELinux configuration naming the loaded policy (`SELINUXTYPE=`).
pub const SELINUX_CONFIG: &str = "/etc/selinux/config";
/// libselinux's default policy name when the config names none.
const DEFAULT_POLICY_TYPE: &str = "targeted";
const MAX_CONTEXT: usize = 4096;

/// A context split as `user:role:type[:level]`; the level keeps its own
/// colons (`s0:c1,c2`, `s0-s0:c0.c1023`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub user: String,
    pub role: String,
    pub kind: String,
    pub level: Option<String>,
}

impl Context {
    pub fn parse(s: &str) -> Option<Context> {
        if s.is_empty()
            || s.len() > MAX_CONTEXT
            || s.bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || b == b'"')
        {
            return None;
        }
        let mut it = s.splitn(4, ':');
        let (user, role, kind) = (it.next()?, it.next()?, it.next()?);
        let level = it.next();
        if [user, role, kind].iter().any(|p| p.is_empty()) || level == Some("") {
            return None;
        }
        Some(Context {
            user: user.into(),
            role: role.into(),
            kind: kind.into(),
            level: level.map(str::to_string),
        })
    }

    /// The same user:role:type with another level (none on a non-MLS policy).
    pub fn with_level(&self, level: Option<&str>) -> Context {
        Context {
            level: level.map(str::to_string),
            ..self.clone()
        }
    }
}

impl std::fmt::Display for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.user, self.role, self.kind)?;
        if let Some(l) = &self.level {
            write!(f, ":{l}")?;
        }
        Ok(())
    }
}

/// The host's SELinux facts a plan needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelinuxHost {
    /// `Err(reason)` when SELinux is disabled or absent on this host.
    pub enabled: Result<(), String>,
    /// The policy's container file context (lxc_contexts `file`), used when
    /// a bundle names no `linux.mountLabel`; or why it cannot be had.
    pub file_context: Result<String, HookError>,
}

impl SelinuxHost {
    /// Read the facts. The policy's file context only when SELinux is
    /// enabled and `need_file_context` (a bundle without a mountLabel).
    pub fn read(need_file_context: bool) -> SelinuxHost {
        let enabled = selinux_enabled();
        let file_context = if enabled.is_ok() && need_file_context {
            lxc_file_context()
        } else {
            Err(HookError::failed(
                "selinux",
                "the policy's lxc_contexts was not read",
            ))
        };
        SelinuxHost {
            enabled,
            file_context,
        }
    }

    /// A host with SELinux off, for callers that know it needs nothing.
    pub fn disabled(reason: &str) -> SelinuxHost {
        SelinuxHost {
            enabled: Err(reason.to_string()),
            file_context: Err(HookError::failed("selinux", reason.to_string())),
        }
    }
}

/// `Err(reason)` when SELinux is disabled or absent on this host: no
/// selinuxfs at /sys/fs/selinux (not built in, not the active LSM, or
/// `selinux=0`).
pub fn selinux_enabled() -> Result<(), String> {
    let enforce = Path::new(SELINUXFS).join("enforce");
    match std::fs::symlink_metadata(&enforce) {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "SELinux is disabled on this host ({}: {e})",
            enforce.display()
        )),
    }
}

/// The policy's container file context: `file` in
/// `/etc/selinux/<SELINUXTYPE>/contexts/lxc_contexts` (the file libselinux's
/// `selinux_lxc_contexts_path()` names).
pub fn lxc_file_context() -> Result<String, HookError> {
    let config = std::fs::read_to_string(SELINUX_CONFIG).unwrap_or_default();
    let policy = config_value(&config, "SELINUXTYPE").unwrap_or(DEFAULT_POLICY_TYPE.into());
    let path = PathBuf::from("/etc/selinux")
        .join(&policy)
        .join("contexts/lxc_contexts");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        HookError::failed(
            "selinux",
            format!(
                "the bundle has no linux.mountLabel and the policy's lxc_contexts {} cannot be read: {e}",
                path.display()
            ),
        )
        .hint("set linux.mountLabel in the bundle, or install a policy with container support")
    })?;
    let ctx = config_value(&text, "file").ok_or_else(|| {
        HookError::failed(
            "selinux",
            format!(
                "the bundle has no linux.mountLabel and {} has no `file` entry",
                path.display()
            ),
        )
        .hint("set linux.mountLabel in the bundle")
    })?;
    Context::parse(&ctx).map(|c| c.to_string()).ok_or_else(|| {
        HookError::failed(
            "selinux",
            format!("{}: `file` = {ctx:?} is not a context", path.display()),
        )
    })
}

/// `key = value` / `KEY=value` lines; `#` comments; optional double quotes.
fn config_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().trim_matches('"').trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The value of an SELinux boolean (`/sys/fs/selinux/booleans/NAME`), if the
/// policy has it.
pub fn selinux_boolean(name: &str) -> Option<bool> {
    let s = std::fs::read_to_string(format!("/sys/fs/selinux/booleans/{name}")).ok()?;
    Some(s.trim_start().starts_with('1'))
}

/// A sentence about the policy booleans that let confined containers use
/// NFS files that carry the default `nfs_t` label.
pub fn boolean_note() -> String {
    let state = |b: &str| match selinux_boolean(b) {
        Some(true) => format!("{b} is on"),
        Some(false) => format!("{b} is off"),
        None => format!("{b} is not in this policy"),
    };
    format!(
        "without z/Z the files keep the label nfs_t, which confined containers may use only when the SELinux boolean container_use_nfs (virt_use_nfs in older policies) is on ({}, {}); add :z or :Z, or `setsebool -P container_use_nfs 1`",
        state("container_use_nfs"),
        state("virt_use_nfs")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_parse_with_levels_and_ranges() {
        let c = Context::parse("u:r:t:s0-s0:c0.c1023").unwrap();
        assert_eq!(c.level.as_deref(), Some("s0-s0:c0.c1023"));
        assert_eq!(c.to_string(), "u:r:t:s0-s0:c0.c1023");
        assert_eq!(Context::parse("u:r:t").unwrap().level, None);
        for bad in ["", "u:r", "u::t:s0", "u:r:t:", "u:r:t:s0 x", "u:r:t:s0\n"] {
            assert!(Context::parse(bad).is_none(), "{bad:?}");
        }
    }

    const LXC: &str = "system_u:object_r:container_file_t:s0";

    #[test]
    fn lxc_contexts_syntax() {
        let text = "# comment\nprocess = \"system_u:system_r:container_t:s0\"\nfile = \"system_u:object_r:container_file_t:s0\"\nro_file=\"x:y:z:s0\"\n";
        assert_eq!(config_value(text, "file").as_deref(), Some(LXC));
        assert_eq!(config_value(text, "ro_file").as_deref(), Some("x:y:z:s0"));
        assert_eq!(
            config_value("SELINUXTYPE=default\n", "SELINUXTYPE").as_deref(),
            Some("default")
        );
        assert_eq!(config_value("#file = a:b:c\n", "file"), None);
    }
}
