//! Policy: what the admin allows. Turns a user's [`VolumeRequest`] into a
//! [`ResolvedVolume`] (approved, with the rule that approved it) or a denial
//! that names the rule and the config file. Deny by default.
//!
//! - [`rules`]: what a request may do with its volume beyond attaching it
//!   (idmap, U, z/Z, suid/dev/exec), however the volume is reached;
//! - [`paths`]: host paths, the `allowed_host_paths` entries, the hook's own
//!   directories and the admin volumes a host path overlaps; `nfs://` URLs.

mod paths;
pub(crate) mod rootless;
mod rules;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use crate::config::nfs::{parse_server_export, NfsOptions};
use crate::config::{Access, Backend, Config, OwnerChange, RelabelPolicy, SelinuxMode};
use crate::error::{volume_subject, HookError};
use crate::input::annotations::{Options, Relabel, RequestSource, VolumeRequest};

pub(crate) use paths::allowed_host_path;
use paths::{admin_overlaps, allowed_nfs_url, not_the_hooks_own};
pub(crate) use rules::Rules;
use rules::Scope;

/// Where an approved volume's data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolvedSource {
    /// `root/name`, a volume the hook manages; created on first use when
    /// `auto_create` is set.
    Managed {
        root: PathBuf,
        name: String,
        auto_create: bool,
    },
    /// A path the admin named in `[volumes.NAME]`.
    Admin { path: PathBuf },
    /// A host path under an `allowed_host_paths` entry: `path` has its
    /// symlinks resolved; `allowed_by` is the (resolved) entry.
    Host { path: PathBuf, allowed_by: PathBuf },
    /// An NFS export: an admin `[volumes.NAME]` with `nfs`, or an allowed
    /// `nfs://` source.
    Nfs(NfsVolume),
}

/// An NFS volume the policy approved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsVolume {
    /// Host name or address, as the admin (or the allowed URL) wrote it.
    pub host: String,
    /// From an `nfs://host:port/` URL.
    pub port: Option<u16>,
    pub export: PathBuf,
    /// Relative, no `..` (checked at config load).
    pub subdir: Option<PathBuf>,
    pub options: NfsOptions,
    /// Deadline for resolving and mounting, in seconds.
    pub timeout: u64,
    /// Where the deadline comes from, for messages.
    pub timeout_rule: String,
}

impl NfsVolume {
    /// `host:/export[/subdir]` for messages and records.
    pub fn display(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let mut p = self.export.clone();
        if let Some(s) = &self.subdir {
            p.push(s);
        }
        format!("{host}:{}", p.display())
    }

    /// What identifies the volume in records and claims: `nfs:` and the
    /// export (and sub-directory) on its server.
    pub fn key(&self) -> std::path::PathBuf {
        format!("nfs:{}", self.display()).into()
    }
}

/// A volume the policy approved. Code past this point never sees raw
/// annotation text except `spec`, kept for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedVolume {
    pub spec: String,
    /// The volume name, for named volumes.
    pub name: Option<String>,
    pub source: ResolvedSource,
    pub dest: PathBuf,
    pub options: Options,
    /// Who may attach it at once (admin-defined volumes only; else shared).
    pub access: Access,
    pub exclusive_readers: bool,
    /// Which rule allowed it, for `check` and logs.
    pub rule: String,
    /// When to walk the volume for `z`/`Z` (`options.relabel`, which already
    /// carries the admin's default).
    pub relabel_policy: RelabelPolicy,
    /// When to walk the volume for option `U`: the volume's own
    /// `owner_change`, else the top-level one.
    pub owner_change: OwnerChange,
    /// What the admin allows this volume beyond attaching it (for `check`:
    /// the same decisions prestart enforced).
    pub rules: Rules,
}

pub fn resolve(config: &Config, req: &VolumeRequest) -> Result<ResolvedVolume, HookError> {
    let subject = volume_subject(&req.spec);
    let mut options = req.options;
    let (name, source, rule, scopes) = match &req.source {
        RequestSource::Named(name) => match config.volumes.get_key_value(name) {
            Some((key, v)) => {
                let mut rule = format!("[volumes.{name}] in {}", config.origin);
                if v.read_only {
                    rule.push_str(" (read_only = true)");
                }
                match v.access {
                    Access::ReadOnly => rule.push_str(" (access = read-only)"),
                    Access::Exclusive => rule.push_str(" (access = exclusive)"),
                    Access::Shared => {}
                }
                let source = match v.backend() {
                    Backend::Path(path) => ResolvedSource::Admin {
                        path: path.to_path_buf(),
                    },
                    Backend::Nfs(nfs) => ResolvedSource::Nfs(
                        admin_nfs(config, name, v, nfs).map_err(|e| e.about(&subject))?,
                    ),
                    // Defined by the admin, so always created on first use.
                    Backend::Managed => ResolvedSource::Managed {
                        root: config.volumes_root.clone(),
                        name: name.clone(),
                        auto_create: true,
                    },
                };
                let scope = Scope::Table {
                    name: key,
                    v,
                    via: None,
                };
                (Some(name.clone()), source, rule, vec![scope])
            }
            None => {
                let root = config.volumes_root.clone();
                let exists = root.join(name).symlink_metadata().is_ok();
                if !config.auto_create && !exists {
                    return Err(HookError::denied(
                        subject,
                        format!(
                            "volume {name} is not defined in {} and auto_create = false",
                            config.origin
                        ),
                    )
                    .hint(format!(
                        "ask the admin to add [volumes.{name}] or to create {}",
                        root.join(name).display()
                    )));
                }
                let rule = if exists {
                    format!("existing volume in volumes_root {}", root.display())
                } else {
                    format!("auto_create in volumes_root {}", root.display())
                };
                let auto_create = config.auto_create;
                (
                    Some(name.clone()),
                    ResolvedSource::Managed {
                        root,
                        name: name.clone(),
                        auto_create,
                    },
                    rule,
                    vec![Scope::Untabled(name)],
                )
            }
        },
        RequestSource::Nfs(url) => {
            let entry = allowed_nfs_url(config, url).map_err(|e| e.about(&subject))?;
            let rule = format!("allowed_nfs_servers entry {entry} in {}", config.origin);
            let volume = NfsVolume {
                host: url.host.clone(),
                port: url.port,
                export: url.export.clone(),
                subdir: None,
                options: NfsOptions::default(),
                timeout: config.mount_timeout,
                timeout_rule: format!("mount_timeout in {}", config.origin),
            };
            (None, ResolvedSource::Nfs(volume), rule, vec![Scope::NfsUrl])
        }
        RequestSource::HostPath(path) => {
            let (path, allowed_by) = allowed_host_path(config, path).map_err(|e| {
                let e = e.about(&subject);
                match e.class {
                    crate::error::Class::Denied => e.hint(format!(
                        "ask the admin to add it to allowed_host_paths, or use a named volume such as \"myapp:{}\"",
                        req.dest.display()
                    )),
                    _ => e,
                }
            })?;
            not_the_hooks_own(config, &path).map_err(|e| e.about(&subject))?;
            let mut rule = format!(
                "allowed_host_paths entry {} in {}",
                allowed_by.display(),
                config.origin
            );
            let mut scopes = vec![Scope::HostPaths];
            for (name, v, how) in admin_overlaps(config, &path) {
                rule.push_str(&format!(
                    " (overlaps [volumes.{name}]{})",
                    [
                        v.admin_read_only().map(str::to_string),
                        (v.access == Access::Exclusive).then(|| "access = exclusive".to_string()),
                        v.noexec.then(|| "noexec = true".to_string()),
                    ]
                    .into_iter()
                    .flatten()
                    .map(|r| format!(": {r}"))
                    .collect::<String>()
                ));
                scopes.push(Scope::Table {
                    name,
                    v,
                    via: Some((path.clone(), how)),
                });
            }
            (
                None,
                ResolvedSource::Host { path, allowed_by },
                rule,
                scopes,
            )
        }
    };
    let rules = Rules::new(config, &scopes, req);
    rules.enforce(req, matches!(source, ResolvedSource::Nfs(_)))?;
    if rules.read_only.is_some() {
        options.read_only = true;
    }
    if rules.noexec.is_some() && !req.exec_asked {
        options.noexec = true;
    }
    let (access, exclusive_readers) = (rules.access, rules.exclusive_readers);
    let mut rule = rule;
    // The user's own config narrows named volumes (per-user modes).
    if let (Some(n), Some(vname)) = (&config.narrowing, &name) {
        let from = n.path.display();
        if n.read_only.contains(vname) && !options.read_only {
            options.read_only = true;
            rule.push_str(&format!(" ([volumes.{vname}] read_only = true in {from})"));
        }
        if n.noexec.contains(vname) && !options.noexec {
            options.noexec = true;
            rule.push_str(&format!(" ([volumes.{vname}] noexec = true in {from})"));
        }
    }
    let admin = match &req.source {
        RequestSource::Named(n) => config.volumes.get(n),
        _ => None,
    };
    options.relabel = selinux_mode(config, req, admin, &mut rule)?;
    // Unset: a shared (z) volume is walked at every start — files a container
    // creates carry its categories, and a walk is what shares them again (as
    // podman does; it only rewrites what differs) — and a private (Z) one
    // only when its label changed (O(1) restarts).
    let relabel_policy = admin
        .and_then(|v| v.relabel)
        .or(config.relabel)
        .unwrap_or(match options.relabel {
            Some(Relabel::Shared) => RelabelPolicy::Always,
            _ => RelabelPolicy::OnChange,
        });
    let owner_change = name
        .as_ref()
        .and_then(|n| config.volumes.get(n))
        .and_then(|v| v.owner_change)
        .unwrap_or(config.owner_change);
    Ok(ResolvedVolume {
        spec: req.spec.clone(),
        name,
        source,
        dest: req.dest.clone(),
        options,
        access,
        exclusive_readers,
        rule,
        relabel_policy,
        owner_change,
        rules,
    })
}

/// The SELinux labelling of a volume: the annotation's z/Z, else the admin's
/// `selinux` default; with `selinux_locked` an annotation may not weaken it
/// (private > shared > none).
fn selinux_mode(
    config: &Config,
    req: &VolumeRequest,
    admin: Option<&crate::config::VolumeConfig>,
    rule: &mut String,
) -> Result<Option<Relabel>, HookError> {
    let asked = req.options.relabel.map(|r| match r {
        Relabel::Shared => SelinuxMode::Shared,
        Relabel::Private => SelinuxMode::Private,
    });
    let default = admin.and_then(|v| v.selinux);
    let name = SelinuxMode::as_str;
    let mode = match (asked, default) {
        (Some(a), Some(d)) if a < d && admin.is_some_and(|v| v.selinux_locked) => {
            let vol = match &req.source {
                RequestSource::Named(n) => n.as_str(),
                _ => "",
            };
            return Err(HookError::denied(
                volume_subject(&req.spec),
                format!(
                    "[volumes.{vol}] in {} sets selinux = \"{}\" with selinux_locked = true; the annotation's {} would weaken it",
                    config.origin,
                    name(d),
                    if a == SelinuxMode::Shared { "z" } else { "none" }
                ),
            )
            .hint(format!(
                "drop z from the annotation (the volume is labelled {} anyway), or ask the admin",
                name(d)
            )));
        }
        (Some(a), _) => a,
        (None, Some(d)) => {
            rule.push_str(&format!(" (selinux = \"{}\")", name(d)));
            d
        }
        (None, None) => SelinuxMode::None,
    };
    Ok(match mode {
        SelinuxMode::None => None,
        SelinuxMode::Shared => Some(Relabel::Shared),
        SelinuxMode::Private => Some(Relabel::Private),
    })
}

/// The NFS volume an admin defined in `[volumes.NAME]` (validated at load).
fn admin_nfs(
    config: &Config,
    name: &str,
    v: &crate::config::VolumeConfig,
    nfs: &str,
) -> Result<NfsVolume, HookError> {
    let bad = |why: String| {
        HookError::failed("", format!("[volumes.{name}] in {}: {why}", config.origin))
    };
    let (host, export) = parse_server_export(nfs).map_err(bad)?;
    let options = match &v.options {
        Some(o) => NfsOptions::parse(o).map_err(bad)?,
        None => NfsOptions::default(),
    };
    let (timeout, timeout_rule) = match v.mount_timeout {
        Some(t) => (
            t,
            format!("[volumes.{name}] mount_timeout in {}", config.origin),
        ),
        None => (
            config.mount_timeout,
            format!("mount_timeout in {}", config.origin),
        ),
    };
    Ok(NfsVolume {
        host,
        port: None,
        export,
        subdir: v.subdir.clone(),
        options,
        timeout,
        timeout_rule,
    })
}
