//! The admin's configuration (`/etc/oci-volume-hook/config.toml`): loaded,
//! size-capped, strictly validated (unknown keys are refused with file:line).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::annotations::validate_name;
use crate::error::HookError;

pub const DEFAULT_CONFIG: &str = "/etc/oci-volume-hook/config.toml";
pub const DEFAULT_VOLUMES_ROOT: &str = "/var/lib/oci-volume-hook/volumes";
pub const DEFAULT_STATE_DIR: &str = "/run/oci-volume-hook";
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
pub const MAX_CONFIG_VOLUMES: usize = 4096;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_volumes_root")]
    pub volumes_root: PathBuf,
    #[serde(default = "default_true")]
    pub auto_create: bool,
    #[serde(default)]
    pub allowed_host_paths: Vec<PathBuf>,
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    #[serde(default)]
    pub log_level: Option<String>,
    #[serde(default)]
    pub volumes: BTreeMap<String, VolumeConfig>,
    /// Where this config came from, for messages ("built-in defaults" or a path).
    #[serde(skip)]
    pub origin: Origin,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VolumeConfig {
    /// The host directory (or file) this named volume binds.
    pub path: PathBuf,
    /// Force read-only whatever the annotation says.
    #[serde(default)]
    pub read_only: bool,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub enum Origin {
    #[default]
    BuiltIn,
    File(PathBuf),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::BuiltIn => write!(f, "the built-in defaults (no {DEFAULT_CONFIG})"),
            Origin::File(p) => write!(f, "{}", p.display()),
        }
    }
}

fn default_volumes_root() -> PathBuf {
    PathBuf::from(DEFAULT_VOLUMES_ROOT)
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn default_true() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Config {
            volumes_root: default_volumes_root(),
            auto_create: true,
            allowed_host_paths: Vec::new(),
            state_dir: default_state_dir(),
            log_level: None,
            volumes: BTreeMap::new(),
            origin: Origin::BuiltIn,
        }
    }
}

impl Config {
    /// Load `explicit` (must exist) or the default path (missing = defaults).
    pub fn load(explicit: Option<&Path>) -> Result<Config, HookError> {
        let path = explicit.unwrap_or(Path::new(DEFAULT_CONFIG));
        let subject = format!("config {}", path.display());
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
                return Ok(Config::default())
            }
            Err(e) => return Err(HookError::failed(subject, format!("open: {e}"))),
        };
        let meta = file
            .metadata()
            .map_err(|e| HookError::failed(&subject, format!("stat: {e}")))?;
        if !meta.is_file() {
            return Err(HookError::failed(subject, "not a regular file"));
        }
        // The hook runs as root on input from this file: only root may write it.
        if meta.uid() != 0 && rustix::process::geteuid().is_root() {
            return Err(HookError::failed(
                &subject,
                format!("owned by uid {}, not root", meta.uid()),
            )
            .hint("chown root:root the file"));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(HookError::failed(
                &subject,
                format!("mode {:04o} lets others write it", meta.mode() & 0o7777),
            )
            .hint("chmod go-w the file"));
        }
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| HookError::failed(&subject, format!("read: {e}")))?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(HookError::failed(
                subject,
                format!("larger than {MAX_CONFIG_BYTES} bytes"),
            ));
        }
        let mut config = Config::parse(&text, path)?;
        config.origin = Origin::File(path.to_path_buf());
        Ok(config)
    }

    /// Parse and validate TOML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, HookError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let msg = e.message().trim().to_string();
            let why = match line {
                Some(l) => format!("{}:{l}: {msg}", path.display()),
                None => format!("{}: {msg}", path.display()),
            };
            HookError::failed("config", why).hint("fix the file; see oci-volume-hook.conf(5)")
        })?;
        config.validate(path)?;
        Ok(config)
    }

    fn validate(&self, path: &Path) -> Result<(), HookError> {
        let bad = |why: String| {
            HookError::failed("config", format!("{}: {why}", path.display()))
                .hint("fix the file; see oci-volume-hook.conf(5)")
        };
        let absolute = |key: &str, p: &Path| -> Result<(), HookError> {
            if !p.is_absolute() || p.components().any(|c| c == std::path::Component::ParentDir) {
                return Err(bad(format!(
                    "{key} = {:?} must be an absolute path without \"..\"",
                    p
                )));
            }
            Ok(())
        };
        absolute("volumes_root", &self.volumes_root)?;
        if self.volumes_root == Path::new("/") {
            return Err(bad("volumes_root must not be /".into()));
        }
        absolute("state_dir", &self.state_dir)?;
        for p in &self.allowed_host_paths {
            absolute("allowed_host_paths entry", p)?;
        }
        if let Some(level) = &self.log_level {
            if level.parse::<log::LevelFilter>().is_err() {
                return Err(bad(format!(
                    "log_level = {level:?} is not one of off, error, warn, info, debug, trace"
                )));
            }
        }
        if self.volumes.len() > MAX_CONFIG_VOLUMES {
            return Err(bad(format!(
                "more than {MAX_CONFIG_VOLUMES} [volumes] tables"
            )));
        }
        for (name, v) in &self.volumes {
            validate_name(name).map_err(|why| bad(format!("[volumes.{name}]: {why}")))?;
            absolute(&format!("[volumes.{name}] path"), &v.path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<Config, HookError> {
        Config::parse(t, Path::new("/etc/x.toml"))
    }

    #[test]
    fn defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.volumes_root, PathBuf::from(DEFAULT_VOLUMES_ROOT));
        assert!(c.auto_create);
        assert!(c.allowed_host_paths.is_empty());
        assert_eq!(c, Config::default());
    }

    #[test]
    fn full_config() {
        let c = parse(
            r#"
volumes_root = "/srv/vols"
auto_create = false
allowed_host_paths = ["/export"]
log_level = "debug"
[volumes.logs]
path = "/var/log/app"
read_only = true
"#,
        )
        .unwrap();
        assert!(!c.auto_create);
        assert!(c.volumes["logs"].read_only);
    }

    #[test]
    fn unknown_keys_are_refused_with_file_and_line() {
        let e = parse("auto_create = true\n\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/etc/x.toml:3:"), "{e}");
        assert!(e.contains("bogus"), "{e}");
        let e = parse("[volumes.a]\npath = \"/x\"\nsize = 5\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("/etc/x.toml:3:"), "{e}");
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "volumes_root = \"relative\"",
            "volumes_root = \"/\"",
            "volumes_root = \"/a/../b\"",
            "allowed_host_paths = [\"x\"]",
            "log_level = \"loud\"",
            "[volumes.\"-bad\"]\npath = \"/x\"",
            "[volumes.a]\npath = \"rel\"",
            "[volumes.a]\nread_only = true",
            "auto_create = \"yes\"",
            "this is not toml",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_default_is_builtin_but_missing_explicit_is_an_error() {
        let e = Config::load(Some(Path::new("/nonexistent/ovh.toml"))).unwrap_err();
        assert_eq!(e.exit_code(), 1);
    }
}
