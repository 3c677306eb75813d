//! Destinations inside an untrusted rootfs, resolved race-free with pathrs
//! the way runc (securejoin), crun (openat2 `RESOLVE_IN_ROOT`) and `podman
//! -v` resolve them: symlinks in the image are followed, but scoped to the
//! rootfs, so `/var/run/app` with `/var/run -> /run` (or `-> ../run`) lands
//! at `/run/app`, and `/myapp -> /etc` or `-> ../../../../tmp/x` names the
//! container's own `/etc` or `/tmp/x` — never the host's. A symlink whose
//! target is missing (dangling) is refused, as crun refuses it, and nothing
//! is ever created through one. A destination that resolves to the
//! container's root or under `/proc`, `/sys` or `/dev` is refused as the
//! annotation grammar refuses it when written out.
//!
//! The race protection stays: each destination is resolved to an fd,
//! missing directories are created beneath it (`mkdirat` from verified fds,
//! never through a symlink), a file mount point is created with
//! `O_CREAT|O_EXCL`, and the volume is attached with `move_mount` onto that
//! fd; an entry that exists is only resolved (`O_PATH`), never opened for
//! reading or writing.

use std::ffi::OsStr;
use std::fs::Permissions;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use pathrs::flags::OpenFlags;
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
    /// A symlink on the way (the destination's own last component
    /// included) whose target does not exist in the image: the link, as
    /// named from the destination, and its target (read, never followed).
    Dangling(PathBuf, PathBuf),
    Error(String),
}

/// A destination looked at in the rootfs: its state and where it is, or
/// would be created, with the image's symlinks resolved (`None` when that
/// cannot be told, e.g. past an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dest {
    pub state: DestState,
    pub resolved: Option<PathBuf>,
}

/// `dest`, and where it resolves to when that differs: `/var/run/app →
/// /run/app`.
pub fn shown(dest: &Path, resolved: Option<&Path>) -> String {
    match resolved {
        Some(r) if r != dest => format!("{} → {}", dest.display(), r.display()),
        _ => dest.display().to_string(),
    }
}

/// Why a resolved destination may not take a volume: the container's root
/// or under `/proc`, `/sys`, `/dev` (the runtime's), as for a destination
/// written that way in the annotation.
pub fn reserved(resolved: &Path) -> Option<String> {
    let first = resolved
        .components()
        .find_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .map(|n| n.to_string_lossy().into_owned());
    match first.as_deref() {
        None => Some("the container's root \"/\"".into()),
        Some(top @ ("proc" | "sys" | "dev")) => Some(format!("/{top}, which the runtime owns")),
        _ => None,
    }
}

fn errno(e: &pathrs::error::Error) -> Option<i32> {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(n) => n,
        _ => None,
    }
}

impl RootFs {
    pub fn open(path: &Path) -> Result<RootFs, ApplyError> {
        // The default resolver: RESOLVE_IN_ROOT semantics, symlinks
        // followed inside the root, magic links never.
        let root = Root::open(path).map_err(|e| {
            ApplyError::unusable(format!("open {}: {e}", path.display()))
                .hint("config.json root.path must name the container's rootfs")
        })?;
        Ok(RootFs { root })
    }

    /// Check, changing nothing, that `dest` can take a volume: no dangling
    /// symlink on the way, not resolving to the container's root or under
    /// `/proc`, `/sys`, `/dev`, and missing, or of the source's kind (a
    /// directory for a directory, a regular file for a file; never a FIFO
    /// or device node). Returns where it resolves to in the rootfs.
    pub fn check_dest(&self, dest: &Path, dir: bool) -> Result<PathBuf, ApplyError> {
        let d = self.inspect(dest);
        let resolved = d.resolved.clone().unwrap_or_else(|| dest.to_path_buf());
        if let Some(why) = reserved(&resolved) {
            return Err(reserved_error(dest, &resolved, &why));
        }
        match d.state {
            DestState::Missing => Ok(resolved),
            DestState::Directory if dir => Ok(resolved),
            DestState::File if !dir => Ok(resolved),
            _ => Err(explain(dest, dir, &d, "")),
        }
    }

    /// Find (or create, `mkdir -p` style, mode 0755) the mount point for
    /// `dest`: a directory for a directory source, an empty file for a file.
    /// An existing entry is only resolved (`O_PATH`), never opened for
    /// reading or writing: a FIFO planted there cannot block the hook.
    /// Returns the handle to attach onto and where it is in the rootfs.
    pub fn prepare_dest(&self, dest: &Path, dir: bool) -> Result<(Handle, PathBuf), ApplyError> {
        let want = if dir {
            rustix::fs::FileType::Directory
        } else {
            rustix::fs::FileType::RegularFile
        };
        // Fast path (issue 15): an existing destination of the source's kind
        // is only resolved and fstat'ed; mkdir_all would build pathrs'
        // private procfs for nothing. The checks below still judge it.
        let existing = self.root.resolve(dest).ok().filter(|h| {
            rustix::fs::fstat(h).map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode))
                == Ok(want)
        });
        let result = if let Some(h) = existing {
            Ok(h)
        } else if dir {
            self.check_dest(dest, dir)?;
            // pathrs creates only what is missing below the deepest entry
            // that resolves, with mkdirat + O_NOFOLLOW: a dangling symlink
            // swapped in meanwhile fails here, nothing is made through it.
            self.root.mkdir_all(dest, &Permissions::from_mode(0o755))
        } else {
            self.check_dest(dest, dir)?;
            let parent = dest.parent().unwrap_or(Path::new("/"));
            self.root
                .mkdir_all(parent, &Permissions::from_mode(0o755))
                .and_then(|_| {
                    // O_EXCL: never through a symlink, never an existing
                    // entry opened; an existing one is only resolved below.
                    match self.root.create_file(
                        dest,
                        OpenFlags::O_CREAT
                            | OpenFlags::O_EXCL
                            | OpenFlags::O_WRONLY
                            | OpenFlags::O_NOFOLLOW,
                        &Permissions::from_mode(0o644),
                    ) {
                        Ok(_) => Ok(()),
                        Err(e) if errno(&e) == Some(libc::EEXIST) => Ok(()),
                        Err(e) => Err(e),
                    }
                })
                .and_then(|_| self.root.resolve(dest))
        };
        let handle = result.map_err(|e| {
            let d = self.inspect(dest);
            explain(dest, dir, &d, &e.to_string())
        })?;
        // Where the handle really is: shown in messages, and judged again.
        let resolved = self.in_root(&handle).ok_or_else(|| {
            ApplyError::unusable(format!(
                "destination {}: resolved outside the rootfs; refusing to mount there",
                dest.display()
            ))
        })?;
        if let Some(why) = reserved(&resolved) {
            return Err(reserved_error(dest, &resolved, &why));
        }
        // What we resolve is what we attach onto: of the source's kind.
        let kind = rustix::fs::fstat(&handle)
            .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode))
            .map_err(|e| {
                ApplyError::sys(
                    format!("fstat destination {}", shown(dest, Some(&resolved))),
                    e,
                )
            })?;
        if kind != want {
            let d = Dest {
                state: match kind {
                    rustix::fs::FileType::Directory => DestState::Directory,
                    rustix::fs::FileType::RegularFile => DestState::File,
                    other => DestState::Other(kind_name(other)),
                },
                resolved: Some(resolved),
            };
            return Err(explain(dest, dir, &d, ""));
        }
        Ok((handle, resolved))
    }

    /// Look at a destination without changing anything, one component at
    /// a time: the first missing component (what would be created), the
    /// first dangling symlink, or the entry it resolves to.
    pub fn inspect(&self, dest: &Path) -> Dest {
        let names: Vec<&OsStr> = dest
            .components()
            .filter_map(|c| match c {
                Component::Normal(n) => Some(n),
                _ => None,
            })
            .collect();
        let mut prefix = PathBuf::from("/");
        for (i, name) in names.iter().enumerate() {
            let next = prefix.join(name);
            match self.root.resolve_nofollow(&next) {
                Ok(h) => {
                    let symlink = rustix::fs::fstat(&h).is_ok_and(|st| {
                        rustix::fs::FileType::from_raw_mode(st.st_mode)
                            == rustix::fs::FileType::Symlink
                    });
                    if symlink {
                        if let Err(e) = self.root.resolve(&next) {
                            let resolved = self.resolved(&prefix).map(|p| p.join(name));
                            if errno(&e) == Some(libc::ENOENT) {
                                let target = self
                                    .root
                                    .readlink(&next)
                                    .unwrap_or_else(|_| PathBuf::from("?"));
                                return Dest {
                                    state: DestState::Dangling(next, target),
                                    resolved,
                                };
                            }
                            return Dest {
                                state: DestState::Error(format!("{}: {e}", next.display())),
                                resolved,
                            };
                        }
                    }
                }
                Err(e) if errno(&e) == Some(libc::ENOENT) => {
                    // Missing from here on: created below what resolves.
                    let resolved = self
                        .resolved(&prefix)
                        .map(|p| names[i..].iter().fold(p, |p, n| p.join(n)));
                    return Dest {
                        state: DestState::Missing,
                        resolved,
                    };
                }
                Err(e) => {
                    return Dest {
                        state: DestState::Error(e.to_string()),
                        resolved: None,
                    }
                }
            }
            prefix = next;
        }
        match self.root.resolve(dest) {
            Ok(h) => {
                let resolved = self.in_root(&h);
                let state = match rustix::fs::fstat(&h) {
                    Ok(st) => match rustix::fs::FileType::from_raw_mode(st.st_mode) {
                        rustix::fs::FileType::Directory => DestState::Directory,
                        rustix::fs::FileType::RegularFile => DestState::File,
                        other => DestState::Other(kind_name(other)),
                    },
                    Err(e) => DestState::Error(e.to_string()),
                };
                Dest { state, resolved }
            }
            Err(e) => Dest {
                state: DestState::Error(e.to_string()),
                resolved: None,
            },
        }
    }

    /// Where `path` (which exists) resolves to in the rootfs.
    fn resolved(&self, path: &Path) -> Option<PathBuf> {
        let h = self.root.resolve(path).ok()?;
        self.in_root(&h)
    }

    /// The path of `fd` inside the rootfs: its real path relative to the
    /// rootfs's real path (both as the current mount namespace sees them),
    /// or `None` when it is not beneath it.
    fn in_root(&self, fd: impl AsFd) -> Option<PathBuf> {
        let root = crate::fd::real_path(self.root.as_fd()).ok()?;
        let path = crate::fd::real_path(fd.as_fd()).ok()?;
        let rel = path.strip_prefix(&root).ok()?;
        Some(Path::new("/").join(rel))
    }
}

fn reserved_error(dest: &Path, resolved: &Path, why: &str) -> ApplyError {
    ApplyError::unusable(format!(
        "destination {}: resolves, through symlinks in the image, to {why}",
        shown(dest, Some(resolved))
    ))
    .hint("choose a destination that is a real directory of the image")
}

/// Turn what was found at a destination into a message that says what is
/// wrong in the image.
fn explain(dest: &Path, dir: bool, d: &Dest, err: &str) -> ApplyError {
    let at = format!("destination {}", shown(dest, d.resolved.as_deref()));
    match &d.state {
        DestState::Dangling(link, target) => ApplyError::unusable(format!(
            "{at}: {} is a symlink in the image to {}, which does not exist there (a dangling symlink); nothing is created through it",
            link.display(),
            target.display()
        ))
        .hint("create the symlink's target in the image, or use a destination without the dangling symlink"),
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
        DestState::Error(e) if err.is_empty() => {
            ApplyError::unusable(format!("{at}: cannot resolve it in the rootfs: {e}"))
        }
        _ => ApplyError::unusable(format!("{at}: cannot prepare it in the rootfs: {err}")),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn image() -> (tempfile::TempDir, RootFs) {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        for d in ["run", "var", "etc", "proc"] {
            std::fs::create_dir(r.join(d)).unwrap();
        }
        std::fs::write(r.join("etc/motd"), "hi").unwrap();
        symlink("/run", r.join("var/run")).unwrap();
        symlink("../run", r.join("var/run2")).unwrap();
        symlink("/run/lock", r.join("var/lock")).unwrap();
        symlink(
            "../../../../../../../../../../tmp/nowhere-ovh",
            r.join("rel"),
        )
        .unwrap();
        symlink("/", r.join("up")).unwrap();
        symlink("/proc", r.join("p")).unwrap();
        symlink("/etc/motd", r.join("motd")).unwrap();
        let rootfs = RootFs::open(r).unwrap();
        (t, rootfs)
    }

    fn look(rootfs: &RootFs, dest: &str) -> (DestState, Option<String>) {
        let d = rootfs.inspect(Path::new(dest));
        (d.state, d.resolved.map(|p| p.display().to_string()))
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let (_t, r) = image();
        let missing = |p: &str| (DestState::Missing, Some(p.to_string()));
        assert_eq!(look(&r, "/var/run/app"), missing("/run/app"));
        assert_eq!(look(&r, "/var/run2/app/x"), missing("/run/app/x"));
        assert_eq!(
            look(&r, "/var/run"),
            (DestState::Directory, Some("/run".into()))
        );
        assert_eq!(
            look(&r, "/up/etc"),
            (DestState::Directory, Some("/etc".into()))
        );
        assert_eq!(
            look(&r, "/motd"),
            (DestState::File, Some("/etc/motd".into()))
        );
        assert_eq!(look(&r, "/new/dir"), missing("/new/dir"));
        assert_eq!(
            r.check_dest(Path::new("/var/run/app"), true).unwrap(),
            PathBuf::from("/run/app")
        );
        assert_eq!(
            shown(Path::new("/var/run/app"), Some(Path::new("/run/app"))),
            "/var/run/app → /run/app"
        );
        assert_eq!(shown(Path::new("/a"), Some(Path::new("/a"))), "/a");
    }

    #[test]
    fn dangling_symlinks_are_named_and_refused() {
        let (t, r) = image();
        let (state, _) = look(&r, "/var/lock/app");
        assert_eq!(
            state,
            DestState::Dangling("/var/lock".into(), "/run/lock".into())
        );
        let e = r
            .check_dest(Path::new("/var/lock/app"), true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(
                "/var/lock is a symlink in the image to /run/lock, which does not exist there"
            ),
            "{e}"
        );
        // A relative link climbing out is the root's /tmp/…: dangling there.
        let (state, _) = look(&r, "/rel/x");
        assert!(
            matches!(state, DestState::Dangling(ref l, _) if l == Path::new("/rel")),
            "{state:?}"
        );
        assert!(r.prepare_dest(Path::new("/rel/x"), true).is_err());
        assert!(r.prepare_dest(Path::new("/var/lock/app"), true).is_err());
        assert!(
            !t.path().join("run/lock").exists(),
            "nothing made through the link"
        );
        assert!(!t.path().join("tmp").exists());
        assert!(
            !Path::new("/tmp/nowhere-ovh").exists(),
            "nothing on the host"
        );
    }

    #[test]
    fn reserved_resolutions_are_refused() {
        let (_t, r) = image();
        let e = r
            .check_dest(Path::new("/up"), true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/up → /") && e.contains("container's root"),
            "{e}"
        );
        let e = r
            .check_dest(Path::new("/p/x"), true)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/p/x → /proc/x") && e.contains("/proc, which the runtime owns"),
            "{e}"
        );
        assert_eq!(
            reserved(Path::new("/")),
            Some("the container's root \"/\"".into())
        );
        assert!(reserved(Path::new("/devices")).is_none());
        assert!(reserved(Path::new("/sys/x")).is_some());
    }

    #[test]
    fn prepare_creates_below_the_resolved_directory() {
        let (t, r) = image();
        let (_h, at) = r.prepare_dest(Path::new("/var/run/app/sub"), true).unwrap();
        assert_eq!(at, PathBuf::from("/run/app/sub"));
        assert!(t.path().join("run/app/sub").is_dir());
        assert!(
            t.path().join("var/run").is_symlink(),
            "the link is left alone"
        );
        let (_h, at) = r.prepare_dest(Path::new("/var/run2/f"), false).unwrap();
        assert_eq!(at, PathBuf::from("/run/f"));
        assert!(t.path().join("run/f").is_file());
        let (_h, at) = r.prepare_dest(Path::new("/motd"), false).unwrap();
        assert_eq!(at, PathBuf::from("/etc/motd"));
        assert_eq!(
            std::fs::read_to_string(t.path().join("etc/motd")).unwrap(),
            "hi"
        );
        assert!(
            r.prepare_dest(Path::new("/motd"), true).is_err(),
            "a file for a directory"
        );
    }
}
