//! The SELinux file context a volume gets: `Z` (private) is the bundle's
//! `linux.mountLabel`; `z` (shared) is the same user:role:type at level `s0`
//! (no categories, so every container may use it). Without a mountLabel (a
//! hand-written runc bundle) the policy's container file context (`file` in
//! lxc_contexts) is used, never a guess. With SELinux disabled it is `None`:
//! z/Z do nothing. Pure: the host's facts come in as [`SelinuxHost`].

use log::{debug, warn};

use crate::error::HookError;
use crate::input::annotations::Relabel;
use crate::input::bundle::Bundle;
use crate::input::selinux::{Context, SelinuxHost};

/// The file context a volume with `mode` gets for this bundle on this host;
/// `None` when SELinux is disabled (then z/Z do nothing). The same for a
/// relabel walk and an NFS `context=` mount.
pub fn target_context(
    bundle: &Bundle,
    host: &SelinuxHost,
    mode: Relabel,
) -> Result<Option<String>, HookError> {
    if let Err(why) = &host.enabled {
        debug!("{why}: {} does nothing", mode_name(mode));
        return Ok(None);
    }
    compute(
        bundle.mount_label(),
        bundle.process_label(),
        || host.file_context.clone(),
        mode,
    )
    .map(Some)
}

pub fn mode_name(mode: Relabel) -> &'static str {
    match mode {
        Relabel::Shared => "z (shared)",
        Relabel::Private => "Z (private)",
    }
}

/// The pure part of [`target_context`] (SELinux known to be enabled).
pub fn compute(
    mount_label: Option<&str>,
    process_label: Option<&str>,
    lxc_file: impl FnOnce() -> Result<String, HookError>,
    mode: Relabel,
) -> Result<String, HookError> {
    let bad = |what: &str, v: &str| {
        HookError::invalid(
            "bundle",
            format!(
                "{what} {} is not an SELinux context",
                crate::error::quote(v)
            ),
        )
    };
    let mount = match mount_label {
        Some(m) => Some(Context::parse(m).ok_or_else(|| bad("linux.mountLabel", m))?),
        None => None,
    };
    let process = match process_label {
        Some(p) => Some(Context::parse(p).ok_or_else(|| bad("process.selinuxLabel", p))?),
        None => None,
    };
    let base = match mount {
        Some(m) => m,
        None => {
            let f = lxc_file()?;
            Context::parse(&f).ok_or_else(|| bad("lxc_contexts file", &f))?
        }
    };
    let ctx = match mode {
        // Level s0: every container's range dominates it. A non-MLS policy
        // has no level at all.
        Relabel::Shared => base.with_level(base.level.as_ref().map(|_| "s0")),
        Relabel::Private if mount_label.is_some() => base,
        // No mountLabel: the process's categories on the policy's file type.
        Relabel::Private => match process.as_ref().and_then(|p| p.level.as_deref()) {
            Some(level) if base.level.is_some() => base.with_level(Some(level)),
            _ => {
                warn!(
                    "Z: the bundle names neither linux.mountLabel nor a process level; using {base}, which has no categories of its own"
                );
                base
            }
        },
    };
    Ok(ctx.to_string())
}

/// What a relabel of a volume root would do now.
#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "system_u:object_r:container_file_t:s0:c1,c2";
    const LXC: &str = "system_u:object_r:container_file_t:s0";

    fn lxc() -> Result<String, HookError> {
        Ok(LXC.into())
    }
    fn no_lxc() -> Result<String, HookError> {
        panic!("lxc_contexts must not be read when the bundle has a mountLabel")
    }

    #[test]
    fn private_is_the_mount_label_shared_is_level_s0() {
        assert_eq!(compute(Some(M), None, no_lxc, Relabel::Private).unwrap(), M);
        assert_eq!(
            compute(Some(M), None, no_lxc, Relabel::Shared).unwrap(),
            "system_u:object_r:container_file_t:s0"
        );
        // A non-MLS policy: no level to drop.
        assert_eq!(
            compute(Some("u:r:t"), None, no_lxc, Relabel::Shared).unwrap(),
            "u:r:t"
        );
    }

    #[test]
    fn without_mount_label_the_policy_file_context_is_used() {
        assert_eq!(compute(None, None, lxc, Relabel::Shared).unwrap(), LXC);
        // Z takes the process's categories on the policy's file type.
        assert_eq!(
            compute(
                None,
                Some("system_u:system_r:container_t:s0:c5,c6"),
                lxc,
                Relabel::Private
            )
            .unwrap(),
            "system_u:object_r:container_file_t:s0:c5,c6"
        );
        assert_eq!(compute(None, None, lxc, Relabel::Private).unwrap(), LXC);
        let e = compute(
            None,
            None,
            || Err(HookError::failed("selinux", "no lxc_contexts")),
            Relabel::Shared,
        )
        .unwrap_err();
        assert!(e.to_string().contains("no lxc_contexts"));
    }

    #[test]
    fn a_bad_bundle_label_is_invalid() {
        let e = compute(Some("garbage"), None, no_lxc, Relabel::Private).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("linux.mountLabel"), "{e}");
    }
}
