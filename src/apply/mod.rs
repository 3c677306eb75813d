//! Apply, the fifth layer: the side effects, on the host and in the container. Open (or
//! create) each source, relabel it (z/Z), give it to the container's user
//! (U), clone it with its attributes (and idmap), then enter the container's
//! mount namespace and attach each tree onto its destination.
//!
//! Errors here are [`ApplyError`]s that keep their errno; [`attach`] names
//! the volume each one concerns ([`AttachError`]), and the command layer
//! turns that into the one user-facing line.

mod error;
pub(crate) mod mount;
pub(crate) mod nfs;
pub(crate) mod ns;
pub mod owner;
pub mod relabel;
pub(crate) mod rootfs;
pub(crate) mod source;
pub(crate) mod walk;

pub use walk::Protected;

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use log::{debug, info};

pub use error::{ApplyError, AttachError};

use crate::error::volume_subject;
use crate::plan::{MountPlan, MountStep, NfsStep, SourceStep};
use rootfs::RootFs;
use source::OpenedSource;

/// Steps 3 and 4 of prestart: prepare every source in the host mount
/// namespace, then attach each in the container's. Returns each volume's
/// host path, in plan order. No U, z or Z walk changes a `protected`
/// directory.
pub(crate) fn attach(
    plan: &MountPlan,
    pid: i32,
    protected: &Protected,
) -> Result<Vec<PathBuf>, AttachError> {
    let about = |step: &MountStep| {
        let subject = volume_subject(&step.spec);
        move |error: ApplyError| AttachError { subject, error }
    };
    // The container's user namespace, for idmapped volumes, opened while
    // /proc is still the host's.
    let userns = match plan.steps.iter().find(|s| s.idmap) {
        Some(step) => Some(ns::open_user_ns(pid).map_err(|e| {
            let why = if e.raw_os_error() == Some(libc::EINVAL) {
                format!("option idmap: the container (pid {pid}) has no user namespace of its own")
            } else {
                format!("option idmap: open /proc/{pid}/ns/user: {e}")
            };
            about(step)(
                ApplyError::unusable(why)
                    .hint("use option U to give the volume to the container's user instead"),
            )
        })?),
        None => None,
    };
    let mut prepared: Vec<(&MountStep, OpenedSource, OwnedFd)> =
        Vec::with_capacity(plan.steps.len());
    let nfs_not_after = std::time::Instant::now() + nfs::BUDGET;
    for step in &plan.steps {
        let prepared_one = match &step.source {
            SourceStep::Nfs(n) => nfs_source(step, n, nfs_not_after),
            _ => prepare(step, userns.as_ref(), protected),
        };
        let (source, tree) = prepared_one.map_err(about(step))?;
        prepared.push((step, source, tree));
    }

    ns::enter_mount_ns(pid).map_err(|e| AttachError {
        subject: "container".into(),
        error: ApplyError::sys(format!("setns into the mount namespace of pid {pid}"), e)
            .hint("the hook must run at prestart/createRuntime, as root"),
    })?;
    let rootfs = RootFs::open(&plan.root).map_err(|error| AttachError {
        subject: "rootfs".into(),
        error,
    })?;
    for (step, source, tree) in &prepared {
        let target = rootfs
            .prepare_dest(&step.dest, source.is_dir)
            .map_err(about(step))?;
        mount::attach(tree, target.as_fd()).map_err(|e| {
            about(step)(ApplyError::sys(
                format!("move_mount onto {}", step.dest.display()),
                e,
            ))
        })?;
        info!(
            "attached {} on {} ({})",
            source.path.display(),
            step.dest.display(),
            attrs_list(step)
        );
    }
    Ok(prepared.into_iter().map(|(_, s, _)| s.path).collect())
}

/// Open (or create) a bind volume's source, relabel it, give it to the
/// container's user, and clone it detached with its attributes.
fn prepare(
    step: &MountStep,
    userns: Option<&OwnedFd>,
    protected: &Protected,
) -> Result<(OpenedSource, OwnedFd), ApplyError> {
    let source = source::open(&step.source)?;
    if source.created {
        info!("created volume {}", source.path.display());
    }
    // Relabel here, in the host mount namespace and before setns: the
    // walk's threads have all exited when it returns.
    if let Some((target, l)) = step
        .label
        .as_ref()
        .and_then(|l| l.context.as_deref().map(|c| (c, l)))
    {
        relabel::relabel(
            &source.fd,
            source.is_dir,
            target,
            l.policy,
            walk::default_threads(),
            protected,
        )?;
    }
    // Option U: in the host mount namespace, before setns (the walk's
    // threads are joined when it returns).
    if let Some(plan) = &step.owner {
        let done = owner::apply(
            source.fd.as_fd(),
            &source.path,
            plan,
            owner::default_threads(),
            protected,
        )?;
        match &done.decision {
            owner::OwnerDecision::Skip => debug!(
                "{}: already owned by {}:{} (marker set): no walk, {:?}",
                source.path.display(),
                plan.uid,
                plan.gid,
                done.elapsed
            ),
            owner::OwnerDecision::Walk(why) => info!(
                "{}: owner {}:{} given to {} of {} entries in {:?} ({why})",
                source.path.display(),
                plan.uid,
                plan.gid,
                done.changed,
                done.entries + 1,
                done.elapsed
            ),
        }
    }
    if step.idmap {
        let not = mount::not_idmappable(source.fd.as_fd())
            .map_err(|e| ApplyError::sys(format!("fstatfs {}", source.path.display()), e))?;
        if let Some(fs) = not {
            return Err(ApplyError::unusable(format!(
                "option idmap: {} is on {fs}, which cannot be idmapped",
                source.path.display()
            ))
            .hint("use option U instead, which changes the owner of the files"));
        }
    }
    let tree = mount::clone_tree(source.fd.as_fd())
        .map_err(|e| ApplyError::sys(format!("open_tree {}", source.path.display()), e))?;
    mount::set_attrs(tree.as_fd(), &step.attrs)
        .map_err(|e| ApplyError::sys(format!("mount_setattr {}", source.path.display()), e))?;
    if let (Some(userns), true) = (userns, step.idmap) {
        mount::set_idmap(tree.as_fd(), userns.as_fd()).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::EINVAL) => format!(
                    "option idmap: the file system of {} (or a mount below it) does not support idmapped mounts (mount_setattr: {e})",
                    source.path.display()
                ),
                Some(libc::EPERM) => format!(
                    "option idmap: the kernel did not permit idmapping {} (mount_setattr: {e})",
                    source.path.display()
                ),
                _ => format!("option idmap: mount_setattr {}: {e}", source.path.display()),
            };
            ApplyError::unusable(why)
                .hint("use option U instead, which changes the owner of the files")
        })?;
    }
    Ok((source, tree))
}

/// Mount an NFS export (host mount and network namespaces, within its
/// deadline) and give the detached mount the volume's attributes.
fn nfs_source(
    step: &MountStep,
    n: &NfsStep,
    not_after: std::time::Instant,
) -> Result<(OpenedSource, OwnedFd), ApplyError> {
    let context = step.label.as_ref().and_then(|l| l.context.as_deref());
    if context.is_none() && crate::input::selinux::selinux_enabled().is_ok() {
        log::warn!(
            "{}: {}",
            volume_subject(&step.spec),
            crate::input::selinux::boolean_note()
        );
    }
    let m = nfs::mount(n, context, not_after)?;
    mount::set_attrs(m.tree.as_fd(), &step.attrs)
        .map_err(|e| ApplyError::sys(format!("mount_setattr {}", m.display), e))?;
    if m.created {
        info!("created sub-directory {}", m.display);
    }
    info!("mounted NFS {} ({})", m.display, m.options);
    let fd = m.tree.try_clone().map_err(|e| ApplyError::sys("dup", e))?;
    let source = OpenedSource {
        fd,
        path: n.volume.key(),
        is_dir: true,
        created: m.created,
    };
    Ok((source, m.tree))
}

/// The attributes a volume was attached with, for the log.
fn attrs_list(step: &MountStep) -> String {
    let a = step.attrs;
    let mut v = vec![if a.read_only { "ro" } else { "rw" }];
    for (on, name) in [
        (a.nosuid, "nosuid"),
        (a.nodev, "nodev"),
        (a.noexec, "noexec"),
    ] {
        if on {
            v.push(name);
        }
    }
    if step.owner.is_some() {
        v.push("U");
    }
    if step.idmap {
        v.push("idmap");
    }
    v.join(",")
}
