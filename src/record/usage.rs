//! Per-volume usage of managed volumes: when a container last attached and
//! detached it, and how many starts it has seen. Kept as one small JSON
//! xattr, [`USAGE_XATTR`], on the volume's root:
//!
//! - it lives and dies with the volume (nothing to clean after `volumes
//!   rm`), and survives reboots (the state dir is on /run);
//! - `trusted.*`: containers cannot forge it (CAP_SYS_ADMIN in the initial
//!   user namespace is needed), as the relabel and owner markers;
//! - updated under the claims lock, so concurrent starts do not lose a count.
//!
//! Best effort: a file system without `trusted.*` xattrs, or a volume gone,
//! only costs the history (logged at debug); nothing here fails a start.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{fgetxattr, fsetxattr, OFlags, XattrFlags};
use serde::{Deserialize, Serialize};

use super::{now, Record, StateDir};

pub const USAGE_XATTR: &str = "trusted.oci-volume-hook.usage";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Seconds since the epoch of the last attach (a container start).
    #[serde(default)]
    pub last_attach: Option<u64>,
    /// Seconds since the epoch of the last detach (poststop).
    #[serde(default)]
    pub last_detach: Option<u64>,
    /// Starts (attaches) recorded since the volume was created.
    #[serde(default)]
    pub starts: u64,
}

impl Usage {
    /// When it was last used: the later of attach and detach.
    pub fn last_used(&self) -> Option<u64> {
        self.last_attach.max(self.last_detach)
    }
}

/// The usage recorded on a volume root (any fd but O_PATH); `None` when
/// none is (or it cannot be read).
pub fn read(fd: BorrowedFd<'_>) -> Option<Usage> {
    let mut buf = [0u8; 512];
    let n = fgetxattr(fd, USAGE_XATTR, &mut buf[..]).ok()?;
    serde_json::from_slice(&buf[..n]).ok()
}

fn write(fd: BorrowedFd<'_>, u: &Usage) -> rustix::io::Result<()> {
    let json = serde_json::to_vec(u).unwrap_or_default();
    fsetxattr(fd, USAGE_XATTR, &json, XattrFlags::empty())
}

/// Open `volumes_root` for later updates, in the host mount namespace (the
/// hook enters the container's before it could note an attach).
pub fn open_root(volumes_root: &Path, owners: crate::fd::Owners) -> Option<OwnedFd> {
    crate::fd::open_trusted(volumes_root, owners).ok()
}

/// Note that `record`'s container attached its managed volumes.
pub fn attached(records: &StateDir, root: Option<&OwnedFd>, volumes_root: &Path, record: &Record) {
    update(records, root, volumes_root, record, |u, t| {
        u.last_attach = Some(t);
        u.starts = u.starts.saturating_add(1);
    });
}

/// Note that `record`'s container released its managed volumes.
pub fn detached(records: &StateDir, root: Option<&OwnedFd>, volumes_root: &Path, record: &Record) {
    update(records, root, volumes_root, record, |u, t| {
        u.last_detach = Some(t)
    });
}

fn update(
    records: &StateDir,
    root: Option<&OwnedFd>,
    volumes_root: &Path,
    record: &Record,
    change: impl Fn(&mut Usage, u64),
) {
    let Some(root) = root else {
        log::debug!(
            "volume usage not recorded: volumes_root {} cannot be opened",
            volumes_root.display()
        );
        return;
    };
    let _lock = records.lock().ok();
    let t = now();
    let mut done: Vec<&str> = Vec::new();
    for v in &record.volumes {
        let Some(name) = v.name.as_deref() else {
            continue;
        };
        // Managed volumes only, each once per container.
        if v.source != volumes_root.join(name) || done.contains(&name) {
            continue;
        }
        done.push(name);
        let fd =
            match crate::fd::open_beneath(root.as_fd(), name, OFlags::RDONLY | OFlags::DIRECTORY) {
                Ok(fd) => fd,
                Err(e) => {
                    log::debug!("volume {name}: usage not recorded: {e}");
                    continue;
                }
            };
        if let (Some(id), Ok(st)) = (v.id, rustix::fs::fstat(&fd)) {
            if (st.st_dev, st.st_ino) != id {
                log::debug!("volume {name}: replaced since the start; usage not recorded");
                continue;
            }
        }
        let mut u = read(fd.as_fd()).unwrap_or_default();
        change(&mut u, t);
        if let Err(e) = write(fd.as_fd(), &u) {
            log::debug!("volume {name}: usage not recorded: setxattr {USAGE_XATTR}: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_used_is_the_later_time() {
        let u = Usage {
            last_attach: Some(10),
            last_detach: Some(20),
            starts: 2,
        };
        assert_eq!(u.last_used(), Some(20));
        assert_eq!(Usage::default().last_used(), None);
        let old: Usage = serde_json::from_str(r#"{"starts":3}"#).unwrap();
        assert_eq!(old.starts, 3);
    }
}
