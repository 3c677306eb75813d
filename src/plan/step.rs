//! What a plan is made of: ordered kernel steps, pure data.

use std::path::PathBuf;

use crate::config::{Access, OwnerChange, RelabelPolicy};
use crate::input::annotations::Relabel;
use crate::policy::NfsVolume;

/// Mount attributes applied atomically to the detached tree before it is
/// attached (mount_setattr), so there is no "bind, then remount ro" window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MountAttrs {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

/// How to obtain the source tree in the host mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceStep {
    /// Open `root/name` without following symlinks; when missing and
    /// `create` is set, mkdir it with that owner and mode.
    Managed {
        root: PathBuf,
        name: String,
        create: Option<NewDir>,
    },
    /// Open an admin-defined path.
    Admin { path: PathBuf },
    /// Open a host path and check, on the opened fd, that it is still under
    /// `allowed_by` (a symlink swapped in after the policy check is caught).
    Host { path: PathBuf, allowed_by: PathBuf },
    /// Mount an NFS export (`apply::nfs::mount`), within its deadline.
    Nfs(NfsStep),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewDir {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountStep {
    pub spec: String,
    pub name: Option<String>,
    pub source: SourceStep,
    /// Absolute path inside the container (resolved under `MountPlan::root`).
    pub dest: PathBuf,
    pub attrs: MountAttrs,
    /// SELinux relabelling (`z`/`Z` or the admin's default), done in the
    /// host mount namespace before the tree is cloned.
    pub label: Option<LabelPlan>,
    pub access: Access,
    pub exclusive_readers: bool,
    /// Option `U`: give the volume's files to the container's user.
    pub owner: Option<OwnerPlan>,
    /// Option `idmap`: idmap the mount into the container's user namespace.
    pub idmap: bool,
}

impl MountStep {
    /// What identifies the volume's data for access claims: its host path.
    pub fn source_key(&self) -> PathBuf {
        match &self.source {
            SourceStep::Managed { root, name, .. } => root.join(name),
            SourceStep::Admin { path } | SourceStep::Host { path, .. } => path.clone(),
            // The export (and sub-directory) on its server: claims on one
            // host only see this host's containers.
            SourceStep::Nfs(n) => n.volume.key(),
        }
    }
}

/// What to relabel a volume to and when (`z`/`Z`, or the admin's default).
/// For a bind volume the walk writes `context`; for NFS it is the mount's
/// `context=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelPlan {
    pub mode: Relabel,
    pub policy: RelabelPolicy,
    /// The file context the volume gets; `None` when SELinux is disabled on
    /// this host (z/Z then do nothing).
    pub context: Option<String>,
}

/// Option `U`: the on-disk owner every entry of the volume gets, and when
/// to walk the tree to give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerPlan {
    pub uid: u32,
    pub gid: u32,
    pub policy: OwnerChange,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountPlan {
    /// The container's rootfs in the runtime's mount namespace.
    pub root: PathBuf,
    /// Parents before children: a volume at /data is attached before one at
    /// /data/logs, so the second lands on top of the first.
    pub steps: Vec<MountStep>,
}

pub const NEW_VOLUME_MODE: u32 = 0o755;

/// The NFS step of a plan: the volume plus what the container adds. Its
/// `context=` is the step's [`LabelPlan`] context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsStep {
    pub volume: NfsVolume,
    /// Owner and mode of sub-directories created on first use.
    pub new_dir: NewDir,
}
