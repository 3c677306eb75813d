//! `volumes create NAME [--owner UID:GID] [--label z|CONTEXT] [--mode MODE]`
//! (podman: `podman volume create`): the auto-create path of prestart
//! (`apply::source::create`: `volumes_root` made or checked, the volume
//! made with mkdirat beneath it, owner and mode set on its fd before anyone
//! can use it), then the relabel walk for a label. Idempotent: a volume
//! that exists with the settings asked for is left as it is; one with other
//! settings is an error naming each difference. Settings not given are not
//! compared.

use std::os::fd::AsFd;

use serde::Serialize;

use super::parse::{self, Label};
use super::{managed_name, printable};
use crate::apply::relabel;
use crate::apply::{source, Protected};
use crate::cli::Format;
use crate::config::{Config, RelabelPolicy};
use crate::error::HookError;
use crate::plan::{NewDir, SourceStep};

#[derive(Debug, Serialize)]
struct Created {
    name: String,
    path: String,
    /// false: it existed with these settings.
    created: bool,
    owner: String,
    mode: String,
    label: Option<String>,
}

pub fn run(
    config: &Config,
    name: &str,
    owner: Option<&str>,
    label: Option<&str>,
    mode: Option<&str>,
    format: Format,
) -> Result<(), HookError> {
    managed_name(config, name, "create")?;
    let subject = format!("volume {name}");
    let invalid = |why: String| HookError::invalid(subject.clone(), why);
    let owner = owner.map(parse::owner).transpose().map_err(invalid)?;
    let mode = mode.map(parse::mode).transpose().map_err(invalid)?;
    let label = label.map(parse::label).transpose().map_err(invalid)?;
    let context = match label {
        None => None,
        Some(l) => Some(context_for(&l).map_err(|e| e.about(subject.clone()))?),
    };
    let (uid, gid) = owner.unwrap_or((0, 0));
    let step = SourceStep::Managed {
        root: config.volumes_root.clone(),
        name: name.to_string(),
        create: Some(NewDir {
            uid,
            gid,
            mode: mode.unwrap_or(crate::plan::NEW_VOLUME_MODE),
        }),
    };
    let opened = source::create(&step, config.owners).map_err(|e| e.into_hook(subject.clone()))?;
    let st = rustix::fs::fstat(&opened.fd)
        .map_err(|e| HookError::failed(subject.clone(), format!("fstat: {e}")))?;
    let at = crate::fd::proc_fd(opened.fd.as_fd());
    let current_label = relabel::read_labels(&at).ok().and_then(|(l, _)| l);
    if !opened.created {
        let mut diffs = Vec::new();
        if let Some((u, g)) = owner {
            if (st.st_uid, st.st_gid) != (u, g) {
                diffs.push(format!("owner {}:{}, not {u}:{g}", st.st_uid, st.st_gid));
            }
        }
        if let Some(m) = mode {
            if st.st_mode & 0o7777 != m {
                diffs.push(format!("mode {:04o}, not {m:04o}", st.st_mode & 0o7777));
            }
        }
        if let Some(c) = &context {
            if current_label.as_deref() != Some(c.as_str()) {
                diffs.push(format!(
                    "label {}, not {c}",
                    current_label.as_deref().unwrap_or("(none)")
                ));
            }
        }
        if !diffs.is_empty() {
            return Err(HookError::failed(
                subject,
                format!(
                    "exists with other settings: {}",
                    printable(&diffs.join("; "))
                ),
            )
            .hint(format!(
                "remove it first (`oci-volume-hook volumes rm {name}`), or ask for the settings it has"
            )));
        }
    } else if let Some(c) = &context {
        let protected = Protected::new(&[
            ("volumes_root", &config.volumes_root),
            ("state_dir", &config.state_dir),
        ]);
        relabel::relabel(&opened.fd, true, c, RelabelPolicy::OnChange, 1, &protected)
            .map_err(|e| e.into_hook(subject.clone()))?;
    }
    log::info!(
        "volume {name}: {} {}",
        opened.path.display(),
        if opened.created {
            "created"
        } else {
            "exists already with these settings"
        }
    );
    let report = Created {
        name: name.to_string(),
        path: opened.path.display().to_string(),
        created: opened.created,
        owner: format!("{}:{}", st.st_uid, st.st_gid),
        mode: format!("{:04o}", st.st_mode & 0o7777),
        label: if opened.created {
            context
        } else {
            current_label
        },
    };
    if format == Format::Json {
        return super::to_json(&report);
    }
    // As podman: the name alone.
    println!("{name}");
    Ok(())
}

/// The SELinux context `--label` asks for, on this host.
fn context_for(label: &Label) -> Result<String, HookError> {
    crate::input::selinux::selinux_enabled().map_err(|why| {
        HookError::failed("", format!("--label: {why}"))
            .hint("drop --label: without SELinux there is nothing to label")
    })?;
    match label {
        Label::Context(c) => Ok(c.clone()),
        Label::Shared => crate::plan::selinux::compute(
            None,
            None,
            crate::input::selinux::lxc_file_context,
            crate::input::annotations::Relabel::Shared,
        ),
        Label::Private => Err(HookError::invalid(
            "",
            "--label Z makes the label private to one container, and there is none yet",
        )
        .hint("create it with --label z or a CONTEXT, and start the container with :Z")),
    }
}
