//! fd helpers every layer needs: one wrapper per lookup, so that each
//! race-free idiom is spelled once.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use rustix::fs::{openat2, Mode, OFlags, ResolveFlags};

/// `/proc/self/fd/N`: path calls on it act on the object the fd holds, even
/// an O_PATH fd, and never on a path someone could swap.
pub fn proc_fd(fd: BorrowedFd<'_>) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The path the kernel holds for an open fd (its real path, symlinks resolved).
pub fn real_path(fd: BorrowedFd<'_>) -> std::io::Result<PathBuf> {
    std::fs::read_link(proc_fd(fd))
}

/// Open `name` beneath `dir` with `flags`: never through a symlink (the
/// last component included), never out of `dir`.
pub fn open_beneath(
    dir: BorrowedFd<'_>,
    name: impl rustix::path::Arg,
    flags: OFlags,
) -> rustix::io::Result<OwnedFd> {
    openat2(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Open the directory `name` directly under `parent` for reading: never
/// through a symlink, never out of `parent`, never into another mount.
pub fn open_dir_beneath(parent: BorrowedFd<'_>, name: &CStr) -> rustix::io::Result<OwnedFd> {
    openat2(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH
            | ResolveFlags::NO_SYMLINKS
            | ResolveFlags::NO_MAGICLINKS
            | ResolveFlags::NO_XDEV,
    )
}

/// Why a path cannot be trusted as the way to a volume.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is a symlink")]
    Symlink { path: PathBuf },
    #[error(
        "{path} is owned by uid {uid}, not {expected} (that user could replace what lies below it)"
    )]
    Owner {
        path: PathBuf,
        uid: u32,
        expected: String,
    },
    #[error(
        "{path} is writable by {who} (mode {mode:04o}; they could replace what lies below it)"
    )]
    Writable {
        path: PathBuf,
        mode: u32,
        who: &'static str,
    },
}

/// Who may own the directories on the way to a volume.
///
/// Rootful: root only. In a rootless user namespace host root shows as the
/// overflow uid (65534) and the user as 0: both are accepted. The overflow
/// uid stands for every host id outside the user's mapping, so inside the
/// namespace host root cannot be told from another host user; that is
/// accepted because the hook then acts with the user's own rights only
/// (the kernel refuses it anything the user could not do by hand). Ids of
/// the user's subordinate range (what containers run as) are never trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owners {
    /// Host root as this process sees it.
    pub host_root: u32,
    /// The user the hook acts for, as this process sees it (per-user modes).
    pub user: Option<u32>,
}

impl Owners {
    pub const ROOT: Owners = Owners {
        host_root: 0,
        user: None,
    };

    pub fn trusts(&self, uid: u32) -> bool {
        uid == self.host_root || self.user == Some(uid)
    }

    /// Who owns what the hook itself creates (`volumes_root`): root, or the user.
    pub fn own(&self) -> u32 {
        self.user.unwrap_or(self.host_root)
    }

    fn expected(&self) -> String {
        match self.user {
            None => "root".into(),
            Some(u) => format!(
                "host root (seen as uid {}) or the user (uid {u})",
                self.host_root
            ),
        }
    }
}

/// Open the absolute `path` one component at a time from `/`, never through
/// a symlink, and check every directory above its last component the way
/// sshd's StrictModes does: owned by a trusted owner ([`Owners`]: root) and
/// writable by no one else. A
/// trusted sticky directory (`/tmp`, `/var/tmp`) is accepted: others may
/// not rename or remove what root owns there. The last component must not
/// be a symlink; its owner is not checked (a volume's root may belong to
/// the container's user). Returns an `O_PATH` fd of it.
pub fn open_trusted(path: &std::path::Path, owners: Owners) -> Result<OwnedFd, TrustError> {
    use std::path::Component;
    let io = |p: &std::path::Path, e: rustix::io::Errno| TrustError::Io {
        path: p.to_path_buf(),
        source: e.into(),
    };
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut cur = rustix::fs::open("/", flags | OFlags::DIRECTORY, Mode::empty())
        .map_err(|e| io(std::path::Path::new("/"), e))?;
    let mut shown = PathBuf::from("/");
    let names: Vec<_> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    for name in names {
        trusted_dir(&cur, &shown, owners)?;
        shown.push(name);
        let next =
            rustix::fs::openat(&cur, name, flags, Mode::empty()).map_err(|e| io(&shown, e))?;
        let st = rustix::fs::fstat(&next).map_err(|e| io(&shown, e))?;
        if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink {
            return Err(TrustError::Symlink { path: shown });
        }
        cur = next;
    }
    Ok(cur)
}

/// The StrictModes rule for one directory on the way to a volume.
fn trusted_dir(fd: &OwnedFd, path: &std::path::Path, owners: Owners) -> Result<(), TrustError> {
    let st = rustix::fs::fstat(fd).map_err(|e| TrustError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    let mode = st.st_mode & 0o7777;
    if !owners.trusts(st.st_uid) {
        return Err(TrustError::Owner {
            path: path.to_path_buf(),
            uid: st.st_uid,
            expected: owners.expected(),
        });
    }
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !sticky {
        return Err(TrustError::Writable {
            path: path.to_path_buf(),
            mode,
            who: if mode & 0o002 != 0 {
                "everyone"
            } else {
                "its group"
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    #[test]
    fn trusted_paths_refuse_symlinks_and_foreign_parents() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("SKIP: open_trusted needs root-owned temporary directories");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let base = t.path();
        std::fs::create_dir_all(base.join("ok/vol")).unwrap();
        assert!(open_trusted(&base.join("ok/vol"), Owners::ROOT).is_ok());
        // A volume root owned by someone else is fine; its parent is not.
        std::os::unix::fs::chown(base.join("ok/vol"), Some(4242), Some(4242)).unwrap();
        assert!(open_trusted(&base.join("ok/vol"), Owners::ROOT).is_ok());
        std::fs::create_dir_all(base.join("user/vol")).unwrap();
        std::os::unix::fs::chown(base.join("user"), Some(1234), None).unwrap();
        let e = open_trusted(&base.join("user/vol"), Owners::ROOT).unwrap_err();
        assert!(matches!(e, TrustError::Owner { uid: 1234, .. }), "{e}");
        assert!(e.to_string().contains("owned by uid 1234"), "{e}");
        std::fs::create_dir_all(base.join("ww/vol")).unwrap();
        std::fs::set_permissions(base.join("ww"), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = open_trusted(&base.join("ww/vol"), Owners::ROOT).unwrap_err();
        assert!(e.to_string().contains("writable by everyone"), "{e}");
        // Sticky, root-owned: accepted, as /tmp.
        std::fs::set_permissions(base.join("ww"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(open_trusted(&base.join("ww/vol"), Owners::ROOT).is_ok());
        // Per-user: the user's own directory is trusted, a stranger's not.
        let user = Owners {
            host_root: 0,
            user: Some(1234),
        };
        assert!(open_trusted(&base.join("user/vol"), user).is_ok());
        std::os::unix::fs::chown(base.join("user"), Some(4321), None).unwrap();
        let e = open_trusted(&base.join("user/vol"), user).unwrap_err();
        assert!(e.to_string().contains("or the user (uid 1234)"), "{e}");
        symlink("/etc", base.join("link")).unwrap();
        for p in [base.join("link"), base.join("link/ssl")] {
            let e = open_trusted(&p, Owners::ROOT).unwrap_err();
            assert!(matches!(e, TrustError::Symlink { .. }), "{e}");
        }
    }
}
