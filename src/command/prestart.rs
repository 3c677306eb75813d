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

use log::{debug, info};

use crate::apply;
use crate::config::Config;
use crate::error::HookError;
use crate::input::annotations::{parse_annotation, ANNOTATION_KEY};
use crate::input::bundle::Bundle;
use crate::input::host::{Host, Mode};
use crate::input::selinux::SelinuxHost;
use crate::input::state::State;
use crate::plan;
use crate::policy::{self, ResolvedVolume};
use crate::record::{self, claims, StateDir};

pub fn run(config: &Config, state: &State, host: &Host) -> Result<(), HookError> {
    let bundle = Bundle::load(&state.bundle)?;
    let annotations = super::annotations(Some(state), &bundle);
    let Some(value) = annotations.get(ANNOTATION_KEY) else {
        debug!("no {ANNOTATION_KEY} annotation: nothing to do");
        return Ok(());
    };
    let requests = parse_annotation(value)?;
    if let Mode::Rootless { .. } = host.mode {
        info!(
            "{}: volumes in {}, records in {}",
            host.describe(),
            config.volumes_root.display(),
            config.state_dir.display()
        );
        for r in &requests {
            policy::rootless::refuse(config, r)?;
        }
    }
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
    let checked = apply::check(&plan, pid, host.owners()).map_err(HookError::from)?;
    let keys = checked.keys();
    let records = StateDir::open(&config.state_dir, true)?
        .ok_or_else(|| HookError::failed("state_dir", "missing after creation"))?;
    let mut record = claims::claim(
        &state.id,
        bundle.dir.clone(),
        plan.root.clone(),
        pid,
        &plan.steps,
        &keys,
    );
    {
        let _lock = records.lock()?;
        let live = records.live_records();
        claims::check_all(&plan.steps, &keys, &live, &state.id)?;
        records.write(&record)?;
    }
    // What no walk may change, by identity: built only when a volume is
    // walked (U, z/Z with a context).
    let walks = plan
        .steps
        .iter()
        .any(|s| s.owner.is_some() || s.label.as_ref().is_some_and(|l| l.context.is_some()));
    let protected = if walks {
        super::protected(config)
    } else {
        apply::Protected::by_name_only()
    };
    // Opened here, in the host mount namespace: attach leaves us in the container's.
    let usage_root = record::usage::open_root(&config.volumes_root, config.owners);
    match apply::attach(checked, &protected) {
        Ok(sources) => {
            for (v, source) in record.volumes.iter_mut().zip(sources) {
                v.source = source.path;
                v.id = source.id;
            }
            record.attached = true;
            records.write(&record)?;
            record::usage::attached(&records, usage_root.as_ref(), &config.volumes_root, &record);
            Ok(())
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
