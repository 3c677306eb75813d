//! Volume sources on the host: managed volumes under `volumes_root`
//! (created race-free, never through a symlink), admin paths, and allowed
//! host paths.
//!
//! Two steps, so that every check runs before any change: [`open`] opens
//! what exists and checks it (no symlink on the way, every directory above
//! an admin path or an allowed entry owned by root and writable by no one
//! else, the object's identity), changing nothing; [`create`] then makes a
//! managed volume that did not exist yet.

use std::ffi::OsStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{fchmod, fchown, fstat, mkdirat, openat, FileType, Gid, Mode, OFlags, Uid};
use rustix::io::Errno;

use crate::apply::ApplyError;
use crate::fd::{open_beneath, open_trusted, Owners, TrustError};
use crate::plan::SourceStep;

/// An opened volume source.
pub struct OpenedSource {
    pub fd: OwnedFd,
    /// The host path, for messages and records.
    pub path: PathBuf,
    pub is_dir: bool,
    /// This run created the volume directory.
    pub created: bool,
    /// The identity of the source's root (`st_dev`, `st_ino`): what claims
    /// and access modes are keyed on, however the volume was reached.
    pub id: (u64, u64),
}

/// Open the source of `step` and check it, changing nothing. `Ok(None)`:
/// a managed volume that does not exist yet and is planned for creation.
pub fn open(step: &SourceStep, owners: Owners) -> Result<Option<OpenedSource>, ApplyError> {
    let (fd, path) = match step {
        SourceStep::Managed { root, name, create } => {
            let root_fd = match open_volumes_root(root, owners) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create.is_some() => return Ok(None),
                Err(e) => return Err(volumes_root_error(root, e, owners)),
            };
            check_volumes_root(&root_fd, root, owners)?;
            let path = root.join(name);
            match open_beneath(
                root_fd.as_fd(),
                name.as_str(),
                OFlags::PATH | OFlags::DIRECTORY,
            ) {
                Ok(fd) => (fd, path),
                Err(Errno::NOENT) if create.is_some() => return Ok(None),
                Err(e) => return Err(refuse(&path, e)),
            }
        }
        SourceStep::Admin { path } => {
            let fd = open_trusted(path, owners).map_err(|e| match e {
                TrustError::Io { source, .. } => {
                    ApplyError::sys(format!("admin volume path {}", path.display()), source)
                        .hint("create it on the host, or fix the volume's path in the config")
                }
                e => untrusted("admin volume path", path, e),
            })?;
            (fd, path.clone())
        }
        SourceStep::Host { path, allowed_by } => {
            let entry = open_trusted(allowed_by, owners).map_err(|e| match e {
                TrustError::Io { source, .. } => ApplyError::sys(
                    format!("allowed_host_paths entry {}", allowed_by.display()),
                    source,
                )
                .hint("the admin must create it, or fix allowed_host_paths"),
                e => untrusted("allowed_host_paths entry", allowed_by, e),
            })?;
            // Below the entry: never through a symlink, never out of it. The
            // policy resolved `path`, so a symlink found now was swapped in.
            let fd = match path.strip_prefix(allowed_by) {
                Ok(rel) if rel.as_os_str().is_empty() => entry,
                Ok(rel) => open_beneath(entry.as_fd(), rel, OFlags::PATH).map_err(|e| match e {
                    Errno::LOOP | Errno::XDEV => ApplyError::denied(format!(
                        "host path {} now leads through a symlink below allowed_host_paths entry {}",
                        path.display(),
                        allowed_by.display()
                    ))
                    .hint("replace the symlink with the directory it names, or ask for that path"),
                    e => ApplyError::sys(format!("host path {}", path.display()), e)
                        .hint("create it on the host, or fix the annotation"),
                })?,
                Err(_) => {
                    return Err(ApplyError::denied(format!(
                        "host path {} is outside allowed_host_paths entry {}",
                        path.display(),
                        allowed_by.display()
                    )))
                }
            };
            (fd, path.clone())
        }
        SourceStep::Nfs(n) => {
            return Err(ApplyError::unusable(format!(
                "{} is an NFS export, mounted by apply::nfs::mount",
                n.volume.display()
            )))
        }
    };
    describe(fd, path, false).map(Some)
}

/// Create the managed volume `step` plans (after every check passed):
/// `volumes_root` as needed, then the volume, owned as planned.
pub fn create(step: &SourceStep, owners: Owners) -> Result<OpenedSource, ApplyError> {
    let SourceStep::Managed {
        root,
        name,
        create: Some(new),
    } = step
    else {
        return Err(ApplyError::unusable(
            "only a managed volume planned for creation can be created",
        ));
    };
    let path = root.join(name);
    let root_fd = ensure_volumes_root(root, owners)?;
    let created = match mkdirat(&root_fd, name.as_str(), Mode::from_raw_mode(0o700)) {
        Ok(()) => true,
        // Another container created it meanwhile: use it as it is.
        Err(Errno::EXIST) => false,
        Err(e) => {
            return Err(
                ApplyError::sys(format!("create volume {}", path.display()), e).hint(
                    if e == Errno::ROFS || e == Errno::NOSPC {
                        "the volumes_root file system is read-only or full; free space or fix volumes_root"
                    } else {
                        "check volumes_root in the config"
                    },
                ),
            )
        }
    };
    let flags = if created {
        OFlags::RDONLY | OFlags::DIRECTORY
    } else {
        OFlags::PATH | OFlags::DIRECTORY
    };
    let fd = open_beneath(root_fd.as_fd(), name.as_str(), flags).map_err(|e| refuse(&path, e))?;
    if created {
        // Owner and mode are set on the fd of the directory we just made,
        // before anyone can use it (it was created 0700 root).
        fchown(
            &fd,
            Some(Uid::from_raw(new.uid)),
            Some(Gid::from_raw(new.gid)),
        )
        .and_then(|_| fchmod(&fd, Mode::from_raw_mode(new.mode)))
        .map_err(|e| ApplyError::sys(format!("set owner of new volume {}", path.display()), e))?;
    }
    describe(fd, path, created)
}

/// The kind and identity of an opened source.
fn describe(fd: OwnedFd, path: PathBuf, created: bool) -> Result<OpenedSource, ApplyError> {
    let st = fstat(&fd).map_err(|e| ApplyError::sys(format!("fstat {}", path.display()), e))?;
    let is_dir = match FileType::from_raw_mode(st.st_mode) {
        FileType::Directory => true,
        FileType::RegularFile => false,
        other => {
            return Err(ApplyError::unusable(format!(
                "source {} is a {other:?}, not a directory or regular file",
                path.display()
            )))
        }
    };
    Ok(OpenedSource {
        fd,
        path,
        is_dir,
        created,
        id: (st.st_dev, st.st_ino),
    })
}

/// Whether host users other than root can reach `path`: every directory
/// from `/` down to it grants search permission to others. Such a volume
/// must not be written by a container without a user namespace (its files
/// are host root's), nor idmapped. `None` when they cannot (or on error).
pub fn reachable_by_others(path: &Path) -> Option<String> {
    let mut at = PathBuf::from("/");
    let mut dirs = vec![at.clone()];
    for c in path.components() {
        if let Component::Normal(n) = c {
            at.push(n);
            dirs.push(at.clone());
        }
    }
    for d in &dirs {
        let st = rustix::fs::lstat(d.as_path()).ok()?;
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory && st.st_mode & 0o001 == 0 {
            return None;
        }
    }
    Some(format!(
        "host users other than root can reach {} (every directory on the way, itself included, lets others search it); a container without a user namespace writes there as host root",
        path.display()
    ))
}

fn untrusted(what: &str, path: &Path, e: TrustError) -> ApplyError {
    ApplyError::denied(format!(
        "{what} {} cannot be used safely: {e}",
        path.display()
    ))
    .hint("the admin must make every directory above it root-owned and writable by no one else, with no symlink on the way (see oci-volume-hook.conf(5))")
}

/// Open an existing `volumes_root` with the checks of [`open`] (no symlink
/// on the way, root-owned, writable by no one else); `Ok(None)` when it does
/// not exist. For the operator's `volumes` commands.
pub(crate) fn open_checked_volumes_root(
    root: &Path,
    owners: Owners,
) -> Result<Option<OwnedFd>, ApplyError> {
    let fd = match open_volumes_root(root, owners) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(volumes_root_error(root, e, owners)),
    };
    check_volumes_root(&fd, root, owners)?;
    Ok(Some(fd))
}

/// Open `volumes_root` without following a symlink anywhere on the way.
fn open_volumes_root(root: &Path, owners: Owners) -> Result<OwnedFd, Errno> {
    open_trusted(root, owners).map_err(|e| match e {
        TrustError::Io { source, .. } => Errno::from_io_error(&source).unwrap_or(Errno::IO),
        TrustError::Symlink { .. } => Errno::LOOP,
        TrustError::Owner { .. } | TrustError::Writable { .. } => Errno::PERM,
    })
}

fn volumes_root_error(root: &Path, e: Errno, owners: Owners) -> ApplyError {
    match open_trusted(root, owners) {
        Err(t @ (TrustError::Symlink { .. } | TrustError::Owner { .. } | TrustError::Writable { .. })) => {
            ApplyError::denied(format!("volumes_root {} cannot be used safely: {t}", root.display()))
                .hint("volumes_root and every directory above it must be root-owned, writable by no one else, with no symlink on the way")
        }
        _ => ApplyError::sys(format!("open volumes_root {}", root.display()), e)
            .hint("check volumes_root in the config"),
    }
}

/// `volumes_root` itself: a directory owned by root (in rootless mode: by
/// the user) that no one else may write, so that other host users cannot
/// plant or swap volumes.
fn check_volumes_root(fd: &OwnedFd, root: &Path, owners: Owners) -> Result<(), ApplyError> {
    let st = fstat(fd).map_err(|e| ApplyError::sys(format!("fstat {}", root.display()), e))?;
    let mode = st.st_mode & 0o7777;
    let why = if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        Some("is not a directory".to_string())
    } else if st.st_uid != owners.own() {
        Some(match owners.user {
            None => format!("is owned by uid {}, not root", st.st_uid),
            Some(u) => format!("is owned by uid {}, not the user (uid {u} here)", st.st_uid),
        })
    } else if mode & 0o022 != 0 {
        Some(format!("is writable by others (mode {mode:04o})"))
    } else {
        None
    };
    match why {
        None => Ok(()),
        Some(why) => Err(ApplyError::denied(format!(
            "volumes_root {} {why}",
            root.display()
        ))
        .hint("volumes_root must be a root-owned directory that no one else can write (the hook creates it 0700)")),
    }
}

/// Create `root` if needed, never through a symlink: missing parents 0755,
/// `root` itself 0700, all root-owned (in rootless mode: the user's);
/// existing ones must pass the same checks as [`open`]'s.
pub fn ensure_volumes_root(root: &Path, owners: Owners) -> Result<OwnedFd, ApplyError> {
    let fail =
        |what: &str, p: &Path, e: Errno| ApplyError::sys(format!("{what} {}", p.display()), e);
    let names: Vec<&OsStr> = root
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut at = PathBuf::from("/");
    let mut cur = rustix::fs::open(
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail("open", &at, e))?;
    for (i, name) in names.iter().enumerate() {
        at.push(name);
        let last = i + 1 == names.len();
        let mode = if last { 0o700 } else { 0o755 };
        match mkdirat(&cur, *name, Mode::from_raw_mode(mode)) {
            Ok(()) => {
                // Ours: set root:root and the mode on the new directory.
                let fd = openat(
                    &cur,
                    *name,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(|e| fail("open", &at, e))?;
                let own = owners.own();
                fchown(&fd, Some(Uid::from_raw(own)), Some(Gid::from_raw(own)))
                    .map_err(|e| fail("chown", &at, e))?;
                fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| fail("chmod", &at, e))?;
            }
            Err(Errno::EXIST) => {}
            Err(Errno::ROFS) => {
                return Err(ApplyError::unusable(format!(
                    "create {}: read-only file system",
                    at.display()
                )))
            }
            Err(e) => return Err(fail("create", &at, e)),
        }
        cur = openat(
            &cur,
            *name,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| match e {
            Errno::NOTDIR | Errno::LOOP => volumes_root_error(root, e, owners),
            e => fail("open", &at, e),
        })?;
    }
    // Every component is now there: the same checks as a plain open.
    let fd = open_volumes_root(root, owners).map_err(|e| volumes_root_error(root, e, owners))?;
    check_volumes_root(&fd, root, owners)?;
    Ok(fd)
}

fn refuse(path: &Path, e: Errno) -> ApplyError {
    match e {
        Errno::NOENT => ApplyError::unusable(format!("volume {} does not exist", path.display()))
            .hint("it was removed while the hook ran; start the container again"),
        Errno::LOOP | Errno::NOTDIR | Errno::XDEV => ApplyError::unusable(format!(
            "{} is a symlink or not a directory; refusing to use it as a volume",
            path.display()
        ))
        .hint("an admin must remove or fix it"),
        e => ApplyError::sys(format!("open volume {}", path.display()), e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn reachable_by_others_needs_search_on_every_directory() {
        let t = tempfile::tempdir().unwrap();
        let vol = t.path().join("vol");
        std::fs::create_dir(&vol).unwrap();
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert_eq!(reachable_by_others(&vol), None, "a 0700 parent hides it");
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o755)).unwrap();
        let w = reachable_by_others(&vol).expect("searchable all the way");
        assert!(w.contains("host users other than root can reach"), "{w}");
        std::fs::set_permissions(&vol, std::fs::Permissions::from_mode(0o750)).unwrap();
        assert_eq!(reachable_by_others(&vol), None, "the volume itself closed");
    }
}
