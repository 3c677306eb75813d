//! What the admin allows a request to do with its volume beyond attaching
//! it: one decision per option, in one place for prestart and `check`.

use std::path::{Path, PathBuf};

use crate::config::{Access, Backend, Config, MountOption, VolumeConfig};
use crate::error::{volume_subject, HookError};
use crate::input::annotations::{Relabel, VolumeRequest};

/// Why the policy refuses something, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub why: String,
    pub hint: String,
}

/// Allowed, or why not.
pub type Decision = Result<(), Refusal>;

impl Refusal {
    pub(super) fn deny(&self, spec: &str) -> HookError {
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
pub(super) const IDMAP_RISK: &str = "through an idmapped mount, a container with a user namespace writes files as host uid 0 (setuid-root programs too) where other host users can reach and run them";

/// How a host path lies against an admin volume's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Overlap {
    At,
    Under,
    Above,
}

impl Overlap {
    pub(super) fn of(path: &Path, other: &Path) -> Option<Overlap> {
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

    pub(super) fn words(self) -> &'static str {
        match self {
            Overlap::At => "at",
            Overlap::Under => "under",
            Overlap::Above => "above",
        }
    }
}

/// Where a request's rules come from.
pub(super) enum Scope<'a> {
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
    pub(super) fn place(&self, config: &Config) -> String {
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
    pub(super) fn new(config: &Config, scopes: &[Scope], req: &VolumeRequest) -> Rules {
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
    pub(super) fn enforce(&self, req: &VolumeRequest, nfs: bool) -> Result<(), HookError> {
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
