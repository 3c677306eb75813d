//! The directories no volume may be, for a U or z/Z walk: system paths
//! (compared by identity, so a bind-mount alias is refused too), the hook's
//! own directories and every directory above them.

use std::os::fd::BorrowedFd;
use std::path::{Path, PathBuf};

/// Paths no one may relabel or chown recursively (as go-selinux refuses).
const SYSTEM_PATHS: &[&str] = &[
    "/",
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/etc/X11",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/media",
    "/mnt",
    "/opt",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/srv",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/include",
    "/usr/lib",
    "/usr/libexec",
    "/usr/local",
    "/usr/sbin",
    "/usr/share",
    "/usr/src",
    "/var",
    "/var/cache",
    "/var/lib",
    "/var/lib/containers",
    "/var/log",
    "/var/spool",
    "/var/tmp",
];

/// `Some(reason)` when `path` (resolved) is a system path or a home
/// directory, by its name. [`Protected`] also checks by identity.
pub(super) fn system_path(path: &Path) -> Option<String> {
    if SYSTEM_PATHS.iter().any(|p| Path::new(p) == path) {
        return Some(format!("{} is a system path", path.display()));
    }
    if path.parent() == Some(Path::new("/home")) {
        return Some(format!("{} is a home directory", path.display()));
    }
    None
}

/// The directories no volume may be for a recursive change (U, z, Z):
/// every [`SYSTEM_PATHS`] entry and every extra directory the caller names
/// (the hook's `volumes_root` and state dir) with each directory above it,
/// all compared by (st_dev, st_ino), so a bind-mount alias or a symlinked
/// path is refused as well as the path itself. Home directories
/// (`/home/NAME`) are refused by name. Built once per hook run.
pub struct Protected {
    /// (dev, ino, path, what it is), e.g. "a system path".
    dirs: Vec<(u64, u64, PathBuf, String)>,
}

impl Protected {
    /// The system paths (those missing here skipped) and `extra`: (role,
    /// path) pairs such as `("volumes_root", …)`, with every directory above
    /// each (lexically, and above its real path).
    pub fn new(extra: &[(&str, &Path)]) -> Protected {
        let mut p = Protected { dirs: Vec::new() };
        for sys in SYSTEM_PATHS {
            p.add(Path::new(sys), "a system path".into());
        }
        for (role, path) in extra {
            p.add(path, format!("the hook's {role}"));
            let real = std::fs::canonicalize(path).ok();
            if let Some(real) = &real {
                p.add(real, format!("the hook's {role}"));
            }
            let above = path.ancestors().skip(1);
            let real_above = real.iter().flat_map(|r| r.ancestors().skip(1));
            for a in above.chain(real_above) {
                p.add(
                    a,
                    format!("a parent of the hook's {role} {}", path.display()),
                );
            }
        }
        p
    }

    /// For a run that walks no volume (no U, no z/Z): refuses by name only
    /// and stats nothing (the ~50 stats of [`Protected::new`] are a tenth
    /// of a plain prestart's syscalls).
    pub fn by_name_only() -> Protected {
        Protected { dirs: Vec::new() }
    }

    fn add(&mut self, path: &Path, what: String) {
        if let Ok(st) = rustix::fs::stat(path) {
            if !self
                .dirs
                .iter()
                .any(|d| (d.0, d.1) == (st.st_dev, st.st_ino))
            {
                self.dirs
                    .push((st.st_dev, st.st_ino, path.to_path_buf(), what));
            }
        }
    }

    /// `Some(reason)` when the directory open at `fd` (any fd, O_PATH
    /// included; `real` is its path) must not be changed recursively.
    pub fn refuses(&self, fd: BorrowedFd<'_>, real: &Path) -> Option<String> {
        if let Some(why) = system_path(real) {
            return Some(why);
        }
        let st = rustix::fs::fstat(fd).ok()?;
        self.identity(st.st_dev, st.st_ino, real)
    }

    /// `Some(reason)` when `dir` (a file volume's parent directory, by its
    /// real path) is protected: a file directly in it is not changed either.
    pub fn refuses_dir_path(&self, dir: &Path) -> Option<String> {
        if let Some(why) = system_path(dir) {
            return Some(why);
        }
        let st = rustix::fs::stat(dir).ok()?;
        self.identity(st.st_dev, st.st_ino, dir)
    }

    #[cfg(test)]
    pub(super) fn identity_of(&self, fd: BorrowedFd<'_>, real: &Path) -> Option<String> {
        let st = rustix::fs::fstat(fd).ok()?;
        self.identity(st.st_dev, st.st_ino, real)
    }

    fn identity(&self, dev: u64, ino: u64, real: &Path) -> Option<String> {
        let (_, _, path, what) = self.dirs.iter().find(|d| (d.0, d.1) == (dev, ino))?;
        Some(if path == real {
            format!("{} is {what}", path.display())
        } else {
            format!(
                "{} is the directory {} (the same inode): {} is {what}",
                real.display(),
                path.display(),
                path.display()
            )
        })
    }
}
