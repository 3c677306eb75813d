//! The one key of the hook's config.toml the wrapper reads: `runtime`, the
//! real runtime's absolute path. Every other key is the hook's business and
//! is ignored here (the hook validates the file strictly when it runs).

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::HookError;

/// The hook's default config file.
pub const DEFAULT_CONFIG: &str = "/etc/oci-volume-hook/config.toml";
const MAX_CONFIG_BYTES: u64 = 1 << 20;

#[derive(Debug, Default, Deserialize)]
struct WrapperKeys {
    #[serde(default)]
    runtime: Option<PathBuf>,
}

/// The `runtime` key of `explicit` (which must exist) or of the default
/// config (a missing default file means no key). Owner and mode are checked
/// as the hook checks them: the runtime named here is executed as root.
pub fn configured_runtime(explicit: Option<&Path>) -> Result<Option<PathBuf>, HookError> {
    let path = explicit.unwrap_or(Path::new(DEFAULT_CONFIG));
    let subject = format!("config {}", path.display());
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && explicit.is_none() => {
            return Ok(None)
        }
        Err(e) => return Err(HookError::failed(subject, format!("open: {e}"))),
    };
    let meta = file
        .metadata()
        .map_err(|e| HookError::failed(&subject, format!("stat: {e}")))?;
    if !meta.is_file() {
        return Err(HookError::failed(subject, "not a regular file"));
    }
    if meta.uid() != 0 && rustix::process::geteuid().is_root() {
        return Err(
            HookError::failed(&subject, format!("owned by uid {}, not root", meta.uid()))
                .hint("chown root:root the file"),
        );
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
    parse(&text, path)
}

fn parse(text: &str, path: &Path) -> Result<Option<PathBuf>, HookError> {
    let keys: WrapperKeys = toml::from_str(text).map_err(|e| {
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
