//! prestart / createRuntime: attach every requested volume, or fail closed.
//!
//! 1. decide: annotation → policy → plan (nothing touched yet);
//! 2. claim: under the claims lock, check exclusive volumes and private (Z)
//!    labels against live holders and write this container's record (a claim);
//! 3. host namespace: open, create, relabel (z/Z), give to the container's
//!    user (option U), clone, set attributes and idmap (option idmap) each
//!    source;
//! 4. container namespace: resolve each destination in the rootfs, attach;
//! 5. mark the record attached — or remove it if anything failed.

use std::os::fd::{AsFd, OwnedFd};

use log::{debug, info};

use crate::annotations::{parse_annotation, Relabel, ANNOTATION_KEY};
use crate::bundle::Bundle;
use crate::claims;
use crate::config::Config;
use crate::error::{volume_subject, HookError};
use crate::plan::{self, MountPlan, MountStep, SourceStep};
use crate::policy;
use crate::record::{self, Record, RecordVolume, StateDir};
use crate::rootfs::RootFs;
use crate::state::State;
use crate::{label, mount, nfs, ns, owner, volume, walk};

pub fn run(config: &Config, state: &State) -> Result<(), HookError> {
    let bundle = Bundle::load(&state.bundle)?;
    let annotations = super::annotations(Some(state), &bundle);
    let Some(value) = annotations.get(ANNOTATION_KEY) else {
        debug!("no {ANNOTATION_KEY} annotation: nothing to do");
        return Ok(());
    };
    let requests = parse_annotation(value)?;
    let volumes = requests
        .iter()
        .map(|r| policy::resolve(config, r))
        .collect::<Result<Vec<_>, _>>()?;
    let plan = plan::build(&bundle, &volumes)?;
    let pid = state.live_pid().ok_or_else(|| {
        HookError::failed("state", "the runtime gave no container pid")
            .hint("run `oci-volume-hook prestart` at the prestart or createRuntime stage only")
    })?;

    // z/Z: the context each volume gets (None: no relabel, or SELinux off).
    let labels =
        plan.steps
            .iter()
            .map(|s| match s.label {
                Some(l) => label::target_context(&bundle, l.mode)
                    .map_err(|e| e.about(volume_subject(&s.spec))),
                None => Ok(None),
            })
            .collect::<Result<Vec<_>, _>>()?;

    let records = StateDir::open(&config.state_dir, true)?
        .ok_or_else(|| HookError::failed("state_dir", "missing after creation"))?;
    let mut record = Record {
        id: state.id.clone(),
        bundle: bundle.dir.clone(),
        root: plan.root.clone(),
        attached_at: record::now(),
        pid: Some(pid),
        pid_start: record::pid_start_time(pid),
        attached: false,
        volumes: plan
            .steps
            .iter()
            .zip(&labels)
            .map(|(s, label)| RecordVolume {
                spec: s.spec.clone(),
                name: s.name.clone(),
                source: s.source_key(),
                dest: s.dest.clone(),
                read_only: s.attrs.read_only,
                access: s.access,
                label: label.clone(),
                label_private: label.is_some()
                    && s.label.is_some_and(|l| l.mode == Relabel::Private),
            })
            .collect(),
    };
    {
        let _lock = records.lock()?;
        let live = records.live_records();
        let holders = claims::holders(&live, &state.id);
        for (step, label) in plan.steps.iter().zip(&labels) {
            claims::check(step, &holders)?;
            if let (Some(target), Some(l)) = (label, step.label) {
                if l.mode == Relabel::Private {
                    private_label_free(step, target, &live, &state.id)?;
                }
            }
        }
        records.write(&record)?;
    }
    match attach(&plan, &labels, pid) {
        Ok(sources) => {
            for (v, source) in record.volumes.iter_mut().zip(sources) {
                v.source = source;
            }
            record.attached = true;
            records.write(&record)
        }
        Err(e) => {
            // No container will run: release the claim now.
            let _ = records.remove(&state.id);
            Err(e)
        }
    }
}

/// Steps 3 and 4. Returns each volume's host path, in plan order.
fn attach(
    plan: &MountPlan,
    labels: &[Option<String>],
    pid: i32,
) -> Result<Vec<std::path::PathBuf>, HookError> {
    // The container's user namespace, for idmapped volumes, opened while
    // /proc is still the host's.
    let userns = match plan.steps.iter().find(|s| s.idmap) {
        Some(step) => Some(ns::open_user_ns(pid).map_err(|e| {
            let why = if e.raw_os_error() == Some(libc::EINVAL) {
                format!("option idmap: the container (pid {pid}) has no user namespace of its own")
            } else {
                format!("option idmap: open /proc/{pid}/ns/user: {e}")
            };
            HookError::failed(volume_subject(&step.spec), why)
                .hint("use option U to give the volume to the container's user instead")
        })?),
        None => None,
    };
    let mut prepared: Vec<(&MountStep, volume::Source, OwnedFd)> =
        Vec::with_capacity(plan.steps.len());
    let nfs_not_after = std::time::Instant::now() + nfs::BUDGET;
    for (step, label) in plan.steps.iter().zip(labels) {
        let subject = volume_subject(&step.spec);
        if let SourceStep::Nfs(n) = &step.source {
            prepared.push(nfs_source(step, n, nfs_not_after).map_err(|e| e.about(&subject))?);
            continue;
        }
        let source = volume::open(&step.source).map_err(|e| e.about(&subject))?;
        if source.created {
            info!("created volume {}", source.path.display());
        }
        // Relabel here, in the host mount namespace and before setns: the
        // walk's threads have all exited when it returns.
        if let (Some(target), Some(l)) = (label, step.label) {
            label::relabel(
                &source.fd,
                source.is_dir,
                target,
                l.policy,
                walk::default_threads(),
            )
            .map_err(|e| e.about(&subject))?;
        }
        // Option U: in the host mount namespace, before setns (the walk's
        // threads are joined when it returns).
        if let Some(plan) = &step.owner {
            let done = owner::apply(
                source.fd.as_fd(),
                &source.path,
                plan,
                owner::default_threads(),
            )
            .map_err(|e| e.about(&subject))?;
            match &done.decision {
                owner::Decision::Skip => debug!(
                    "{}: already owned by {}:{} (marker set): no walk, {:?}",
                    source.path.display(),
                    plan.uid,
                    plan.gid,
                    done.elapsed
                ),
                owner::Decision::Walk(why) => info!(
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
            let not = mount::not_idmappable(source.fd.as_fd()).map_err(|e| {
                HookError::failed(&subject, format!("fstatfs {}: {e}", source.path.display()))
            })?;
            if let Some(fs) = not {
                return Err(HookError::failed(
                    &subject,
                    format!(
                        "option idmap: {} is on {fs}, which cannot be idmapped",
                        source.path.display()
                    ),
                )
                .hint("use option U instead, which changes the owner of the files"));
            }
        }
        let tree = mount::clone_tree(source.fd.as_fd()).map_err(|e| {
            HookError::failed(
                &subject,
                format!("open_tree {}: {e}", source.path.display()),
            )
        })?;
        mount::set_attrs(tree.as_fd(), &step.attrs).map_err(|e| {
            HookError::failed(
                &subject,
                format!("mount_setattr {}: {e}", source.path.display()),
            )
        })?;
        if let (Some(userns), true) = (&userns, step.idmap) {
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
                HookError::failed(&subject, why)
                    .hint("use option U instead, which changes the owner of the files")
            })?;
        }
        prepared.push((step, source, tree));
    }

    ns::enter_mount_ns(pid).map_err(|e| {
        HookError::failed(
            "container",
            format!("setns into the mount namespace of pid {pid}: {e}"),
        )
        .hint("the hook must run at prestart/createRuntime, as root")
    })?;
    let rootfs = RootFs::open(&plan.root)?;
    for (step, source, tree) in &prepared {
        let subject = volume_subject(&step.spec);
        let target = rootfs
            .prepare_dest(&step.dest, source.is_dir)
            .map_err(|e| e.about(&subject))?;
        mount::attach(tree, target.as_fd()).map_err(|e| {
            HookError::failed(
                &subject,
                format!("move_mount onto {}: {e}", step.dest.display()),
            )
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

/// Z: refuse a volume that another running container uses with another
/// label (relabelling it would lock that container out).
fn private_label_free(
    step: &MountStep,
    target: &str,
    live: &[Record],
    me: &str,
) -> Result<(), HookError> {
    let key = step.source_key();
    for r in live.iter().filter(|r| r.id != me) {
        let other = r
            .volumes
            .iter()
            .filter(|v| v.source == key)
            .find_map(|v| v.label.as_deref().filter(|l| *l != target));
        if let Some(other) = other {
            return Err(HookError::failed(
                volume_subject(&step.spec),
                format!(
                    "{} is in use by running container {} with label {other}; relabelling it private (Z) to {target} would lock that container out",
                    key.display(),
                    crate::state::short_id(&r.id)
                ),
            )
            .hint("use z to share the volume between containers, or stop the other container first"));
        }
    }
    Ok(())
}

/// Mount an NFS export (host mount and network namespaces, within its
/// deadline) and give the detached mount the volume's attributes.
fn nfs_source<'a>(
    step: &'a MountStep,
    n: &nfs::NfsStep,
    not_after: std::time::Instant,
) -> Result<(&'a MountStep, volume::Source, OwnedFd), HookError> {
    if n.context.is_none() && std::path::Path::new("/sys/fs/selinux/enforce").exists() {
        log::warn!("{}: {}", volume_subject(&step.spec), nfs::boolean_note());
    }
    let m = nfs::mount(n, not_after)?;
    mount::set_attrs(m.tree.as_fd(), &step.attrs)
        .map_err(|e| HookError::failed("", format!("mount_setattr {}: {e}", m.display)))?;
    if m.created {
        info!("created sub-directory {}", m.display);
    }
    info!("mounted NFS {} ({})", m.display, m.options);
    let fd = m
        .tree
        .try_clone()
        .map_err(|e| HookError::failed("", format!("dup: {e}")))?;
    let source = volume::Source {
        fd,
        path: format!("nfs:{}", m.display).into(),
        is_dir: true,
        created: m.created,
    };
    Ok((step, source, m.tree))
}

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
