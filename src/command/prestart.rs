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

use log::debug;

use crate::apply;
use crate::config::Config;
use crate::error::HookError;
use crate::input::annotations::{parse_annotation, ANNOTATION_KEY};
use crate::input::bundle::Bundle;
use crate::input::selinux::SelinuxHost;
use crate::input::state::State;
use crate::plan;
use crate::policy::{self, ResolvedVolume};
use crate::record::{self, claims, Record, StateDir};

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
    let plan = plan::build(&bundle, &volumes, &selinux_host(&bundle, &volumes))?;
    let pid = state.live_pid().ok_or_else(|| {
        HookError::failed("state", "the runtime gave no container pid")
            .hint("run `oci-volume-hook prestart` at the prestart or createRuntime stage only")
    })?;

    // Every check that can refuse the start, before any change.
    let checked = apply::check(&plan, pid).map_err(HookError::from)?;
    let keys = checked.keys();
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
            .zip(&keys)
            .map(|(s, k)| claims::record_volume(s, k))
            .collect(),
    };
    {
        let _lock = records.lock()?;
        let live = records.live_records();
        let holders = claims::holders(&live, &state.id);
        for (step, key) in plan.steps.iter().zip(&keys) {
            claims::check(step, key, &holders)?;
            claims::labels_free(step, key, &holders)?;
        }
        records.write(&record)?;
    }
    // What no walk may change, by identity: built only when a volume is
    // walked (U, z/Z with a context).
    let walks = plan
        .steps
        .iter()
        .any(|s| s.owner.is_some() || s.label.as_ref().is_some_and(|l| l.context.is_some()));
    let protected = if walks {
        apply::Protected::new(&[
            ("volumes_root", &config.volumes_root),
            ("state_dir", &config.state_dir),
        ])
    } else {
        apply::Protected::by_name_only()
    };
    match apply::attach(checked, &protected) {
        Ok(sources) => {
            for (v, source) in record.volumes.iter_mut().zip(sources) {
                v.source = source.path;
                v.id = source.id;
            }
            record.attached = true;
            records.write(&record)
        }
        Err(e) => {
            // No container will run: release the claim now.
            let _ = records.remove(&state.id);
            Err(e.into())
        }
    }
}

/// The host's SELinux facts, read only when a volume asks for a label; the
/// policy's file context only when the bundle names no mountLabel.
pub(super) fn selinux_host(bundle: &Bundle, volumes: &[ResolvedVolume]) -> SelinuxHost {
    if volumes.iter().all(|v| v.options.relabel.is_none()) {
        return SelinuxHost::disabled("no volume asks for a label");
    }
    SelinuxHost::read(bundle.mount_label().is_none())
}
