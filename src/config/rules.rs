//! A volume's rules for what an annotation may ask beyond attaching it:
//! `idmap`, `U`, `z`/`Z`, and the mount flags that lift a restriction
//! (`suid`, `dev`, `exec`). Pure: the config alone, no file is read. The
//! policy combines them per request (a host path that overlaps admin volumes
//! gets the strictest of all of them), and `check` shows the same answers.

use serde::Deserialize;

use super::{Access, Backend, SelinuxMode, VolumeConfig};

/// A mount flag that lifts one of the hook's restrictions; the annotation
/// may ask for it only where the admin lists it (`allow_options` in a
/// volume's table, `host_path_options` for `allowed_host_paths`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum MountOption {
    Suid,
    Dev,
    Exec,
}

impl MountOption {
    pub const ALL: [MountOption; 3] = [MountOption::Suid, MountOption::Dev, MountOption::Exec];

    /// The name in the config file and the annotation.
    pub fn as_str(self) -> &'static str {
        match self {
            MountOption::Suid => "suid",
            MountOption::Dev => "dev",
            MountOption::Exec => "exec",
        }
    }

    /// What allowing it risks, for messages and `check`.
    pub fn risk(self) -> &'static str {
        match self {
            MountOption::Suid => {
                "it clears nosuid, so a setuid or setgid file in the volume runs with its owner's ids in the container"
            }
            MountOption::Dev => {
                "it clears nodev, so a device node in the volume opens that host device in the container"
            }
            MountOption::Exec => "it lifts the noexec the admin set, so files in the volume can be run",
        }
    }
}

impl VolumeConfig {
    /// Why the admin made this volume read-only, if it did.
    pub fn admin_read_only(&self) -> Option<&'static str> {
        if self.read_only {
            Some("read_only = true")
        } else if self.access == Access::ReadOnly {
            Some("access = \"read-only\"")
        } else {
            None
        }
    }

    /// A read-only request on an `exclusive_readers` volume: admitted beside
    /// the writer only because it reads.
    pub fn is_reader(&self, read_only_request: bool) -> bool {
        read_only_request && self.access == Access::Exclusive && self.exclusive_readers
    }

    /// Why `allow_owner_change` and `allow_relabel` default to false here.
    fn protected(&self, reader: bool) -> Option<String> {
        if let Some(why) = self.admin_read_only() {
            return Some(format!("the admin made it read-only ({why})"));
        }
        if self.is_reader(reader) {
            return Some(
                "this read-only request reads it beside its writer (access = \"exclusive\", exclusive_readers = true)"
                    .into(),
            );
        }
        None
    }

    /// Option `U` on this volume. `reader`: the request itself is read-only
    /// (it matters only on an `exclusive_readers` volume). `Err` says why not.
    pub fn owner_change_allowed(&self, reader: bool) -> Result<(), String> {
        if let Backend::Nfs(_) = self.backend() {
            return Err("file ownership on NFS is the server's".into());
        }
        match (self.allow_owner_change, self.protected(reader)) {
            (Some(true), _) | (None, None) => Ok(()),
            (Some(false), _) => Err("allow_owner_change = false".into()),
            (None, Some(why)) => Err(format!("{why}, and allow_owner_change is not set to true")),
        }
    }

    /// Options `z`/`Z` on this volume (on NFS they set `context=` and change
    /// no file, so only an explicit `allow_relabel = false` forbids them).
    pub fn relabel_allowed(&self, reader: bool) -> Result<(), String> {
        let protected = match self.backend() {
            Backend::Nfs(_) => None,
            _ => self.protected(reader),
        };
        match (self.allow_relabel, protected) {
            (Some(true), _) | (None, None) => Ok(()),
            (Some(false), _) => Err("allow_relabel = false".into()),
            (None, Some(why)) => Err(format!("{why}, and allow_relabel is not set to true")),
        }
    }

    /// A mount flag the annotation asks for (`exec` matters only with `noexec = true`).
    pub fn option_allowed(&self, option: MountOption) -> Result<(), String> {
        if self.allow_options.contains(&option) {
            Ok(())
        } else {
            Err(format!(
                "allow_options does not list \"{}\"",
                option.as_str()
            ))
        }
    }

    /// Option `idmap` on this volume. Allowed where no other host user can
    /// reach the files: a managed volume (under `volumes_root`, mode 0700),
    /// or a `path` volume whose admin says so with `allow_idmap = true`.
    pub fn idmap_allowed(&self) -> Result<(), String> {
        match self.backend() {
            Backend::Managed => Ok(()),
            Backend::Path(_) if self.allow_idmap => Ok(()),
            Backend::Path(_) => Err("allow_idmap = true is not set".into()),
            Backend::Nfs(_) => Err("the kernel cannot idmap NFS mounts".into()),
        }
    }

    /// Load-time checks of the rule keys.
    pub(super) fn validate_rules(&self) -> Result<(), String> {
        if self.allow_idmap {
            if let Backend::Nfs(_) = self.backend() {
                return Err(
                    "allow_idmap = true cannot apply to an nfs volume: the kernel cannot idmap NFS mounts"
                        .into(),
                );
            }
        }
        if let Some(mode @ (SelinuxMode::Shared | SelinuxMode::Private)) = self.selinux {
            if let Err(why) = self.relabel_allowed(false) {
                return Err(format!(
                    "selinux = \"{}\" relabels the volume, but relabelling is not allowed on it ({why}); set allow_relabel = true, or remove selinux",
                    mode.as_str()
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn vol(toml: &str) -> VolumeConfig {
        let c = Config::parse(&format!("[volumes.v]\n{toml}"), Path::new("/etc/x.toml")).unwrap();
        c.volumes["v"].clone()
    }

    fn err(toml: &str) -> String {
        Config::parse(toml, Path::new("/etc/x.toml"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn owner_change_and_relabel_default_to_off_on_read_only_volumes() {
        for ro in ["read_only = true", "access = \"read-only\""] {
            let v = vol(&format!("path = \"/srv/ref\"\n{ro}"));
            let e = v.owner_change_allowed(false).unwrap_err();
            assert!(e.contains(ro) && e.contains("allow_owner_change"), "{e}");
            let e = v.relabel_allowed(false).unwrap_err();
            assert!(e.contains(ro) && e.contains("allow_relabel"), "{e}");
            // The admin's opt-in wins.
            let v = vol(&format!(
                "path = \"/srv/ref\"\n{ro}\nallow_owner_change = true\nallow_relabel = true"
            ));
            assert_eq!(v.owner_change_allowed(false), Ok(()));
            assert_eq!(v.relabel_allowed(true), Ok(()));
        }
        // Writable volumes: allowed unless the admin forbids it.
        let v = vol("path = \"/srv/w\"");
        assert_eq!(v.owner_change_allowed(true), Ok(()));
        assert_eq!(v.relabel_allowed(true), Ok(()));
        let v = vol("allow_owner_change = false\nallow_relabel = false");
        assert_eq!(
            v.owner_change_allowed(false).unwrap_err(),
            "allow_owner_change = false"
        );
        assert_eq!(
            v.relabel_allowed(false).unwrap_err(),
            "allow_relabel = false"
        );
    }

    #[test]
    fn readers_of_exclusive_readers_volumes_are_protected() {
        let v = vol("access = \"exclusive\"\nexclusive_readers = true");
        assert!(v.is_reader(true) && !v.is_reader(false));
        // The writer may; a reader beside it may not, by default.
        assert_eq!(v.owner_change_allowed(false), Ok(()));
        assert!(v
            .owner_change_allowed(true)
            .unwrap_err()
            .contains("exclusive_readers"));
        assert!(v.relabel_allowed(true).is_err());
        // Without exclusive_readers a reader holds the volume alone.
        let v = vol("access = \"exclusive\"");
        assert_eq!(v.owner_change_allowed(true), Ok(()));
        let v = vol("access = \"exclusive\"\nexclusive_readers = true\nallow_owner_change = true");
        assert_eq!(v.owner_change_allowed(true), Ok(()));
    }

    #[test]
    fn nfs_relabel_sets_a_context_and_changes_no_file() {
        let v = vol("nfs = \"h:/e\"\nread_only = true");
        assert_eq!(v.relabel_allowed(false), Ok(()));
        assert!(v.owner_change_allowed(false).is_err());
        assert!(v.idmap_allowed().unwrap_err().contains("NFS"));
        let v = vol("nfs = \"h:/e\"\nallow_relabel = false");
        assert!(v.relabel_allowed(false).is_err());
    }

    #[test]
    fn idmap_needs_a_managed_volume_or_the_admins_opt_in() {
        assert_eq!(vol("").idmap_allowed(), Ok(()));
        assert_eq!(vol("access = \"exclusive\"").idmap_allowed(), Ok(()));
        assert!(vol("path = \"/srv/a\"")
            .idmap_allowed()
            .unwrap_err()
            .contains("allow_idmap = true"));
        assert_eq!(
            vol("path = \"/srv/a\"\nallow_idmap = true").idmap_allowed(),
            Ok(())
        );
        let e = err("[volumes.n]\nnfs = \"h:/e\"\nallow_idmap = true");
        assert!(
            e.contains("[volumes.n]") && e.contains("cannot idmap NFS"),
            "{e}"
        );
    }

    #[test]
    fn allow_options_are_checked_at_load() {
        let v = vol("allow_options = [\"suid\", \"dev\"]\nnoexec = true");
        assert_eq!(v.option_allowed(MountOption::Suid), Ok(()));
        assert_eq!(v.option_allowed(MountOption::Dev), Ok(()));
        assert!(v
            .option_allowed(MountOption::Exec)
            .unwrap_err()
            .contains("\"exec\""));
        assert!(v.noexec);
        let e = err("[volumes.v]\nallow_options = [\"suid\", \"setuid\"]");
        assert!(e.contains("/etc/x.toml:2:") && e.contains("setuid"), "{e}");
        assert!(e.contains("suid") && e.contains("exec"), "{e}");
        let e = err("host_path_options = [\"nosuid\"]");
        assert!(e.contains("/etc/x.toml:1:") && e.contains("nosuid"), "{e}");
        let c = Config::parse(
            "host_path_options = [\"suid\", \"dev\", \"exec\"]",
            Path::new("/x"),
        )
        .unwrap();
        assert_eq!(c.host_path_options, MountOption::ALL);
        assert!(MountOption::ALL.iter().all(|o| !o.risk().is_empty()));
    }

    #[test]
    fn an_admin_selinux_default_needs_relabelling_allowed() {
        let e = err("[volumes.r]\npath = \"/srv/r\"\nread_only = true\nselinux = \"shared\"");
        assert!(
            e.contains("[volumes.r]")
                && e.contains("selinux = \"shared\"")
                && e.contains("allow_relabel = true")
                && e.contains("read_only = true"),
            "{e}"
        );
        let e = err("[volumes.r]\nselinux = \"private\"\nallow_relabel = false");
        assert!(e.contains("allow_relabel = false"), "{e}");
        // Opted in, or no labelling asked: fine.
        vol("path = \"/srv/r\"\nread_only = true\nselinux = \"shared\"\nallow_relabel = true");
        vol("path = \"/srv/r\"\nread_only = true\nselinux = \"none\"");
        vol("nfs = \"h:/e\"\nread_only = true\nselinux = \"private\"");
    }
}
