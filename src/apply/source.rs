//! Volume sources on the host: managed volumes under `volumes_root`
//! (created race-free, never through a symlink), admin paths, and allowed
//! host paths re-checked on the opened fd.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{fchmod, fchown, fstat, mkdirat, openat, FileType, Gid, Mode, OFlags, Uid, CWD};
use rustix::io::Errno;

use crate::apply::ApplyError;
use crate::fd::real_path;
use crate::plan::{NewDir, SourceStep};

/// An opened volume source.
pub struct OpenedSource {
    pub fd: OwnedFd,
    /// The host path, for messages and records.
    pub path: PathBuf,
    pub is_dir: bool,
    /// This call created the volume directory.
    pub created: bool,
}

pub fn open(step: &SourceStep) -> Result<OpenedSource, ApplyError> {
    let (fd, path, created) = match step {
        SourceStep::Managed { root, name, create } => {
            let (fd, created) = open_managed(root, name, *create)?;
            (fd, root.join(name), created)
        }
        SourceStep::Admin { path } => {
            let fd =
                openat(CWD, path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
                    ApplyError::sys(format!("admin volume path {}", path.display()), e)
                        .hint("create it on the host, or fix the volume's path in the config")
                })?;
            (fd, path.clone(), false)
        }
        SourceStep::Host { path, allowed_by } => {
            let fd =
                openat(CWD, path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).map_err(|e| {
                    ApplyError::sys(format!("host path {}", path.display()), e)
                        .hint("create it on the host, or fix the annotation")
                })?;
            // The policy checked the resolved path; check the object we hold,
            // so a symlink swapped in since then is caught.
            let real = real_path(fd.as_fd())
                .map_err(|e| ApplyError::sys("reading the path of an open source", e))?;
            if !real.starts_with(allowed_by) {
                return Err(ApplyError::denied(format!(
                    "host path {} now resolves to {}, outside allowed_host_paths entry {}",
                    path.display(),
                    real.display(),
                    allowed_by.display()
                )));
            }
            (fd, real, false)
        }
        SourceStep::Nfs(n) => {
            return Err(ApplyError::unusable(format!(
                "{} is an NFS export, mounted by apply::nfs::mount",
                n.volume.display()
            )))
        }
    };
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
    })
}

/// Create `root` if needed: parents 0755, `root` itself 0700 root:root so
/// that other host users cannot reach volume data.
pub fn ensure_volumes_root(root: &Path) -> Result<OwnedFd, ApplyError> {
    let fail =
        |what: &str, e: std::io::Error| ApplyError::sys(format!("{what} {}", root.display()), e);
    if let Some(parent) = root.parent() {
        std::fs::create_dir_all(parent).map_err(|e| fail("create parent of", e))?;
    }
    match rustix::fs::mkdir(root, Mode::from_raw_mode(0o700)) {
        Ok(()) => {
            let fd = openat(
                CWD,
                root,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| fail("open", e.into()))?;
            fchown(&fd, Some(Uid::ROOT), Some(Gid::ROOT)).map_err(|e| fail("chown", e.into()))?;
            fchmod(&fd, Mode::from_raw_mode(0o700)).map_err(|e| fail("chmod", e.into()))?;
        }
        Err(Errno::EXIST) => {}
        Err(Errno::ROFS) => {
            return Err(ApplyError::unusable(format!(
                "create {}: read-only file system",
                root.display()
            )))
        }
        Err(e) => return Err(fail("create", e.into())),
    }
    openat(
        CWD,
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail("open", e.into()))
}

fn open_managed(
    root: &Path,
    name: &str,
    create: Option<NewDir>,
) -> Result<(OwnedFd, bool), ApplyError> {
    let path = root.join(name);
    let root_fd = ensure_volumes_root(root)?;
    let mut created = false;
    if let Some(new) = create {
        match mkdirat(&root_fd, name, Mode::from_raw_mode(0o700)) {
            Ok(()) => created = true,
            Err(Errno::EXIST) => {}
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
        }
        if created {
            // Owner and mode are set on the fd of the directory we just made,
            // before anyone can use it (it was created 0700 root).
            let fd = open_beneath(&root_fd, name, OFlags::RDONLY).map_err(|e| refuse(&path, e))?;
            fchown(
                &fd,
                Some(Uid::from_raw(new.uid)),
                Some(Gid::from_raw(new.gid)),
            )
            .and_then(|_| fchmod(&fd, Mode::from_raw_mode(new.mode)))
            .map_err(|e| {
                ApplyError::sys(format!("set owner of new volume {}", path.display()), e)
            })?;
            return Ok((fd, true));
        }
    }
    let fd = open_beneath(&root_fd, name, OFlags::PATH).map_err(|e| refuse(&path, e))?;
    Ok((fd, created))
}

/// Open the directory `name` directly under `dir`: never through a
/// symlink, never out.
fn open_beneath(dir: &OwnedFd, name: &str, mode: OFlags) -> Result<OwnedFd, Errno> {
    crate::fd::open_beneath(dir.as_fd(), name, mode | OFlags::DIRECTORY)
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
