//! prestart / createRuntime: attach every requested volume, or fail closed.

use std::os::fd::{AsFd, OwnedFd};

use log::{debug, info};

use crate::annotations::{parse_annotation, Relabel, ANNOTATION_KEY};
use crate::bundle::Bundle;
use crate::config::Config;
use crate::error::{volume_subject, HookError};
use crate::plan::{self, LabelPlan, MountStep};
use crate::policy;
use crate::record::{self, Record, RecordVolume, StateDir};
use crate::rootfs::RootFs;
use crate::state::State;
use crate::{label, mount, ns, volume, walk};

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

    // In the host mount namespace: the record directory, and every source
    // opened, cloned and given its attributes.
    let records = StateDir::open(&config.state_dir, true)?
        .ok_or_else(|| HookError::failed("state_dir", "missing after creation"))?;
    let mut prepared: Vec<(&MountStep, volume::Source, OwnedFd, Option<String>)> =
        Vec::with_capacity(plan.steps.len());
    for step in &plan.steps {
        let subject = volume_subject(&step.spec);
        let source = volume::open(&step.source).map_err(|e| e.about(&subject))?;
        if source.created {
            info!("created volume {}", source.path.display());
        }
        // Relabel here, in the host mount namespace and before setns: the
        // walk's threads have all exited when it returns.
        let applied = match step.label {
            Some(lp) => {
                relabel(&bundle, &records, &state.id, &source, lp).map_err(|e| e.about(&subject))?
            }
            None => None,
        };
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
        prepared.push((step, source, tree, applied));
    }

    // In the container's mount namespace: mount points resolved inside the
    // rootfs, trees attached onto them.
    ns::enter_mount_ns(pid).map_err(|e| {
        HookError::failed(
            "container",
            format!("setns into the mount namespace of pid {pid}: {e}"),
        )
        .hint("the hook must run at prestart/createRuntime, as root")
    })?;
    let rootfs = RootFs::open(&plan.root)?;
    for (step, source, tree, _) in &prepared {
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

    let record = Record {
        id: state.id.clone(),
        bundle: bundle.dir.clone(),
        root: plan.root.clone(),
        attached_at: record::now(),
        pid: Some(pid),
        pid_start: record::start_time(pid),
        volumes: prepared
            .iter()
            .map(|(step, source, _, label)| RecordVolume {
                spec: step.spec.clone(),
                name: step.name.clone(),
                source: source.path.clone(),
                dest: step.dest.clone(),
                read_only: step.attrs.read_only,
                label: label.clone(),
                label_private: label.is_some()
                    && step.label.is_some_and(|l| l.mode == Relabel::Private),
            })
            .collect(),
    };
    records.write(&record)?;
    Ok(())
}

/// z/Z: compute the context, refuse to take a volume private that another
/// running container uses with another label, relabel. Returns the context
/// applied (`None` when SELinux is disabled).
fn relabel(
    bundle: &Bundle,
    records: &StateDir,
    own_id: &str,
    source: &volume::Source,
    lp: LabelPlan,
) -> Result<Option<String>, HookError> {
    let Some(target) = label::target_context(bundle, lp.mode)? else {
        return Ok(None);
    };
    if lp.mode == Relabel::Private {
        if let Some((id, other)) = held_with_other_label(records, own_id, &source.path, &target) {
            return Err(HookError::failed(
                "",
                format!(
                    "{} is in use by running container {id} with label {other}; relabelling it private (Z) to {target} would lock that container out",
                    source.path.display()
                ),
            )
            .hint("use z to share the volume between containers, or stop the other container first"));
        }
    }
    label::relabel(
        &source.fd,
        source.is_dir,
        &target,
        lp.policy,
        walk::default_threads(),
    )?;
    Ok(Some(target))
}

/// Another running container whose record holds `path` with a label other
/// than `target`: its id and that label.
fn held_with_other_label(
    records: &StateDir,
    own_id: &str,
    path: &std::path::Path,
    target: &str,
) -> Option<(String, String)> {
    records
        .ids()
        .into_iter()
        .filter(|id| id != own_id)
        .filter_map(|id| records.read(&id).ok().flatten())
        .filter(|r| r.holder_alive())
        .find_map(|r| {
            r.volumes
                .iter()
                .filter(|v| v.source == path)
                .find_map(|v| v.label.clone().filter(|l| l != target))
                .map(|l| (r.id.clone(), l))
        })
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
    v.join(",")
}
