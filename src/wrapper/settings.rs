//! The one key of the hook's config.toml the wrapper reads: `runtime`, the
//! real runtime's absolute path. Every other key is the hook's business and
//! is ignored here (the hook validates the file strictly when it runs).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{read_text, toml_error};
use crate::error::HookError;

#[derive(Debug, Default, Deserialize)]
struct WrapperKeys {
    #[serde(default)]
    runtime: Option<PathBuf>,
}

/// The `runtime` key of `explicit` (which must exist) or of the default
/// config (a missing default file means no key). The file is read with the
/// hook's own checks (root-owned, not writable by others, size-capped): the
/// runtime named here is executed as root.
pub fn configured_runtime(explicit: Option<&Path>) -> Result<Option<PathBuf>, HookError> {
    match read_text(explicit)? {
        None => Ok(None),
        Some((text, path)) => parse(&text, &path),
    }
}

fn parse(text: &str, path: &Path) -> Result<Option<PathBuf>, HookError> {
    let keys: WrapperKeys = toml::from_str(text).map_err(|e| toml_error(&e, text, path))?;
    match keys.runtime {
        Some(p) if !p.is_absolute() => Err(HookError::failed(
            "config",
            format!(
                "{}: runtime {:?} is not an absolute path",
                path.display(),
                p
            ),
        )
        .hint("the runtime is never looked up through PATH")),
        r => Ok(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn p(text: &str) -> Result<Option<PathBuf>, HookError> {
        parse(text, Path::new("/c.toml"))
    }

    #[test]
    fn runtime_key_among_the_hooks_keys() {
        let text = "volumes_root = \"/v\"\nruntime = \"/usr/bin/crun\"\nlog_level = \"debug\"\n\n[volumes.db]\npath = \"/srv/db\"\nunknown_to_us = 1\n";
        assert_eq!(p(text).unwrap(), Some(PathBuf::from("/usr/bin/crun")));
        assert_eq!(p("volumes_root = \"/v\"\n").unwrap(), None);
        assert_eq!(p("").unwrap(), None);
    }

    #[test]
    fn runtime_key_errors() {
        let e = p("runtime = \"crun\"\n").unwrap_err().to_string();
        assert!(e.contains("not an absolute path"), "{e}");
        let e = p("a = 1\nruntime = 3\n").unwrap_err().to_string();
        assert!(e.starts_with("config failed: /c.toml:2: "), "{e}");
        let e = p("runtime = \n").unwrap_err().to_string();
        assert!(e.contains("/c.toml:1"), "{e}");
    }

    #[test]
    fn files() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("config.toml");
        let e = configured_runtime(Some(&f)).unwrap_err().to_string();
        assert!(e.contains("open: "), "{e}");
        std::fs::write(&f, "runtime = \"/opt/runc\"\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(
            configured_runtime(Some(&f)).unwrap(),
            Some(PathBuf::from("/opt/runc"))
        );
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = configured_runtime(Some(&f)).unwrap_err().to_string();
        assert!(
            e.contains("lets others write it") || e.contains("not root"),
            "{e}"
        );
    }
}
