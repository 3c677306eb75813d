//! SELinux labels for volumes (`z` / `Z`).
//!
//! - [`target_context`] decides the file context a volume gets: `Z` (private)
//!   is the bundle's `linux.mountLabel`; `z` (shared) is the same
//!   user:role:type at level `s0` (no categories, so every container may use
//!   it). Without a mountLabel (a hand-written runc bundle) the policy's
//!   container file context (`file` in lxc_contexts) is used, never a guess.
//!   With SELinux disabled it is `None`: z/Z do nothing (said in the debug log).
//! - [`relabel`] applies it: a parallel walk ([`crate::walk`]) that never
//!   follows a symlink, never enters another mount, and writes
//!   `security.selinux` only on entries that carry another label.
//! - Restarts are O(1): after a completed walk the volume root carries the
//!   marker [`MARKER_XATTR`] = the target context. With
//!   `relabel = "on-change"`, a root that carries the target label and the
//!   marker is not walked. The marker is removed before a walk starts and set
//!   only after it finished, so an interrupted walk is redone next time.
//!   Trade-off: files added on the host behind the hook's back (not through a
//!   container) keep their labels; `relabel = "always"` walks every start.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use log::{debug, info, warn};
use rustix::fs::XattrFlags;

use crate::annotations::Relabel;
use crate::bundle::Bundle;
use crate::config::RelabelPolicy;
use crate::error::HookError;
use crate::walk;

/// The xattr holding an inode's SELinux context.
pub const SELINUX_XATTR: &str = "security.selinux";
/// On the volume root: the context the last *completed* relabel applied.
pub const MARKER_XATTR: &str = "trusted.oci-volume-hook.relabel";
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
    fn with_level(&self, level: Option<&str>) -> Context {
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

/// The file context a volume with `mode` gets for this bundle; `None` when
/// SELinux is disabled (then z/Z do nothing). Public for NFS `context=`
/// mounts, which must carry the same context a relabel would give.
pub fn target_context(bundle: &Bundle, mode: Relabel) -> Result<Option<String>, HookError> {
    if let Err(why) = selinux_enabled() {
        debug!("{why}: {} does nothing", mode_name(mode));
        return Ok(None);
    }
    compute(
        bundle.mount_label(),
        bundle.process_label(),
        lxc_file_context,
        mode,
    )
    .map(Some)
}

pub fn mode_name(mode: Relabel) -> &'static str {
    match mode {
        Relabel::Shared => "z (shared)",
        Relabel::Private => "Z (private)",
    }
}

/// The pure part of [`target_context`] (SELinux known to be enabled).
pub fn compute(
    mount_label: Option<&str>,
    process_label: Option<&str>,
    lxc_file: impl FnOnce() -> Result<String, HookError>,
    mode: Relabel,
) -> Result<String, HookError> {
    let bad = |what: &str, v: &str| {
        HookError::invalid(
            "bundle",
            format!(
                "{what} {} is not an SELinux context",
                crate::error::quote(v)
            ),
        )
    };
    let mount = match mount_label {
        Some(m) => Some(Context::parse(m).ok_or_else(|| bad("linux.mountLabel", m))?),
        None => None,
    };
    let process = match process_label {
        Some(p) => Some(Context::parse(p).ok_or_else(|| bad("process.selinuxLabel", p))?),
        None => None,
    };
    let base = match mount {
        Some(m) => m,
        None => {
            let f = lxc_file()?;
            Context::parse(&f).ok_or_else(|| bad("lxc_contexts file", &f))?
        }
    };
    let ctx = match mode {
        // Level s0: every container's range dominates it. A non-MLS policy
        // has no level at all.
        Relabel::Shared => base.with_level(base.level.as_ref().map(|_| "s0")),
        Relabel::Private if mount_label.is_some() => base,
        // No mountLabel: the process's categories on the policy's file type.
        Relabel::Private => match process.as_ref().and_then(|p| p.level.as_deref()) {
            Some(level) if base.level.is_some() => base.with_level(Some(level)),
            _ => {
                warn!(
                    "Z: the bundle names neither linux.mountLabel nor a process level; using {base}, which has no categories of its own"
                );
                base
            }
        },
    };
    Ok(ctx.to_string())
}

/// What a relabel of a volume root would do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The root's current context (`None`: unlabelled or unreadable).
    pub current: Option<String>,
    /// The completion marker on the root.
    pub marker: Option<String>,
    pub walk: bool,
    /// Why it walks or skips, for logs and `check`.
    pub reason: String,
}

/// Decide from the root's label and marker whether a walk is needed.
pub fn decide(
    current: Option<&str>,
    marker: Option<&str>,
    target: &str,
    policy: RelabelPolicy,
) -> Decision {
    let (walk, reason) = if policy == RelabelPolicy::Always {
        (true, "relabel = \"always\"".to_string())
    } else if current != Some(target) {
        (true, "the root does not carry the target label".to_string())
    } else if marker != Some(target) {
        (
            true,
            "no marker of a completed relabel to this label (first use, or an interrupted relabel)"
                .to_string(),
        )
    } else {
        (
            false,
            "the root carries the target label and the marker of a completed relabel".to_string(),
        )
    };
    Decision {
        current: current.map(str::to_string),
        marker: marker.map(str::to_string),
        walk,
        reason,
    }
}

/// Inspect the volume at `fd` (any fd, O_PATH included) for `check`.
pub fn inspect(fd: &OwnedFd, target: &str, policy: RelabelPolicy) -> Decision {
    let at = proc_fd(fd);
    let current = get_xattr(&at, SELINUX_XATTR, true).ok().flatten();
    let marker = get_xattr(&at, MARKER_XATTR, true).ok().flatten();
    decide(current.as_deref(), marker.as_deref(), target, policy)
}

/// What [`relabel`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// O(1): nothing was walked.
    Skipped,
    Walked {
        stats: walk::Stats,
        /// Entries whose label was rewritten (the root included).
        changed: u64,
        elapsed: Duration,
    },
}

/// Relabel the volume whose root is `fd` (any fd, O_PATH included) to
/// `target`. `is_dir` false: a single-file volume, labelled alone. Refuses
/// system paths. Runs in the host mount namespace, before setns: the walk's
/// threads have exited when it returns.
pub fn relabel(
    fd: &OwnedFd,
    is_dir: bool,
    target: &str,
    policy: RelabelPolicy,
    threads: usize,
) -> Result<Outcome, HookError> {
    let at = proc_fd(fd);
    let real = crate::volume::real_path(fd.as_fd()).map_err(|e| {
        HookError::failed(
            "",
            format!("reading the path of the volume to relabel: {e}"),
        )
    })?;
    let shown = real.display().to_string();
    if let Some(why) = walk::system_path(&real) {
        return Err(
            HookError::failed("", format!("refusing to relabel: {why}")).hint(
                "relabel (z/Z) only a dedicated volume directory; drop z/Z or use a sub-directory",
            ),
        );
    }
    let xerr = |what: String, e: io::Error| {
        let mut err = HookError::failed("", format!("{what} {shown}: {e}"));
        if e.raw_os_error() == Some(libc::EOPNOTSUPP) {
            err = err.hint("this file system does not store SELinux labels; drop z/Z (for NFS use a context= mount)");
        }
        err
    };
    let current = get_xattr(&at, SELINUX_XATTR, true)
        .map_err(|e| xerr(format!("getxattr {SELINUX_XATTR}"), e))?;
    let marker = match get_xattr(&at, MARKER_XATTR, true) {
        Ok(m) => m,
        Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => None,
        Err(e) => return Err(xerr(format!("getxattr {MARKER_XATTR}"), e)),
    };
    let d = decide(current.as_deref(), marker.as_deref(), target, policy);
    if !d.walk {
        debug!("relabel {shown} to {target}: skipped, {}", d.reason);
        return Ok(Outcome::Skipped);
    }
    debug!("relabel {shown} to {target}: walking, {}", d.reason);
    let start = Instant::now();
    // Cleared first: a walk that does not finish leaves no marker behind.
    if marker.is_some() {
        rustix::fs::removexattr(&at, MARKER_XATTR)
            .or_else(|e| {
                if e == rustix::io::Errno::NODATA {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| xerr(format!("removexattr {MARKER_XATTR}"), e.into()))?;
    }
    let value = with_nul(target);
    let visitor = LabelVisitor {
        target: target.as_bytes(),
        value: &value,
        changed: AtomicU64::new(0),
    };
    let stats = if is_dir {
        walk::walk(fd, &real, threads, &visitor).map_err(|e| {
            let unsupported = e.source.raw_os_error() == Some(libc::EOPNOTSUPP);
            let err = HookError::failed(
                "",
                format!(
                    "relabel {shown} to {target}: {}: {}",
                    e.path.display(),
                    e.source
                ),
            );
            if unsupported {
                err.hint("this file system does not store SELinux labels; drop z/Z (for NFS use a context= mount)")
            } else {
                err.hint("fix the entry named, or drop z/Z; the next start walks again")
            }
        })?
    } else {
        walk::Stats::default()
    };
    // The root last, then the marker: only a finished walk is marked.
    if current.as_deref() != Some(target) {
        rustix::fs::setxattr(&at, SELINUX_XATTR, &value, XattrFlags::empty())
            .map_err(|e| xerr(format!("setxattr {SELINUX_XATTR}"), e.into()))?;
        visitor.changed.fetch_add(1, Ordering::Relaxed);
    }
    match rustix::fs::setxattr(&at, MARKER_XATTR, target.as_bytes(), XattrFlags::empty()) {
        Ok(()) => {}
        Err(rustix::io::Errno::OPNOTSUPP) => {
            warn!("{shown}: no trusted xattrs on this file system: every start walks the volume")
        }
        Err(e) => return Err(xerr(format!("setxattr {MARKER_XATTR}"), e.into())),
    }
    let elapsed = start.elapsed();
    let changed = visitor.changed.into_inner();
    info!(
        "relabelled {shown} to {target}: {} entries, {changed} changed, {} mounts skipped, {:.1} ms",
        stats.entries + 1,
        stats.mounts_skipped,
        elapsed.as_secs_f64() * 1e3
    );
    Ok(Outcome::Walked {
        stats,
        changed,
        elapsed,
    })
}

struct LabelVisitor<'a> {
    target: &'a [u8],
    /// `target` with a trailing NUL, as libselinux writes it.
    value: &'a [u8],
    changed: AtomicU64,
}

impl walk::Visitor for LabelVisitor<'_> {
    fn visit(&self, e: &walk::Entry<'_>) -> io::Result<()> {
        // The worker's cwd is the entry's directory: l* calls on the bare
        // name act on the entry itself, a symlink included, never its target.
        let mut buf = [0u8; 256];
        let same = match rustix::fs::lgetxattr(e.name, SELINUX_XATTR, &mut buf[..]) {
            Ok(n) => strip_nul(&buf[..n]) == self.target,
            Err(rustix::io::Errno::NODATA) | Err(rustix::io::Errno::RANGE) => false,
            Err(err) => return Err(err.into()),
        };
        if !same {
            rustix::fs::lsetxattr(e.name, SELINUX_XATTR, self.value, XattrFlags::empty())?;
            self.changed.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn with_nul(s: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(s.len() + 1);
    v.extend_from_slice(s.as_bytes());
    v.push(0);
    v
}

fn strip_nul(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\0").unwrap_or(b)
}

/// `/proc/self/fd/N`: path calls on it act on the object the fd holds, even
/// an O_PATH fd, and never on a path someone could swap.
fn proc_fd(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_fd().as_raw_fd()))
}

/// An xattr as text without its trailing NUL; `None` when absent.
fn get_xattr(path: &Path, name: &str, follow: bool) -> io::Result<Option<String>> {
    let mut buf = vec![0u8; 1024];
    let r = if follow {
        rustix::fs::getxattr(path, name, &mut buf[..])
    } else {
        rustix::fs::lgetxattr(path, name, &mut buf[..])
    };
    match r {
        Ok(n) => Ok(Some(
            String::from_utf8_lossy(strip_nul(&buf[..n])).into_owned(),
        )),
        Err(rustix::io::Errno::NODATA) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The label and marker of `path` (not following a final symlink); for
/// tests and tools.
pub fn read_labels(path: &Path) -> io::Result<(Option<String>, Option<String>)> {
    Ok((
        get_xattr(path, SELINUX_XATTR, false)?,
        get_xattr(path, MARKER_XATTR, false).unwrap_or(None),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "system_u:object_r:container_file_t:s0:c1,c2";
    const LXC: &str = "system_u:object_r:container_file_t:s0";

    fn lxc() -> Result<String, HookError> {
        Ok(LXC.into())
    }
    fn no_lxc() -> Result<String, HookError> {
        panic!("lxc_contexts must not be read when the bundle has a mountLabel")
    }

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

    #[test]
    fn private_is_the_mount_label_shared_is_level_s0() {
        assert_eq!(compute(Some(M), None, no_lxc, Relabel::Private).unwrap(), M);
        assert_eq!(
            compute(Some(M), None, no_lxc, Relabel::Shared).unwrap(),
            "system_u:object_r:container_file_t:s0"
        );
        // A non-MLS policy: no level to drop.
        assert_eq!(
            compute(Some("u:r:t"), None, no_lxc, Relabel::Shared).unwrap(),
            "u:r:t"
        );
    }

    #[test]
    fn without_mount_label_the_policy_file_context_is_used() {
        assert_eq!(compute(None, None, lxc, Relabel::Shared).unwrap(), LXC);
        // Z takes the process's categories on the policy's file type.
        assert_eq!(
            compute(
                None,
                Some("system_u:system_r:container_t:s0:c5,c6"),
                lxc,
                Relabel::Private
            )
            .unwrap(),
            "system_u:object_r:container_file_t:s0:c5,c6"
        );
        assert_eq!(compute(None, None, lxc, Relabel::Private).unwrap(), LXC);
        let e = compute(
            None,
            None,
            || Err(HookError::failed("selinux", "no lxc_contexts")),
            Relabel::Shared,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no lxc_contexts"));
    }

    #[test]
    fn a_bad_bundle_label_is_invalid() {
        let e = compute(Some("garbage"), None, no_lxc, Relabel::Private).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("linux.mountLabel"), "{e}");
    }

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

    #[test]
    fn marker_logic() {
        use RelabelPolicy::*;
        let t = M;
        // O(1) skip only with both the label and the marker of this label.
        assert!(!decide(Some(t), Some(t), t, OnChange).walk);
        assert!(decide(Some(t), Some(t), t, Always).walk);
        assert!(
            decide(Some(t), None, t, OnChange).walk,
            "interrupted relabel"
        );
        assert!(
            decide(Some(t), Some(LXC), t, OnChange).walk,
            "marker of another label"
        );
        assert!(
            decide(Some(LXC), Some(t), t, OnChange).walk,
            "root relabelled since"
        );
        assert!(decide(None, None, t, OnChange).walk);
    }

    #[test]
    fn nul_handling() {
        assert_eq!(strip_nul(b"a:b:c:s0\0"), b"a:b:c:s0");
        assert_eq!(strip_nul(b"a:b:c:s0"), b"a:b:c:s0");
        assert_eq!(with_nul("x"), b"x\0");
    }
}
