//! poststop: release what prestart recorded. Best effort and idempotent:
//! never needs a pid, never fails a teardown, safe twice or without a
//! prestart. The mounts themselves die with the container's namespace.

use log::{debug, info, warn};

use crate::config::Config;
use crate::input::state::State;
use crate::record::{self, StateDir};

pub fn run(config: &Config, state: &State) {
    let records = match StateDir::open(&config.state_dir, false) {
        Ok(Some(r)) => r,
        Ok(None) => {
            debug!(
                "no state directory {}: nothing to release",
                config.state_dir.display()
            );
            return;
        }
        Err(e) => {
            warn!("{e}");
            return;
        }
    };
    match records.read(&state.id) {
        Ok(Some(r)) => {
            let held = record::now().saturating_sub(r.attached_at);
            let vols: Vec<String> = r.volumes.iter().map(|v| v.spec.clone()).collect();
            info!("detached {} after {held}s", vols.join("; "));
            let root = record::usage::open_root(&config.volumes_root, config.owners);
            record::usage::detached(&records, root.as_ref(), &config.volumes_root, &r);
        }
        Ok(None) => debug!("no record for this container: nothing to release"),
        Err(e) => warn!("{e}; removing it"),
    }
    if let Err(e) = records.remove(&state.id) {
        warn!("{e}");
    }
}
