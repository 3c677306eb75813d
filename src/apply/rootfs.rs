//! Destinations inside an untrusted rootfs, resolved race-free with pathrs:
//! every lookup stays inside the root (RESOLVE_IN_ROOT) and no symlink is
//! ever followed (RESOLVE_NO_SYMLINKS), so an image that plants `/myapp ->
//! /etc` or `-> ../../../../tmp/x`, or swaps a directory for a symlink while
//! the hook runs, can never make the hook create or mount anything outside
//! the rootfs — it gets a refusal naming the symlink.

use std::fs::Permissions;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use pathrs::flags::{OpenFlags, ResolverFlags};
use pathrs::{Handle, Root};

use crate::apply::ApplyError;

pub struct RootFs {
    root: Root,
}

/// What a destination looks like in the rootfs (for `check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestState {
    Directory,
    File,
    /// A FIFO, socket or device node (named): never opened, never used.
    Other(&'static str),
    Missing,
    /// A component is a symlink: the component and its target.
    Symlink(PathBuf, PathBuf),
    Error(String),
}

impl RootFs {
    pub fn open(path: &Path) -> Result<RootFs, ApplyError> {
        let root = Root::open(path).map_err(|e| {
            ApplyError::unusable(format!("open {}: {e}", path.display()))
                .hint("config.json root.path must name the container's rootfs")
        })?;
        Ok(RootFs {
            root: root.with_resolver_flags(ResolverFlags::NO_SYMLINKS),
        })
    }

    /// Check, changing nothing, that `dest` can take a volume: no symlink
    /// on the way, and missing, or of the source's kind (a directory for a
    /// directory, a regular file for a file; never a FIFO or device node).
    pub fn check_dest(&self, dest: &Path, dir: bool) -> Result<(), ApplyError> {
        match self.inspect(dest) {
            DestState::Missing => Ok(()),
            DestState::Directory if dir => Ok(()),
            DestState::File if !dir => Ok(()),
            DestState::Error(e) => Err(self.explain(dest, dir, &e)),
            _ => Err(self.explain(dest, dir, "")),
        }
    }

    /// Find (or create, `mkdir -p` style, mode 0755) the mount point for
    /// `dest`: a directory for a directory source, an empty file for a file.
    /// An existing entry is only resolved (`O_PATH`), never opened for
    /// reading or writing: a FIFO planted there cannot block the hook.
    pub fn prepare_dest(&self, dest: &Path, dir: bool) -> Result<Handle, ApplyError> {
        // Fast path (issue 15): an existing destination of the source's kind
        // is only resolved (same resolver flags: no symlink anywhere) and
        // fstat'ed; mkdir_all would build pathrs' private procfs for nothing.
        if let Ok(h) = self.root.resolve(dest) {
            let kind = rustix::fs::fstat(&h).map(|st| st.st_mode & libc::S_IFMT);
            if kind == Ok(if dir { libc::S_IFDIR } else { libc::S_IFREG }) {
                return Ok(h);
            }
        }
        self.check_dest(dest, dir)?;
        let result = if dir {
            self.root.mkdir_all(dest, &Permissions::from_mode(0o755))
        } else {
            let parent = dest.parent().unwrap_or(Path::new("/"));
            self.root
                .mkdir_all(parent, &Permissions::from_mode(0o755))
                .and_then(|_| {
                    match self.root.create_file(
                        dest,
                        OpenFlags::O_CREAT
                            | OpenFlags::O_EXCL
                            | OpenFlags::O_WRONLY
                            | OpenFlags::O_NOFOLLOW,
                        &Permissions::from_mode(0o644),
                    ) {
                        Ok(_) => Ok(()),
                        Err(e)
                            if matches!(
                                e.kind(),
                                pathrs::error::ErrorKind::OsError(Some(libc::EEXIST))
                            ) =>
                        {
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                })
                .and_then(|_| self.root.resolve(dest))
        };
        let handle = result.map_err(|e| self.explain(dest, dir, &e.to_string()))?;
        // What we resolve is what we attach onto: of the source's kind.
        let kind = rustix::fs::fstat(&handle)
            .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode))
            .map_err(|e| ApplyError::sys(format!("fstat destination {}", dest.display()), e))?;
        let want = if dir {
            rustix::fs::FileType::Directory
        } else {
            rustix::fs::FileType::RegularFile
        };
        if kind != want {
            return Err(self.explain(dest, dir, ""));
        }
        Ok(handle)
    }

    /// Look at a destination without changing anything.
    pub fn inspect(&self, dest: &Path) -> DestState {
        if let Some((link, target)) = self.find_symlink(dest) {
            return DestState::Symlink(link, target);
        }
        match self.root.resolve(dest) {
            Ok(h) => match rustix::fs::fstat(&h) {
                Ok(st) => match rustix::fs::FileType::from_raw_mode(st.st_mode) {
                    rustix::fs::FileType::Directory => DestState::Directory,
                    rustix::fs::FileType::RegularFile => DestState::File,
                    other => DestState::Other(kind_name(other)),
                },
                Err(e) => DestState::Error(e.to_string()),
            },
            Err(e)
                if matches!(
                    e.kind(),
                    pathrs::error::ErrorKind::OsError(Some(libc::ENOENT))
                ) =>
            {
                DestState::Missing
            }
            Err(e) => DestState::Error(e.to_string()),
        }
    }

    /// Turn a resolution failure into a message that says what is wrong in
    /// the image.
    fn explain(&self, dest: &Path, dir: bool, err: &str) -> ApplyError {
        let at = format!("destination {}", dest.display());
        if let Some((link, target)) = self.find_symlink(dest) {
            return ApplyError::unusable(format!(
                "{at}: {} is a symlink in the image (-> {})",
                link.display(),
                target.display()
            ))
            .hint(
                "volumes are never mounted through symlinks; use the real path as the destination",
            );
        }
        match self.inspect(dest) {
            DestState::Other(kind) => ApplyError::unusable(format!(
                "{at}: is a {kind} in the image, not a directory or regular file; a volume is never mounted onto it, and the hook never opens it"
            ))
            .hint("remove it from the image, or choose another destination"),
            DestState::File if dir => ApplyError::unusable(format!(
                "{at}: exists in the image and is not a directory, but the volume is a directory"
            ))
            .hint("choose another destination"),
            DestState::Directory if !dir => ApplyError::unusable(format!(
                "{at}: is a directory in the image, but the volume source is a file"
            ))
            .hint("choose another destination"),
            _ => ApplyError::unusable(format!("{at}: cannot prepare it in the rootfs: {err}")),
        }
    }

    /// The first component of `dest` that is a symlink in the image, with
    /// its target (read, never followed).
    fn find_symlink(&self, dest: &Path) -> Option<(PathBuf, PathBuf)> {
        let mut prefix = PathBuf::from("/");
        for c in dest.components() {
            let Component::Normal(n) = c else { continue };
            prefix.push(n);
            let handle = self.root.resolve_nofollow(&prefix).ok()?;
            let st = rustix::fs::fstat(&handle).ok()?;
            if rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Symlink {
                let target = self
                    .root
                    .readlink(&prefix)
                    .unwrap_or_else(|_| PathBuf::from("?"));
                return Some((prefix, target));
            }
        }
        None
    }
}

/// A file type as words, for messages.
fn kind_name(kind: rustix::fs::FileType) -> &'static str {
    use rustix::fs::FileType as F;
    match kind {
        F::Fifo => "FIFO (special file)",
        F::Socket => "socket (special file)",
        F::CharacterDevice => "character device (special file)",
        F::BlockDevice => "block device (special file)",
        F::Symlink => "symlink",
        F::Directory => "directory",
        F::RegularFile => "regular file",
        _ => "special file",
    }
}
