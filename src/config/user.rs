//! The user's own config (`~/.config/oci-volume-hook/config.toml`), read in
//! the per-user modes (rootless podman, `check` and `volumes` run by a
//! normal user). It may only narrow the admin's policy, never widen it:
//! every key it accepts can only take something away, and a key that could
//! widen (`volumes_root`, `allowed_nfs_servers`, `[volumes.X] path`, …) is
//! refused as unknown, with the file and line, so that a user never
//! believes a setting took effect when it did not.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::config::{toml_error, Config};
use crate::error::HookError;
use crate::input::annotations::validate_name;

/// What the user config may say.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Only `false`: named volumes are no longer created on first use.
    #[serde(default)]
    pub auto_create: Option<bool>,
    /// Replaces the admin's list; every entry must be an admin entry or lie
    /// below one (the intersection).
    #[serde(default)]
    pub allowed_host_paths: Option<Vec<PathBuf>>,
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    pub volumes: BTreeMap<String, UserVolume>,
}

/// What the user config may say about one named volume: only `true`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserVolume {
    #[serde(default)]
    pub read_only: Option<bool>,
    #[serde(default)]
    pub noexec: Option<bool>,
}

/// The narrowing a user config applied, kept on the [`Config`] for the
/// policy (per-volume flags) and for messages (the file).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Narrowing {
    pub path: PathBuf,
    /// Named volumes (admin-defined or managed) forced read-only / noexec.
    pub read_only: Vec<String>,
    pub noexec: Vec<String>,
}

const HINT: &str = "the user config may only narrow the admin's policy: auto_create = false, allowed_host_paths within the admin's, log_level, and [volumes.NAME] read_only = true / noexec = true (see oci-volume-hook.conf(5))";

impl UserConfig {
    pub fn parse(text: &str, path: &Path) -> Result<UserConfig, HookError> {
        toml::from_str(text).map_err(|e| toml_error(&e, text, path).hint(HINT))
    }
}

/// Apply `user` (read from `path`) to the admin's `config`: narrower or an
/// error naming the key that would widen it.
pub fn narrow(config: &mut Config, user: &UserConfig, path: &Path) -> Result<(), HookError> {
    let widen =
        |why: String| HookError::failed("config", format!("{}: {why}", path.display())).hint(HINT);
    match user.auto_create {
        Some(true) => {
            return Err(widen(
                "auto_create = true: a user config can only turn auto_create off".into(),
            ))
        }
        Some(false) => config.auto_create = false,
        None => {}
    }
    if let Some(paths) = &user.allowed_host_paths {
        for p in paths {
            let clean = p.is_absolute() && !p.components().any(|c| c == Component::ParentDir);
            if !clean {
                return Err(widen(format!(
                    "allowed_host_paths entry {p:?} must be an absolute path without \"..\""
                )));
            }
            if !config.allowed_host_paths.iter().any(|a| p.starts_with(a)) {
                return Err(widen(format!(
                    "allowed_host_paths entry {} is not within the admin's allowed_host_paths ({}) in {}",
                    p.display(),
                    if config.allowed_host_paths.is_empty() {
                        "none".to_string()
                    } else {
                        config
                            .allowed_host_paths
                            .iter()
                            .map(|a| a.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    },
                    config.origin
                )));
            }
        }
        config.allowed_host_paths = paths.clone();
    }
    if let Some(level) = &user.log_level {
        if level.parse::<log::LevelFilter>().is_err() {
            return Err(widen(format!(
                "log_level = {level:?} is not one of off, error, warn, info, debug, trace"
            )));
        }
        config.log_level = Some(level.clone());
    }
    let mut narrowing = Narrowing {
        path: path.to_path_buf(),
        ..Narrowing::default()
    };
    for (name, v) in &user.volumes {
        validate_name(name).map_err(|why| widen(format!("[volumes.{name}]: {why}")))?;
        for (key, value, list) in [
            ("read_only", v.read_only, &mut narrowing.read_only),
            ("noexec", v.noexec, &mut narrowing.noexec),
        ] {
            match value {
                Some(true) => list.push(name.clone()),
                Some(false) => {
                    return Err(widen(format!(
                        "[volumes.{name}] {key} = false: a user config can only set it to true"
                    )))
                }
                None => {}
            }
        }
    }
    config.narrowing = Some(narrowing);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin(t: &str) -> Config {
        Config::parse(t, Path::new("/etc/oci-volume-hook/config.toml")).unwrap()
    }

    fn apply(admin_text: &str, user_text: &str) -> Result<Config, String> {
        let mut c = admin(admin_text);
        let p = Path::new("/home/alice/.config/oci-volume-hook/config.toml");
        let u = UserConfig::parse(user_text, p).map_err(|e| e.to_string())?;
        narrow(&mut c, &u, p).map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn narrowing_keys_narrow() {
        let c = apply(
            "allowed_host_paths = [\"/srv\", \"/data\"]\n",
            "auto_create = false\nallowed_host_paths = [\"/srv/alice\"]\nlog_level = \"debug\"\n[volumes.db]\nread_only = true\n[volumes.web]\nnoexec = true\n",
        )
        .unwrap();
        assert!(!c.auto_create);
        assert_eq!(c.allowed_host_paths, vec![PathBuf::from("/srv/alice")]);
        assert_eq!(c.log_level.as_deref(), Some("debug"));
        let n = c.narrowing.unwrap();
        assert_eq!(n.read_only, vec!["db".to_string()]);
        assert_eq!(n.noexec, vec!["web".to_string()]);
        // An empty list: no host path at all.
        let c = apply(
            "allowed_host_paths = [\"/srv\"]\n",
            "allowed_host_paths = []\n",
        )
        .unwrap();
        assert!(c.allowed_host_paths.is_empty());
        // No user keys: the admin's policy as it is.
        let c = apply("allowed_host_paths = [\"/srv\"]\nauto_create = false\n", "").unwrap();
        assert_eq!(c.allowed_host_paths, vec![PathBuf::from("/srv")]);
        assert!(!c.auto_create);
    }

    #[test]
    fn widening_is_refused_with_the_key() {
        for (admin_text, user_text, want) in [
            (
                "",
                "allowed_host_paths = [\"/home/alice\"]",
                "not within the admin's allowed_host_paths (none)",
            ),
            (
                "allowed_host_paths = [\"/srv/a\"]",
                "allowed_host_paths = [\"/srv\"]",
                "/srv is not within",
            ),
            (
                "allowed_host_paths = [\"/srv\"]",
                "allowed_host_paths = [\"/srv/../etc\"]",
                "without \"..\"",
            ),
            (
                "allowed_host_paths = [\"/srv\"]",
                "allowed_host_paths = [\"/srvx\"]",
                "not within",
            ),
            (
                "auto_create = false",
                "auto_create = true",
                "can only turn auto_create off",
            ),
            (
                "",
                "[volumes.db]\nread_only = false",
                "can only set it to true",
            ),
            (
                "",
                "volumes_root = \"/tmp/v\"",
                "unknown field `volumes_root`",
            ),
            ("", "state_dir = \"/tmp/s\"", "unknown field `state_dir`"),
            ("", "allowed_nfs_servers = [\"x\"]", "unknown field"),
            ("", "[volumes.db]\npath = \"/etc\"", "unknown field `path`"),
            ("", "[volumes.db]\nallow_idmap = true", "unknown field"),
            ("", "log_level = \"loud\"", "log_level"),
        ] {
            let e = apply(admin_text, user_text).unwrap_err();
            assert!(e.contains(want), "{user_text}: {e}");
            assert!(e.contains("may only narrow"), "{user_text}: {e}");
        }
    }
}
