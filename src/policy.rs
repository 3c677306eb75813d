//! Policy: what the admin allows. Turns a user's [`VolumeRequest`] into a
//! [`ResolvedVolume`] (approved, with the rule that approved it) or a denial
//! that names the rule and the config file. Deny by default.

use std::path::{Path, PathBuf};

use crate::config::nfs::{parse_server_export, AllowedServer, NfsOptions};
use crate::config::{
    Access, Backend, Config, MountOption, OwnerChange, RelabelPolicy, SelinuxMode, VolumeConfig,
};
use crate::error::{volume_subject, HookError};
use crate::input::annotations::{Options, Relabel, RequestSource, VolumeRequest};

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

/// Why the policy refuses something, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub why: String,
    pub hint: String,
}

/// Allowed, or why not.
pub type Decision = Result<(), Refusal>;

impl Refusal {
    fn deny(&self, spec: &str) -> HookError {
        HookError::denied(volume_subject(spec), self.why.clone()).hint(self.hint.clone())
    }
}

/// What the admin allows a request to do with its volume beyond attaching
/// it, however the volume is reached: by its name, or by a host path at,
/// under or above an admin volume's `path` (then the strictest rules of
/// every such volume, and of `allowed_host_paths`, apply). Every decision is
/// made here, from the config and the request alone; prestart enforces the
/// ones the request asks for, `check` shows them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// Mounted read-only whatever the annotation says, and the rule.
    pub read_only: Option<String>,
    pub access: Access,
    pub exclusive_readers: bool,
    /// Mounted noexec unless the annotation's `exec` is allowed, and the rule.
    pub noexec: Option<String>,
    /// Option `idmap` (NFS: refused later by the plan, which says why).
    pub idmap: Decision,
    /// Option `U` (NFS: refused later by the plan).
    pub owner_change: Decision,
    /// Options `z`/`Z` asked in the annotation (an admin's `selinux`
    /// default is checked when the config is loaded).
    pub relabel: Decision,
    /// Option `suid` (clears nosuid).
    pub suid: Decision,
    /// Option `dev` (clears nodev).
    pub dev: Decision,
    /// Option `exec` where noexec is forced (else always allowed).
    pub exec: Decision,
    /// For a host path: the admin volumes it is at, under or above.
    pub overlaps: Vec<String>,
}

/// Through an idmapped mount, files keep the ids the container sees.
const IDMAP_RISK: &str = "through an idmapped mount, a container with a user namespace writes files as host uid 0 (setuid-root programs too) where other host users can reach and run them";

/// How a host path lies against an admin volume's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overlap {
    At,
    Under,
    Above,
}

impl Overlap {
    fn of(path: &Path, other: &Path) -> Option<Overlap> {
        if path == other {
            Some(Overlap::At)
        } else if path.starts_with(other) {
            Some(Overlap::Under)
        } else if other.starts_with(path) {
            Some(Overlap::Above)
        } else {
            None
        }
    }

    fn words(self) -> &'static str {
        match self {
            Overlap::At => "at",
            Overlap::Under => "under",
            Overlap::Above => "above",
        }
    }
}

/// Where a request's rules come from.
enum Scope<'a> {
    /// A `[volumes.NAME]` table: asked by name, or (`via`) overlapped by a
    /// host path.
    Table {
        name: &'a str,
        v: &'a VolumeConfig,
        via: Option<(PathBuf, Overlap)>,
    },
    /// A named volume without a table (managed, in `volumes_root`).
    Untabled(&'a str),
    /// An `allowed_host_paths` request.
    HostPaths,
    /// An `nfs://` URL on an allowed server.
    NfsUrl,
}

impl Scope<'_> {
    /// The volume as messages name it.
    fn place(&self, config: &Config) -> String {
        match self {
            Scope::Table {
                name, via: None, ..
            } => format!("[volumes.{name}] in {}", config.origin),
            Scope::Table {
                name,
                via: Some((path, how)),
                ..
            } => format!(
                "host path {}, {} the path of [volumes.{name}] in {}",
                path.display(),
                how.words(),
                config.origin
            ),
            Scope::Untabled(name) => format!("volume {name}"),
            Scope::HostPaths => "host paths".into(),
            Scope::NfsUrl => "nfs:// volumes".into(),
        }
    }
}

impl Rules {
    fn new(config: &Config, scopes: &[Scope], req: &VolumeRequest) -> Rules {
        let reader = req.options.read_only;
        let tables: Vec<(&str, &VolumeConfig)> = scopes
            .iter()
            .filter_map(|s| match s {
                Scope::Table { name, v, .. } => Some((*name, *v)),
                _ => None,
            })
            .collect();
        let read_only = tables.iter().find_map(|(n, v)| {
            v.admin_read_only()
                .map(|why| format!("[volumes.{n}] {why}"))
        });
        let exclusive: Vec<_> = tables
            .iter()
            .filter(|(_, v)| v.access == Access::Exclusive)
            .collect();
        let access = if !exclusive.is_empty() {
            Access::Exclusive
        } else if tables.iter().any(|(_, v)| v.access == Access::ReadOnly) {
            Access::ReadOnly
        } else {
            Access::Shared
        };
        let exclusive_readers =
            !exclusive.is_empty() && exclusive.iter().all(|(_, v)| v.exclusive_readers);
        let noexec = tables
            .iter()
            .find(|(_, v)| v.noexec)
            .map(|(n, _)| format!("[volumes.{n}] noexec = true"));
        let first = |f: &dyn Fn(&Scope) -> Decision| -> Decision { scopes.iter().try_for_each(f) };
        let idmap = first(&|s| {
            match s {
            Scope::Table { name, v, via } => match (via, v.backend()) {
                (_, Backend::Nfs(_)) | (_, Backend::Managed) => Ok(()),
                (Some(_), _) => Ok(()), // HostPaths refuses it first
                (None, Backend::Path(path)) => v.idmap_allowed().map_err(|why| Refusal {
                    why: format!(
                        "option idmap is not allowed on {} ({why}): {IDMAP_RISK}",
                        s.place(config)
                    ),
                    hint: format!(
                        "remove idmap and use option U instead, or ask the admin to set allow_idmap = true in [volumes.{name}] if no other host user can reach {}",
                        path.display()
                    ),
                }),
            },
            Scope::HostPaths => Err(Refusal {
                why: format!(
                    "option idmap is not allowed on allowed_host_paths requests ({}): {IDMAP_RISK}",
                    config.origin
                ),
                hint: "remove idmap and use option U instead, or use a named volume (under volumes_root only root can reach it)".into(),
            }),
            Scope::Untabled(_) | Scope::NfsUrl => Ok(()),
        }
        });
        let owner_change = first(&|s| {
            match s {
            Scope::Table { name, v, .. } if !matches!(v.backend(), Backend::Nfs(_)) => v
                .owner_change_allowed(v.is_reader(reader))
                .map_err(|why| Refusal {
                    why: format!(
                        "option U is not allowed on {}: {why}; U would give every file in it to the container's user",
                        s.place(config)
                    ),
                    hint: format!(
                        "remove U, or ask the admin to set allow_owner_change = true in [volumes.{name}]"
                    ),
                }),
            _ => Ok(()),
        }
        });
        let letter = match req.options.relabel {
            Some(Relabel::Shared) => "z",
            Some(Relabel::Private) => "Z",
            None => "z/Z",
        };
        let relabel = first(&|s| {
            match s {
            Scope::Table { name, v, .. } => v
                .relabel_allowed(v.is_reader(reader))
                .map_err(|why| Refusal {
                    why: format!(
                        "option {letter} (SELinux relabel) is not allowed on {}: {why}; {letter} would relabel every file in it",
                        s.place(config)
                    ),
                    hint: format!(
                        "remove {letter}, or ask the admin to set allow_relabel = true in [volumes.{name}]"
                    ),
                }),
            _ => Ok(()),
        }
        });
        let option = |o: MountOption| {
            let opt = o.as_str();
            first(&|s| {
                let (why, hint) = match s {
                    Scope::Table { name, v, .. } => match v.option_allowed(o) {
                        Ok(()) => return Ok(()),
                        Err(why) => (
                            why,
                            format!("ask the admin to add \"{opt}\" to allow_options in [volumes.{name}]"),
                        ),
                    },
                    Scope::HostPaths if config.host_path_options.contains(&o) => return Ok(()),
                    Scope::HostPaths => (
                        format!("host_path_options in {} does not list \"{opt}\"", config.origin),
                        format!("ask the admin to add \"{opt}\" to host_path_options"),
                    ),
                    Scope::Untabled(name) => (
                        format!(
                            "volumes without a [volumes.NAME] table in {} allow none of suid, dev, exec",
                            config.origin
                        ),
                        format!(
                            "ask the admin to define [volumes.{name}] with allow_options = [\"{opt}\"]"
                        ),
                    ),
                    Scope::NfsUrl => (
                        format!("{} allows none of suid, dev, exec on them", config.origin),
                        format!(
                            "ask the admin to define the export as a named volume with allow_options = [\"{opt}\"]"
                        ),
                    ),
                };
                Err(Refusal {
                    why: format!(
                        "option {opt} is not allowed on {}: {why}; {}",
                        s.place(config),
                        o.risk()
                    ),
                    hint: format!("remove {opt}, or {hint}"),
                })
            })
        };
        let exec = match noexec {
            Some(_) => option(MountOption::Exec),
            None => Ok(()),
        };
        let overlaps = scopes
            .iter()
            .filter_map(|s| match s {
                Scope::Table {
                    name, via: Some(_), ..
                } => Some(name.to_string()),
                _ => None,
            })
            .collect();
        Rules {
            read_only,
            access,
            exclusive_readers,
            noexec,
            idmap,
            owner_change,
            relabel,
            suid: option(MountOption::Suid),
            dev: option(MountOption::Dev),
            exec,
            overlaps,
        }
    }

    /// Refuse what the request asks and these rules do not allow.
    fn enforce(&self, req: &VolumeRequest, nfs: bool) -> Result<(), HookError> {
        let o = &req.options;
        let checks = [
            (o.idmap && !nfs, &self.idmap),
            (o.chown && !nfs, &self.owner_change),
            (o.relabel.is_some(), &self.relabel),
            (!o.nosuid, &self.suid),
            (!o.nodev, &self.dev),
            (req.exec_asked, &self.exec),
        ];
        for (asked, decision) in checks {
            if asked {
                decision.as_ref().map_err(|r| r.deny(&req.spec))?;
            }
        }
        Ok(())
    }
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

/// The `allowed_nfs_servers` entry that allows an `nfs://` URL.
fn allowed_nfs_url(
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
fn both_forms(p: &Path) -> Vec<PathBuf> {
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
fn not_the_hooks_own(config: &Config, path: &Path) -> Result<(), HookError> {
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
fn admin_overlaps<'a>(
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
    for entry in &config.allowed_host_paths {
        let Ok(entry) = std::fs::canonicalize(entry) else {
            continue;
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MountOption, Origin, VolumeConfig};
    use crate::error::Class;
    use crate::input::annotations::parse_spec;

    fn config(dir: &Path) -> Config {
        let mut c = Config {
            volumes_root: dir.join("vols"),
            origin: Origin::File("/etc/oci-volume-hook/config.toml".into()),
            ..Config::default()
        };
        c.volumes.insert(
            "logs".into(),
            VolumeConfig {
                path: Some(dir.join("logs")),
                read_only: true,
                ..Default::default()
            },
        );
        c
    }

    fn go(c: &Config, spec: &str) -> Result<ResolvedVolume, HookError> {
        resolve(c, &parse_spec(spec).unwrap())
    }

    #[test]
    fn named_volume_auto_create_and_admin_volume() {
        let t = tempfile::tempdir().unwrap();
        let mut c = config(t.path());
        let r = go(&c, "myapp:/myapp").unwrap();
        assert_eq!(
            r.source,
            ResolvedSource::Managed {
                root: t.path().join("vols"),
                name: "myapp".into(),
                auto_create: true
            }
        );
        assert!(r.rule.contains("auto_create"));
        let r = go(&c, "logs:/var/log:rw").unwrap();
        assert!(r.options.read_only, "admin read_only must win over rw");
        assert!(r.rule.contains("[volumes.logs]"));
        c.auto_create = false;
        let e = go(&c, "myapp:/myapp").unwrap_err();
        assert_eq!(e.class, Class::Denied);
        assert!(e.to_string().contains("auto_create = false"), "{e}");
        assert!(
            e.to_string().contains("/etc/oci-volume-hook/config.toml"),
            "{e}"
        );
        std::fs::create_dir_all(t.path().join("vols/myapp")).unwrap();
        assert!(go(&c, "myapp:/myapp")
            .unwrap()
            .rule
            .contains("existing volume"));
    }

    #[test]
    fn shared_volumes_walk_every_start_unless_the_admin_says_otherwise() {
        let t = tempfile::tempdir().unwrap();
        let mut c = config(t.path());
        assert_eq!(
            go(&c, "v:/v:z").unwrap().relabel_policy,
            RelabelPolicy::Always
        );
        assert_eq!(
            go(&c, "v:/v:Z").unwrap().relabel_policy,
            RelabelPolicy::OnChange
        );
        c.relabel = Some(RelabelPolicy::OnChange);
        assert_eq!(
            go(&c, "v:/v:z").unwrap().relabel_policy,
            RelabelPolicy::OnChange
        );
        c.relabel = None;
        c.volumes.insert(
            "w".into(),
            VolumeConfig {
                relabel: Some(RelabelPolicy::OnChange),
                ..Default::default()
            },
        );
        assert_eq!(
            go(&c, "w:/w:z").unwrap().relabel_policy,
            RelabelPolicy::OnChange
        );
    }

    #[test]
    fn selinux_admin_default_and_lock() {
        use crate::config::{RelabelPolicy, SelinuxMode};
        use crate::input::annotations::Relabel;
        let t = tempfile::tempdir().unwrap();
        let mut c = config(t.path());
        c.relabel = Some(RelabelPolicy::Always);
        let vol = |mode, locked| VolumeConfig {
            selinux: Some(mode),
            selinux_locked: locked,
            ..Default::default()
        };
        c.volumes
            .insert("db".into(), vol(SelinuxMode::Private, true));
        c.volumes
            .insert("web".into(), vol(SelinuxMode::Private, false));
        c.volumes.insert(
            "cache".into(),
            VolumeConfig {
                selinux: Some(SelinuxMode::None),
                selinux_locked: true,
                relabel: Some(RelabelPolicy::OnChange),
                ..Default::default()
            },
        );
        // The admin default applies when the annotation says nothing.
        let r = go(&c, "db:/db").unwrap();
        assert_eq!(r.options.relabel, Some(Relabel::Private));
        assert!(r.rule.contains("selinux = \"private\""), "{}", r.rule);
        assert_eq!(r.relabel_policy, RelabelPolicy::Always);
        // Locked: z would weaken private.
        let e = go(&c, "db:/db:z").unwrap_err();
        assert_eq!(e.class, Class::Denied);
        let s = e.to_string();
        assert!(
            s.contains("[volumes.db]") && s.contains("selinux_locked = true"),
            "{s}"
        );
        assert!(s.contains("/etc/oci-volume-hook/config.toml"), "{s}");
        assert_eq!(
            go(&c, "db:/db:Z").unwrap().options.relabel,
            Some(Relabel::Private)
        );
        // Not locked: the annotation wins.
        assert_eq!(
            go(&c, "web:/w:z").unwrap().options.relabel,
            Some(Relabel::Shared)
        );
        // Strengthening a locked "none" is fine; the volume's own relabel wins.
        let r = go(&c, "cache:/c:Z").unwrap();
        assert_eq!(r.options.relabel, Some(Relabel::Private));
        assert_eq!(r.relabel_policy, RelabelPolicy::OnChange);
        assert_eq!(go(&c, "cache:/c").unwrap().options.relabel, None);
        // No admin entry: the annotation alone, the top-level relabel.
        let r = go(&c, "other:/o:z").unwrap();
        assert_eq!(r.options.relabel, Some(Relabel::Shared));
        assert_eq!(r.relabel_policy, RelabelPolicy::Always);
        assert_eq!(go(&c, "other:/o").unwrap().options.relabel, None);
    }

    #[test]
    fn host_paths_are_denied_by_default() {
        let t = tempfile::tempdir().unwrap();
        let c = config(t.path());
        let e = go(&c, "/etc:/x").unwrap_err();
        assert_eq!(e.class, Class::Denied);
        let s = e.to_string();
        assert!(
            s.starts_with("volume \"/etc:/x\" denied by policy: host path /etc"),
            "{s}"
        );
        // A missing path outside the allowlist is a denial, not "not found".
        assert_eq!(
            go(&c, "/nonexistent/x:/x").unwrap_err().class,
            Class::Denied
        );
    }

    #[test]
    fn host_paths_resolve_symlinks_before_the_check() {
        let t = tempfile::tempdir().unwrap();
        let export = t.path().join("export");
        std::fs::create_dir_all(export.join("app")).unwrap();
        std::os::unix::fs::symlink("/etc", export.join("evil")).unwrap();
        std::os::unix::fs::symlink(export.join("app"), t.path().join("outside-link")).unwrap();
        let mut c = config(t.path());
        c.allowed_host_paths = vec![export.clone()];
        let ok = go(&c, &format!("{}:/data", export.join("app").display())).unwrap();
        assert!(matches!(ok.source, ResolvedSource::Host { .. }));
        let e = go(&c, &format!("{}:/data", export.join("evil").display())).unwrap_err();
        assert_eq!(e.class, Class::Denied);
        assert!(e.to_string().contains("resolves to /etc"), "{e}");
        // A link from outside that points inside is judged by where it points.
        assert!(go(
            &c,
            &format!("{}:/data", t.path().join("outside-link").display())
        )
        .is_ok());
        // A missing path inside the allowlist is a failure that says so.
        let e = go(&c, &format!("{}:/data", export.join("nope").display())).unwrap_err();
        assert_eq!(e.class, Class::Failed);
        // A prefix that is not a path boundary does not count.
        std::fs::create_dir_all(t.path().join("exporter")).unwrap();
        let e = go(
            &c,
            &format!("{}:/data", t.path().join("exporter").display()),
        )
        .unwrap_err();
        assert_eq!(e.class, Class::Denied);
    }

    #[test]
    fn nfs_volumes_resolve_and_nfs_urls_need_the_allowlist() {
        let t = tempfile::tempdir().unwrap();
        let c = Config::parse(
            r#"
mount_timeout = 7
[volumes.shared-logs]
nfs = "fs.example.com:/exports/logs"
options = "vers=4.1,hard,timeo=600"
subdir = "app1"
[volumes.v3]
nfs = "10.0.0.5:/srv/nfs"
options = "vers=3,nolock"
mount_timeout = 3
read_only = true
"#,
            Path::new("/etc/oci-volume-hook/config.toml"),
        )
        .unwrap();
        let mut c = Config {
            volumes_root: t.path().join("vols"),
            ..c
        };
        let r = go(&c, "shared-logs:/var/log/app:ro").unwrap();
        let ResolvedSource::Nfs(n) = &r.source else {
            panic!("{r:?}")
        };
        assert_eq!(n.display(), "fs.example.com:/exports/logs/app1");
        assert_eq!(
            (n.timeout, n.options.version),
            (7, crate::config::nfs::Version::V4_1)
        );
        assert!(r.rule.contains("[volumes.shared-logs]"));
        let r = go(&c, "v3:/data").unwrap();
        let ResolvedSource::Nfs(n) = &r.source else {
            panic!("{r:?}")
        };
        assert_eq!(n.timeout, 3);
        assert!(n.timeout_rule.contains("[volumes.v3] mount_timeout"));
        assert!(r.options.read_only);
        // nfs:// is denied by default, allowed by the allowlist.
        let e = go(&c, "nfs://fs.example.com/exports/x:/x").unwrap_err();
        assert_eq!(e.class, Class::Denied);
        c.allowed_nfs_servers = vec!["fs.example.com".into()];
        let r = go(&c, "nfs://fs.example.com:2050/exports/x:/x").unwrap();
        let ResolvedSource::Nfs(n) = &r.source else {
            panic!("{r:?}")
        };
        assert_eq!(
            (n.port, n.export.as_path()),
            (Some(2050), Path::new("/exports/x"))
        );
        assert!(r.rule.contains("allowed_nfs_servers"));
    }

    fn parse_config(dir: &Path, text: &str) -> Config {
        let c = Config::parse(text, Path::new("/etc/oci-volume-hook/config.toml")).unwrap();
        Config {
            volumes_root: dir.join("vols"),
            state_dir: dir.join("state"),
            origin: Origin::File("/etc/oci-volume-hook/config.toml".into()),
            ..c
        }
    }

    /// A denial, with its message and hint.
    fn denied(c: &Config, spec: &str) -> (String, String) {
        let e = go(c, spec).unwrap_err();
        assert_eq!(e.class, Class::Denied, "{spec}: {e}");
        assert_eq!(e.exit_code(), 3);
        let s = e.to_string();
        assert!(s.contains("/etc/oci-volume-hook/config.toml"), "{s}");
        (s, e.hint.unwrap_or_default())
    }

    #[test]
    fn idmap_only_where_no_other_host_user_reaches_the_files() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("export/app")).unwrap();
        let c = parse_config(
            t.path(),
            &format!(
                "allowed_host_paths = [\"{0}/export\"]\n[volumes.adm]\npath = \"{0}/adm\"\n[volumes.opt]\npath = \"{0}/opt\"\nallow_idmap = true\n[volumes.mine]\n",
                t.path().display()
            ),
        );
        // Managed volumes, with a table or without: allowed.
        assert!(go(&c, "mine:/m:idmap").unwrap().options.idmap);
        assert!(go(&c, "other:/o:idmap").unwrap().options.idmap);
        // An admin path: only with the admin's opt-in.
        let (s, hint) = denied(&c, "adm:/v:idmap");
        assert!(
            s.contains("option idmap") && s.contains("[volumes.adm]"),
            "{s}"
        );
        assert!(s.contains("host uid 0") && s.contains("setuid"), "{s}");
        assert!(
            hint.contains("allow_idmap = true") && hint.contains("option U"),
            "{hint}"
        );
        assert!(go(&c, "opt:/v:idmap").unwrap().options.idmap);
        // Host paths: never.
        let spec = format!("{}/export/app:/v:idmap", t.path().display());
        let (s, hint) = denied(&c, &spec);
        assert!(
            s.contains("option idmap") && s.contains("allowed_host_paths"),
            "{s}"
        );
        assert!(hint.contains("option U"), "{hint}");
        // The decision is there for check even when not asked.
        assert!(go(&c, "adm:/v").unwrap().rules.idmap.is_err());
        assert!(go(&c, "opt:/v").unwrap().rules.idmap.is_ok());
        assert!(go(&c, &spec.replace(":idmap", ""))
            .unwrap()
            .rules
            .idmap
            .is_err());
    }

    #[test]
    fn u_and_relabel_on_read_only_volumes_need_the_admins_opt_in() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().display();
        let c = parse_config(
            t.path(),
            &format!(
                r#"
[volumes.refdata]
path = "{p}/ref"
read_only = true
[volumes.acc]
path = "{p}/acc"
access = "read-only"
[volumes.optin]
path = "{p}/optin"
read_only = true
allow_owner_change = true
allow_relabel = true
[volumes.nochange]
path = "{p}/nochange"
allow_owner_change = false
allow_relabel = false
[volumes.mine]
path = "{p}/mine"
[volumes.ex]
access = "exclusive"
exclusive_readers = true
[volumes.solo]
access = "exclusive"
"#
            ),
        );
        for spec in ["refdata:/r:U", "acc:/r:U", "nochange:/r:U", "ex:/r:ro,U"] {
            let (s, hint) = denied(&c, spec);
            assert!(s.contains("option U is not allowed on [volumes."), "{s}");
            assert!(hint.contains("allow_owner_change = true"), "{hint}");
        }
        let (s, _) = denied(&c, "refdata:/r:U");
        assert!(s.contains("read_only = true"), "{s}");
        let (s, _) = denied(&c, "acc:/r:U");
        assert!(s.contains("access = \"read-only\""), "{s}");
        let (s, _) = denied(&c, "ex:/r:ro,U");
        assert!(s.contains("exclusive_readers"), "{s}");
        for (spec, letter) in [
            ("refdata:/r:z", "option z"),
            ("acc:/r:Z", "option Z"),
            ("nochange:/r:z", "option z"),
            ("ex:/r:ro,Z", "option Z"),
        ] {
            let (s, hint) = denied(&c, spec);
            assert!(s.contains(letter) && s.contains("relabel"), "{s}");
            assert!(hint.contains("allow_relabel = true"), "{hint}");
        }
        // The admin's opt-in: U and z work, the mount stays read-only.
        let r = go(&c, "optin:/r:U,z").unwrap();
        assert!(r.options.chown && r.options.read_only);
        assert_eq!(r.options.relabel, Some(Relabel::Shared));
        // A user's own :ro on a writable volume changes nothing.
        for spec in [
            "mine:/m:ro,U",
            "mine:/m:ro,z",
            "mine:/m:ro,Z",
            "solo:/s:ro,U",
        ] {
            let r = go(&c, spec).unwrap();
            assert!(r.options.read_only, "{spec}");
        }
        // The writer of an exclusive_readers volume may.
        assert!(go(&c, "ex:/r:U,Z").is_ok());
        // Managed volumes without a table, and host paths, as before.
        assert!(go(&c, "any:/a:U,z").is_ok());
        // Not asked: no denial, but check can show the decision.
        let r = go(&c, "refdata:/r").unwrap();
        assert!(r.rules.owner_change.is_err() && r.rules.relabel.is_err());
        assert_eq!(
            r.rules.read_only.as_deref(),
            Some("[volumes.refdata] read_only = true")
        );
    }

    #[test]
    fn suid_dev_and_exec_only_where_the_admin_allows_them() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().display();
        std::fs::create_dir_all(t.path().join("export/app")).unwrap();
        let mut c = parse_config(
            t.path(),
            &format!(
                r#"
allowed_host_paths = ["{p}/export"]
allowed_nfs_servers = ["nfs1"]
[volumes.sv]
[volumes.ok]
allow_options = ["suid", "dev"]
[volumes.nx]
noexec = true
[volumes.nxok]
noexec = true
allow_options = ["exec"]
"#
            ),
        );
        // A table without allow_options, no table, nfs://: none.
        for (spec, word, key) in [
            (
                "sv:/s:suid,dev",
                "option suid",
                "allow_options in [volumes.sv]",
            ),
            ("sv:/s:dev", "option dev", "allow_options in [volumes.sv]"),
            (
                "auto:/s:suid",
                "option suid",
                "[volumes.auto] with allow_options",
            ),
            (
                "nfs://nfs1/e:/s:dev",
                "option dev",
                "named volume with allow_options",
            ),
        ] {
            let (s, hint) = denied(&c, spec);
            assert!(s.contains(word), "{s}");
            assert!(hint.contains(key), "{spec}: {hint}");
        }
        let (s, _) = denied(&c, "sv:/s:suid");
        assert!(s.contains("nosuid") && s.contains("setuid"), "{s}");
        let (s, _) = denied(&c, "sv:/s:dev");
        assert!(s.contains("nodev") && s.contains("device"), "{s}");
        let r = go(&c, "ok:/s:suid,dev").unwrap();
        assert!(!r.options.nosuid && !r.options.nodev);
        // nosuid, nodev, noexec are always fine; exec is the default.
        assert!(go(&c, "sv:/s:nosuid,nodev,noexec").is_ok());
        assert!(go(&c, "sv:/s:exec").is_ok());
        // Host paths: host_path_options.
        let host = format!("{p}/export/app:/s:suid,dev");
        let (s, hint) = denied(&c, &host);
        assert!(
            s.contains("option suid") && s.contains("host_path_options"),
            "{s}"
        );
        assert!(hint.contains("host_path_options"), "{hint}");
        c.host_path_options = vec![MountOption::Suid, MountOption::Dev];
        let r = go(&c, &host).unwrap();
        assert!(!r.options.nosuid && !r.options.nodev);
        // noexec = true: forced, and exec is refused unless allowed.
        let r = go(&c, "nx:/x").unwrap();
        assert!(r.options.noexec);
        assert_eq!(
            r.rules.noexec.as_deref(),
            Some("[volumes.nx] noexec = true")
        );
        let (s, hint) = denied(&c, "nx:/x:exec");
        assert!(s.contains("option exec") && s.contains("noexec"), "{s}");
        assert!(
            hint.contains("\"exec\" to allow_options in [volumes.nx]"),
            "{hint}"
        );
        assert!(go(&c, "nxok:/x").unwrap().options.noexec);
        assert!(!go(&c, "nxok:/x:exec").unwrap().options.noexec);
    }

    #[test]
    fn nfs_urls_limited_by_export_prefix() {
        let t = tempfile::tempdir().unwrap();
        let c = parse_config(
            t.path(),
            "allowed_nfs_servers = [\"nfs1:/export/containers\", \"nfs2\", \"nfs3:2050\"]",
        );
        let r = go(&c, "nfs://nfs1/export/containers/app:/d").unwrap();
        assert!(r.rule.contains("nfs1:/export/containers"), "{}", r.rule);
        assert!(go(&c, "nfs://NFS1:2049/export/containers:/d").is_ok());
        for spec in [
            "nfs://nfs1/export/containers2:/d",
            "nfs://nfs1/export:/d",
            "nfs://nfs1/:/d",
            "nfs://nfs1:20490/export/containers/app:/d",
        ] {
            let (s, hint) = denied(&c, spec);
            assert!(
                s.contains("NFS export") && s.contains("nfs1:/export/containers"),
                "{s}"
            );
            assert!(hint.contains("prefix"), "{hint}");
        }
        // The existing forms keep their meaning.
        assert!(go(&c, "nfs://nfs2:9999/anything:/d").is_ok());
        assert!(go(&c, "nfs://nfs3:2050/x:/d").is_ok());
        assert!(go(&c, "nfs://nfs3/x:/d").is_err());
        let (s, _) = denied(&c, "nfs://nfs4/x:/d");
        assert!(
            s.contains("NFS server nfs4 is not in allowed_nfs_servers"),
            "{s}"
        );
        // Entries are checked at load.
        for bad in ["nfs1:/a/../b", "/export", "nfs1:0", "a b"] {
            let e = Config::parse(
                &format!("allowed_nfs_servers = [\"{bad}\"]"),
                Path::new("/etc/x.toml"),
            )
            .unwrap_err()
            .to_string();
            assert!(e.contains("allowed_nfs_servers entry"), "{bad}: {e}");
        }
    }

    #[test]
    fn host_paths_get_the_rules_of_the_admin_volumes_they_overlap() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().display();
        for d in ["x/ref/sub", "x/excl", "x/free", "x/nx", "link-target"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        std::os::unix::fs::symlink(t.path().join("x/excl"), t.path().join("excl-link")).unwrap();
        let mut c = parse_config(
            t.path(),
            &format!(
                r#"
allowed_host_paths = ["{p}/x"]
host_path_options = ["suid", "exec"]
[volumes.refdata]
path = "{p}/x/ref"
read_only = true
[volumes.excl]
path = "{p}/excl-link"
access = "exclusive"
exclusive_readers = true
allow_options = ["suid"]
[volumes.nx]
path = "{p}/x/nx"
noexec = true
"#
            ),
        );
        // At, under, above a read-only admin volume: read-only, and said.
        for (sub, how) in [("x/ref", "at"), ("x/ref/sub", "under")] {
            let r = go(&c, &format!("{p}/{sub}:/r:rw")).unwrap();
            assert!(r.options.read_only, "{sub}");
            // As by name: read_only = true forces ro, access stays shared.
            assert_eq!(r.access, Access::Shared);
            assert!(
                r.rule
                    .contains("overlaps [volumes.refdata]: read_only = true"),
                "{}",
                r.rule
            );
            assert_eq!(r.rules.overlaps, ["refdata"]);
            let (s, hint) = denied(&c, &format!("{p}/{sub}:/r:U"));
            assert!(s.contains("option U"), "{s}");
            assert!(
                s.contains(&format!("{how} the path of [volumes.refdata]")),
                "{s}"
            );
            assert!(
                hint.contains("allow_owner_change = true in [volumes.refdata]"),
                "{hint}"
            );
            let (s, _) = denied(&c, &format!("{p}/{sub}:/r:z"));
            assert!(s.contains("option z") && s.contains("relabel"), "{s}");
        }
        // Above: every admin volume under it, strictest of all.
        let r = go(&c, &format!("{p}/x:/r")).unwrap();
        assert!(r.options.read_only && r.options.noexec);
        assert_eq!(r.access, Access::Exclusive);
        assert!(r.exclusive_readers);
        let mut names = r.rules.overlaps.clone();
        names.sort();
        assert_eq!(names, ["excl", "nx", "refdata"]);
        // suid: host_path_options and excl allow it, refdata and nx do not.
        let (s, hint) = denied(&c, &format!("{p}/x:/r:suid"));
        assert!(
            s.contains("option suid") && s.contains("above the path of"),
            "{s}"
        );
        assert!(hint.contains("allow_options in [volumes."), "{hint}");
        // The exclusive volume, reached through its symlinked config path.
        let r = go(&c, &format!("{p}/x/excl:/e")).unwrap();
        assert_eq!((r.access, r.exclusive_readers), (Access::Exclusive, true));
        assert!(!r.options.read_only);
        assert!(
            r.rule
                .contains("overlaps [volumes.excl]: access = exclusive"),
            "{}",
            r.rule
        );
        assert!(go(&c, &format!("{p}/x/excl:/e:suid")).is_ok());
        let (s, _) = denied(&c, &format!("{p}/x/excl:/e:ro,U"));
        assert!(s.contains("exclusive_readers"), "{s}");
        // dev: neither host_path_options nor the volume.
        let (_, hint) = denied(&c, &format!("{p}/x/excl:/e:dev"));
        assert!(hint.contains("host_path_options"), "{hint}");
        // noexec: forced; exec needs both host_path_options and the volume.
        assert!(go(&c, &format!("{p}/x/nx:/n")).unwrap().options.noexec);
        let (_, hint) = denied(&c, &format!("{p}/x/nx:/n:exec"));
        assert!(hint.contains("allow_options in [volumes.nx]"), "{hint}");
        c.volumes.get_mut("nx").unwrap().allow_options = vec![MountOption::Exec];
        assert!(!go(&c, &format!("{p}/x/nx:/n:exec")).unwrap().options.noexec);
        c.host_path_options.clear();
        let (_, hint) = denied(&c, &format!("{p}/x/nx:/n:exec"));
        assert!(hint.contains("host_path_options"), "{hint}");
        // A sibling overlaps nothing.
        let r = go(&c, &format!("{p}/x/free:/f:U,z")).unwrap();
        assert!(!r.options.read_only && r.rules.overlaps.is_empty());
        assert_eq!(r.access, Access::Shared);
        // The same volume by name keeps its own rules only.
        assert!(go(&c, "excl:/e:suid").is_ok());
        assert!(!go(&c, "refdata:/r").unwrap().options.noexec);
    }

    #[test]
    fn host_paths_never_reach_volumes_root_or_state_dir() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().display();
        for d in ["vols/a", "state/containers", "real-vols/b", "other"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        let mut c = parse_config(t.path(), &format!("allowed_host_paths = [\"{p}\"]"));
        for (sub, key, how) in [
            ("vols", "volumes_root", "at"),
            ("vols/a", "volumes_root", "under"),
            ("state", "state_dir", "at"),
            ("state/containers", "state_dir", "under"),
        ] {
            let (s, hint) = denied(&c, &format!("{p}/{sub}:/v:U"));
            assert!(
                s.contains(key) && s.contains(&format!(" is {how} {key}")),
                "{s}"
            );
            assert!(hint.contains("named volume"), "{hint}");
        }
        // Above both.
        let (s, _) = denied(&c, &format!("{p}:/v"));
        assert!(s.contains("above volumes_root"), "{s}");
        assert!(go(&c, &format!("{p}/other:/v")).is_ok());
        // A volumes_root given through a symlink is compared resolved too.
        std::os::unix::fs::symlink(t.path().join("real-vols"), t.path().join("vlink")).unwrap();
        c.volumes_root = t.path().join("vlink");
        let (s, _) = denied(&c, &format!("{p}/real-vols/b:/v"));
        assert!(s.contains("under volumes_root"), "{s}");
        // A missing one is compared as written.
        c.volumes_root = t.path().join("other/not-yet");
        let (s, _) = denied(&c, &format!("{p}/other:/v"));
        assert!(s.contains("above volumes_root"), "{s}");
    }
}
