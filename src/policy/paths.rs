//! Host paths against the policy: `allowed_host_paths` entries, the hook's
//! own directories, the admin volumes a host path overlaps, and the
//! `allowed_nfs_servers` entry an `nfs://` URL needs.

use std::path::{Path, PathBuf};

use super::rules::Overlap;
use crate::config::nfs::AllowedServer;
use crate::config::{Backend, Config, VolumeConfig};
use crate::error::HookError;

/// The `allowed_nfs_servers` entry that allows an `nfs://` URL.
pub(super) fn allowed_nfs_url(
    config: &Config,
    url: &crate::input::annotations::NfsUrl,
) -> Result<String, HookError> {
    let entries: Vec<(&String, AllowedServer)> = config
        .allowed_nfs_servers
        .iter()
        .filter_map(|s| AllowedServer::parse(s).ok().map(|a| (s, a)))
        .collect();
    if let Some((s, _)) = entries
        .iter()
        .find(|(_, a)| a.allows(&url.host, url.port, &url.export))
    {
        return Ok(s.to_string());
    }
    let for_host: Vec<&str> = entries
        .iter()
        .filter(|(_, a)| a.names_host(&url.host))
        .map(|(s, _)| s.as_str())
        .collect();
    if for_host.is_empty() {
        return Err(HookError::denied(
            "",
            format!(
                "NFS server {} is not in allowed_nfs_servers of {}",
                url.host, config.origin
            ),
        )
        .hint("ask the admin to add the server there, or to define the export as a named volume"));
    }
    let port = url.port.map_or_else(String::new, |p| format!(" port {p}"));
    Err(HookError::denied(
        "",
        format!(
            "NFS export {} on server {}{port} is not allowed by allowed_nfs_servers of {}: its entries for that server are {}",
            url.export.display(),
            url.host,
            config.origin,
            for_host.join(", ")
        ),
    )
    .hint("use an export at or under an allowed prefix (on the port the entry names, 2049 if none), or ask the admin"))
}

/// The lexical and (when it exists) the resolved form of a config path.
pub(super) fn both_forms(p: &Path) -> Vec<PathBuf> {
    let mut v = vec![p.to_path_buf()];
    if let Ok(c) = std::fs::canonicalize(p) {
        if c != p {
            v.push(c);
        }
    }
    v
}

/// Refuse a host path at, under or above `volumes_root` or `state_dir`:
/// managed volumes are reached only by name, and the hook's records never.
pub(super) fn not_the_hooks_own(config: &Config, path: &Path) -> Result<(), HookError> {
    for (key, dir, why) in [
        (
            "volumes_root",
            &config.volumes_root,
            "managed volumes are reached only by name, each with its own rules",
        ),
        (
            "state_dir",
            &config.state_dir,
            "it holds the hook's records of which container holds which volume",
        ),
    ] {
        for form in both_forms(dir) {
            if let Some(how) = Overlap::of(path, &form) {
                return Err(HookError::denied(
                    "",
                    format!(
                        "host path {} is {} {key} {} of {}: {why}",
                        path.display(),
                        how.words(),
                        form.display(),
                        config.origin
                    ),
                )
                .hint(format!(
                    "use a named volume, or ask the admin to keep allowed_host_paths apart from {key}"
                )));
            }
        }
    }
    Ok(())
}

/// The admin `path` volumes a (resolved) host path is at, under or above.
pub(super) fn admin_overlaps<'a>(
    config: &'a Config,
    path: &Path,
) -> Vec<(&'a str, &'a VolumeConfig, Overlap)> {
    config
        .volumes
        .iter()
        .filter_map(|(name, v)| match v.backend() {
            Backend::Path(p) => both_forms(p)
                .iter()
                .find_map(|form| Overlap::of(path, form))
                .map(|how| (name.as_str(), v, how)),
            _ => None,
        })
        .collect()
}

/// Resolve the symlinks of `path` and find the `allowed_host_paths` entry it
/// is at or under. Returns the resolved path and the resolved entry.
pub fn allowed_host_path(config: &Config, path: &Path) -> Result<(PathBuf, PathBuf), HookError> {
    let deny = |shown: &Path| {
        HookError::denied(
            "",
            format!(
                "host path {} is not at or under any allowed_host_paths entry in {}",
                shown.display(),
                config.origin
            ),
        )
        .hint("ask the admin to add it to allowed_host_paths, or use a named volume such as \"myapp:/data\"")
    };
    let resolved = match std::fs::canonicalize(path) {
        Ok(r) => r,
        Err(e) => {
            // Say "denied" before "missing", so nothing is learnt about paths
            // the user may not use.
            if !config
                .allowed_host_paths
                .iter()
                .any(|a| path.starts_with(a))
            {
                return Err(deny(path));
            }
            return Err(
                HookError::failed("", format!("host path {}: {e}", path.display()))
                    .hint("create it on the host, or fix the annotation"),
            );
        }
    };
    for written in &config.allowed_host_paths {
        let Ok(entry) = std::fs::canonicalize(written) else {
            continue;
        };
        let reached = resolved.starts_with(&entry) || path.starts_with(written);
        // An entry is taken as written, never through a symlink: whoever
        // can change the link would choose what containers get.
        if reached && entry != *written {
            return Err(HookError::denied(
                "",
                format!(
                    "allowed_host_paths entry {} in {} leads through a symlink (to {}); entries are never followed through symlinks",
                    written.display(),
                    config.origin,
                    entry.display()
                ),
            )
            .hint("the admin must write the entry as the real path, with no symlink on the way"));
        }
        if resolved.starts_with(&entry) {
            return Ok((resolved, entry));
        }
    }
    if resolved != path {
        let mut e = deny(path);
        e.why
            .push_str(&format!(" (it resolves to {})", resolved.display()));
        return Err(e);
    }
    Err(deny(path))
}
