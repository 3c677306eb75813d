//! Policy: what the admin allows. Turns a user's [`VolumeRequest`] into a
//! [`ResolvedVolume`] (approved, with the rule that approved it) or a denial
//! that names the rule and the config file. Deny by default.

use std::path::{Path, PathBuf};

use crate::config::nfs::{parse_server_export, NfsOptions};
use crate::config::{Access, Backend, Config, OwnerChange, RelabelPolicy, SelinuxMode};
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
}

pub fn resolve(config: &Config, req: &VolumeRequest) -> Result<ResolvedVolume, HookError> {
    let subject = volume_subject(&req.spec);
    let mut options = req.options;
    let (mut access, mut exclusive_readers) = (Access::Shared, false);
    let (name, source, rule) = match &req.source {
        RequestSource::Named(name) => match config.volumes.get(name) {
            Some(v) => {
                let mut rule = format!("[volumes.{name}] in {}", config.origin);
                if v.read_only {
                    options.read_only = true;
                    rule.push_str(" (read_only = true)");
                }
                (access, exclusive_readers) = (v.access, v.exclusive_readers);
                match v.access {
                    Access::ReadOnly => {
                        options.read_only = true;
                        rule.push_str(" (access = read-only)");
                    }
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
                (Some(name.clone()), source, rule)
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
                )
            }
        },
        RequestSource::Nfs(url) => {
            let allowed = config.allowed_nfs_servers.iter().any(|s| {
                s.eq_ignore_ascii_case(&url.host)
                    || url
                        .port
                        .is_some_and(|p| s.eq_ignore_ascii_case(&format!("{}:{p}", url.host)))
            });
            if !allowed {
                return Err(HookError::denied(
                    subject,
                    format!(
                        "NFS server {} is not in allowed_nfs_servers of {}",
                        url.host, config.origin
                    ),
                )
                .hint("ask the admin to add the server there, or to define the export as a named volume"));
            }
            let rule = format!(
                "allowed_nfs_servers entry {} in {}",
                url.host, config.origin
            );
            let volume = NfsVolume {
                host: url.host.clone(),
                port: url.port,
                export: url.export.clone(),
                subdir: None,
                options: NfsOptions::default(),
                timeout: config.mount_timeout,
                timeout_rule: format!("mount_timeout in {}", config.origin),
            };
            (None, ResolvedSource::Nfs(volume), rule)
        }
        RequestSource::HostPath(path) => {
            let (path, allowed_by) = allowed_host_path(config, path).map_err(|e| {
                let e = e.about(subject);
                match e.class {
                    crate::error::Class::Denied => e.hint(format!(
                        "ask the admin to add it to allowed_host_paths, or use a named volume such as \"myapp:{}\"",
                        req.dest.display()
                    )),
                    _ => e,
                }
            })?;
            let rule = format!(
                "allowed_host_paths entry {} in {}",
                allowed_by.display(),
                config.origin
            );
            (None, ResolvedSource::Host { path, allowed_by }, rule)
        }
    };
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
    use crate::config::{Origin, VolumeConfig};
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
}
