//! Apply, the fifth layer: the side effects, on the host and in the container. Open (or
//! create) each source, relabel it (z/Z), give it to the container's user
//! (U), clone it with its attributes (and idmap), then enter the container's
//! mount namespace and attach each tree onto its destination.
//!
//! Errors here are [`ApplyError`]s that keep their errno; [`attach`] names
//! the volume each one concerns ([`AttachError`]), and the command layer
//! turns that into the one user-facing line.

pub mod archive;
mod error;
pub(crate) mod mount;
pub(crate) mod nfs;
pub(crate) mod ns;
pub mod owner;
pub mod relabel;
pub(crate) mod rootfs;
pub(crate) mod source;
pub(crate) mod staging;
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

/// The sources of a plan, opened and checked on their fds, nothing changed
/// yet: the sources that exist are open; `None` stands for an NFS export
/// and for a managed volume still to be created.
pub(crate) struct Sources<'p> {
    plan: &'p MountPlan,
    /// The container's user namespace, for idmapped volumes.
    userns: Option<OwnedFd>,
    sources: Vec<Option<OpenedSource>>,
    /// Who may own the directories on the way (root; in rootless mode the
    /// user too), and who owns a new `volumes_root`.
    owners: crate::fd::Owners,
}

/// A volume ready to attach: its source (created, relabelled, owned as
/// planned) and a detached clone of it with the volume's attributes.
pub(crate) struct Prepared<'p> {
    pub step: &'p MountStep,
    pub source: OpenedSource,
    pub tree: OwnedFd,
}

/// A plan whose every check passed, with nothing changed yet: the sources
/// are open and checked, the destinations were looked at in the container's
/// mount namespace.
pub(crate) struct Checked<'p> {
    sources: Sources<'p>,
    ns: ns::MountNs,
    rootfs: RootFs,
    /// Each step's destination as it resolved in the rootfs, in plan order.
    resolved: Vec<PathBuf>,
}

/// What identifies a step's volume for claims: its host path (the real
/// path of what was opened) and, when it exists, its root's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceKey {
    pub path: PathBuf,
    pub id: Option<(u64, u64)>,
}

fn about(step: &MountStep) -> impl FnOnce(ApplyError) -> AttachError {
    let subject = volume_subject(&step.spec);
    move |error: ApplyError| AttachError { subject, error }
}

fn container(error: ApplyError) -> AttachError {
    AttachError {
        subject: "container".into(),
        error,
    }
}

/// Open every source of `plan` that exists and check it (trusted path, kind,
/// idmappable where idmap is asked for with `userns`), changing nothing.
pub(crate) fn open_sources(
    plan: &MountPlan,
    userns: Option<OwnedFd>,
    owners: crate::fd::Owners,
) -> Result<Sources<'_>, AttachError> {
    let mut sources = Vec::with_capacity(plan.steps.len());
    for step in &plan.steps {
        let source = match &step.source {
            SourceStep::Nfs(_) => None,
            _ => source::open(&step.source, owners).map_err(about(step))?,
        };
        if let (Some(s), true) = (&source, step.idmap) {
            idmappable(s).map_err(about(step))?;
        }
        sources.push(source);
    }
    Ok(Sources {
        plan,
        userns,
        sources,
        owners,
    })
}

impl<'p> Sources<'p> {
    /// Each step's claim key, in plan order.
    pub(crate) fn keys(&self) -> Vec<SourceKey> {
        self.plan
            .steps
            .iter()
            .zip(&self.sources)
            .map(|(step, source)| match source {
                Some(s) => SourceKey {
                    path: crate::fd::real_path(s.fd.as_fd()).unwrap_or_else(|_| s.path.clone()),
                    id: Some(s.id),
                },
                None => SourceKey {
                    path: step.source_key(),
                    id: None,
                },
            })
            .collect()
    }

    /// The changes, once every check passed, in the host mount namespace:
    /// create, relabel and chown each source, mount NFS exports, and clone
    /// each with its attributes (and idmap). No U, z or Z walk changes a
    /// `protected` directory.
    pub(crate) fn prepare(self, protected: &Protected) -> Result<Vec<Prepared<'p>>, AttachError> {
        let Sources {
            plan,
            userns,
            sources,
            owners,
        } = self;
        let mut prepared = Vec::with_capacity(plan.steps.len());
        let nfs_not_after = std::time::Instant::now() + nfs::BUDGET;
        for (step, source) in plan.steps.iter().zip(sources) {
            let prepared_one = match (&step.source, source) {
                (SourceStep::Nfs(n), _) => nfs_source(step, n, nfs_not_after),
                (_, Some(source)) => prepare(step, source, userns.as_ref(), protected),
                (_, None) => source::create(&step.source, owners)
                    .and_then(|s| prepare(step, s, userns.as_ref(), protected)),
            };
            let (source, tree) = prepared_one.map_err(about(step))?;
            prepared.push(Prepared { step, source, tree });
        }
        Ok(prepared)
    }
}

impl Checked<'_> {
    /// Each step's claim key, in plan order.
    pub(crate) fn keys(&self) -> Vec<SourceKey> {
        self.sources.keys()
    }
}

/// Every check that can refuse a start and that needs the host or the
/// container, before any change: the container's mount namespace is not the
/// hook's own; every source that exists opens and passes its checks; an
/// idmapped volume can be idmapped; every destination can take its volume.
pub(crate) fn check(
    plan: &MountPlan,
    pid: i32,
    owners: crate::fd::Owners,
) -> Result<Checked<'_>, AttachError> {
    let ns = ns::MountNs::of(pid).map_err(|e| {
        container(if e.raw_os_error() == Some(libc::EEXIST) {
            ApplyError::denied(format!(
                "pid {pid} is in the hook's own mount namespace, so it is not a container being created; refusing to mount anything there"
            ))
            .hint("the hook must run at prestart/createRuntime for a container with its own mount namespace")
        } else {
            ApplyError::sys(format!("open the mount namespace of pid {pid}"), e)
                .hint("the hook must run at prestart/createRuntime, as root")
        })
    })?;
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
    let sources = open_sources(plan, userns, owners)?;
    // Destinations, as the container will see them, without creating any.
    ns.enter().map_err(|e| {
        container(
            ApplyError::sys(format!("setns into the mount namespace of pid {pid}"), e)
                .hint("the hook must run at prestart/createRuntime, as root"),
        )
    })?;
    let looked = look_at_destinations(plan, &sources.sources);
    ns.leave().map_err(|e| {
        container(ApplyError::sys(
            "setns back into the hook's own mount namespace",
            e,
        ))
    })?;
    let (rootfs, resolved) = looked?;
    Ok(Checked {
        sources,
        ns,
        rootfs,
        resolved,
    })
}

/// Look at each destination in the rootfs, symlinks in the image resolved
/// inside it; refuse two volumes that resolve to one place (written
/// differently, e.g. `/var/run/app` and `/run/app`).
fn look_at_destinations(
    plan: &MountPlan,
    sources: &[Option<OpenedSource>],
) -> Result<(RootFs, Vec<PathBuf>), AttachError> {
    let rootfs = RootFs::open(&plan.root).map_err(|error| AttachError {
        subject: "rootfs".into(),
        error,
    })?;
    let mut resolved: Vec<PathBuf> = Vec::with_capacity(plan.steps.len());
    for (step, source) in plan.steps.iter().zip(sources) {
        // Managed volumes to be created and NFS exports are directories.
        let dir = source.as_ref().is_none_or(|s| s.is_dir);
        let r = rootfs.check_dest(&step.dest, dir).map_err(about(step))?;
        if let Some(other) = resolved.iter().position(|o| o == &r) {
            return Err(about(step)(
                ApplyError::unusable(format!(
                    "destination {} resolves, through symlinks in the image, to {}, where volume {} goes too",
                    rootfs::shown(&step.dest, Some(&r)),
                    r.display(),
                    crate::error::quote(&plan.steps[other].spec)
                ))
                .hint("give each volume its own destination"),
            ));
        }
        resolved.push(r);
    }
    Ok((rootfs, resolved))
}

/// Steps 3 and 4 of prestart, once every check passed: prepare each volume
/// in the host mount namespace, then attach each in the container's.
/// Returns each volume's host path and identity, in plan order.
pub(crate) fn attach(
    checked: Checked<'_>,
    protected: &Protected,
) -> Result<Vec<SourceKey>, AttachError> {
    let Checked {
        sources,
        ns,
        rootfs,
        resolved,
    } = checked;
    let prepared = sources.prepare(protected)?;
    // Parents before children as they resolved (the plan orders the
    // destinations as written; a symlink can nest them the other way).
    let mut order: Vec<usize> = (0..prepared.len()).collect();
    order.sort_by_key(|&i| resolved.get(i).map_or(0, |r| r.components().count()));
    ns.enter().map_err(|e| {
        container(
            ApplyError::sys("setns into the container's mount namespace", e)
                .hint("the hook must run at prestart/createRuntime, as root"),
        )
    })?;
    for p in order.iter().map(|&i| &prepared[i]) {
        let (target, at) = rootfs
            .prepare_dest(&p.step.dest, p.source.is_dir)
            .map_err(about(p.step))?;
        let at = if at == p.step.dest {
            at.display().to_string()
        } else {
            format!("{} (→ {})", p.step.dest.display(), at.display())
        };
        mount::attach(&p.tree, target.as_fd())
            .map_err(|e| about(p.step)(ApplyError::sys(format!("move_mount onto {at}"), e)))?;
        info!(
            "attached {} on {at} ({})",
            p.source.path.display(),
            attrs_list(p.step)
        );
    }
    Ok(prepared
        .into_iter()
        .map(|p| SourceKey {
            path: p.source.path,
            id: Some(p.source.id),
        })
        .collect())
}

/// Option idmap: refuse a source on a file system that cannot be idmapped.
fn idmappable(source: &OpenedSource) -> Result<(), ApplyError> {
    let not = mount::not_idmappable(source.fd.as_fd())
        .map_err(|e| ApplyError::sys(format!("fstatfs {}", source.path.display()), e))?;
    match not {
        None => Ok(()),
        Some(fs) => Err(ApplyError::unusable(format!(
            "option idmap: {} is on {fs}, which cannot be idmapped",
            source.path.display()
        ))
        .hint("use option U instead, which changes the owner of the files")),
    }
}

/// Relabel a bind volume's source, give it to the container's user, and
/// clone it detached with its attributes.
fn prepare(
    step: &MountStep,
    source: OpenedSource,
    userns: Option<&OwnedFd>,
    protected: &Protected,
) -> Result<(OpenedSource, OwnedFd), ApplyError> {
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
    if step.idmap && source.created {
        idmappable(&source)?;
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
    let st =
        rustix::fs::fstat(&fd).map_err(|e| ApplyError::sys(format!("fstat {}", m.display), e))?;
    let source = OpenedSource {
        fd,
        path: n.volume.key(),
        is_dir: true,
        created: m.created,
        id: (st.st_dev, st.st_ino),
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
