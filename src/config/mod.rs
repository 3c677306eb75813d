//! The admin's configuration (`/etc/oci-volume-hook/config.toml`): loaded,
//! size-capped, strictly validated (unknown keys are refused with file:line).

pub mod nfs;
pub mod rules;
pub mod user;

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::HookError;
use crate::input::annotations::validate_name;
use crate::input::host::Host;

pub use rules::MountOption;

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
    /// Servers an annotation may name in an `nfs://` source (deny by default).
    #[serde(default)]
    pub allowed_nfs_servers: Vec<String>,
    /// Deadline in seconds for an NFS mount (per-volume override allowed).
    #[serde(default = "default_mount_timeout")]
    pub mount_timeout: u64,
    /// Relabel policy for volumes without their own `relabel`.
    #[serde(default)]
    pub relabel: Option<RelabelPolicy>,
    /// Ownership change policy for volumes without their own `owner_change`.
    #[serde(default)]
    pub owner_change: OwnerChange,
    /// Mount flags an `allowed_host_paths` request may ask for (`suid`,
    /// `dev`, `exec`); none by default.
    #[serde(default)]
    pub host_path_options: Vec<MountOption>,
    #[serde(default)]
    pub volumes: BTreeMap<String, VolumeConfig>,
    /// The real runtime `oci-volume-runtime` executes (absolute); the hook
    /// itself does not use it.
    #[serde(default)]
    pub runtime: Option<PathBuf>,
    /// Where this config came from, for messages ("built-in defaults" or a path).
    #[serde(skip)]
    pub origin: Origin,
    /// Who may own the hook's own directories (`volumes_root`, the paths on
    /// the way to a volume) in this mode: root, or also the rootless user.
    #[serde(skip, default = "root_owners")]
    pub owners: crate::fd::Owners,
    /// What the user's own config took away (per-user modes only).
    #[serde(skip)]
    pub narrowing: Option<user::Narrowing>,
}

/// An admin-defined volume. With `path`: a bind of that host path. With
/// `nfs`: an NFS export. With neither: a managed volume under
/// `volumes_root`, with the settings below.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VolumeConfig {
    /// The host directory (or file) this named volume binds.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// `server:/export`, as in fstab.
    #[serde(default)]
    pub nfs: Option<String>,
    /// NFS mount options (`vers=4.1,hard,timeo=600`).
    #[serde(default)]
    pub options: Option<String>,
    /// A sub-directory of the export, created on first use.
    #[serde(default)]
    pub subdir: Option<PathBuf>,
    #[serde(default)]
    pub mount_timeout: Option<u64>,
    /// Force read-only whatever the annotation says.
    #[serde(default)]
    pub read_only: bool,
    /// SELinux labelling when the annotation says neither z nor Z.
    #[serde(default)]
    pub selinux: Option<SelinuxMode>,
    /// The annotation may not weaken `selinux` (private > shared > none).
    #[serde(default)]
    pub selinux_locked: bool,
    #[serde(default)]
    pub relabel: Option<RelabelPolicy>,
    #[serde(default)]
    pub owner_change: Option<OwnerChange>,
    #[serde(default)]
    pub access: Access,
    /// With `access = "exclusive"`: read-only users may attach while a
    /// writer holds the volume (and a writer may attach beside readers).
    #[serde(default)]
    pub exclusive_readers: bool,
    /// Option `idmap` on this `path` volume (managed volumes allow it anyway).
    #[serde(default)]
    pub allow_idmap: bool,
    /// Option `U`; unset: false on a read-only volume, true otherwise.
    #[serde(default)]
    pub allow_owner_change: Option<bool>,
    /// Options `z`/`Z`; unset: false on a read-only volume, true otherwise.
    #[serde(default)]
    pub allow_relabel: Option<bool>,
    /// Mount flags the annotation may ask for (`suid`, `dev`, `exec`).
    #[serde(default)]
    pub allow_options: Vec<MountOption>,
    /// Always mount noexec (the annotation's `exec` needs `allow_options`).
    #[serde(default)]
    pub noexec: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum SelinuxMode {
    None,
    Shared,
    Private,
}

/// When to walk a volume to relabel it.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RelabelPolicy {
    /// Skip the walk when the root carries the target label and the marker
    /// of a completed relabel (O(1) restarts).
    #[default]
    OnChange,
    Always,
}

/// When to walk a volume to change its owner (Kubernetes' fsGroupChangePolicy).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum OwnerChange {
    #[default]
    OnRootMismatch,
    Always,
}

/// Who may attach a volume at once.
#[derive(Debug, Clone, Copy, Default, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    #[default]
    Shared,
    Exclusive,
    ReadOnly,
}

/// Where an admin-defined volume's data lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend<'a> {
    /// `path =`: a bind of that host path.
    Path(&'a Path),
    /// `nfs = "server:/export"`.
    Nfs(&'a str),
    /// Neither: a managed volume under `volumes_root`.
    Managed,
}

impl VolumeConfig {
    /// The one place that tells a path, NFS and managed volume apart.
    pub fn backend(&self) -> Backend<'_> {
        match (&self.path, &self.nfs) {
            (Some(p), _) => Backend::Path(p),
            (None, Some(n)) => Backend::Nfs(n),
            (None, None) => Backend::Managed,
        }
    }
}

impl SelinuxMode {
    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            SelinuxMode::None => "none",
            SelinuxMode::Shared => "shared",
            SelinuxMode::Private => "private",
        }
    }
}

impl OwnerChange {
    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerChange::OnRootMismatch => "on-root-mismatch",
            OwnerChange::Always => "always",
        }
    }
}

impl Access {
    /// The name in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Shared => "shared",
            Access::Exclusive => "exclusive",
            Access::ReadOnly => "read-only",
        }
    }
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
fn root_owners() -> crate::fd::Owners {
    crate::fd::Owners::ROOT
}

fn default_true() -> bool {
    true
}
fn default_mount_timeout() -> u64 {
    10
}
pub const MAX_MOUNT_TIMEOUT: u64 = 600;

impl Default for Config {
    fn default() -> Self {
        Config {
            volumes_root: default_volumes_root(),
            auto_create: true,
            allowed_host_paths: Vec::new(),
            state_dir: default_state_dir(),
            log_level: None,
            allowed_nfs_servers: Vec::new(),
            mount_timeout: default_mount_timeout(),
            relabel: None,
            owner_change: OwnerChange::default(),
            host_path_options: Vec::new(),
            volumes: BTreeMap::new(),
            runtime: None,
            origin: Origin::BuiltIn,
            owners: crate::fd::Owners::ROOT,
            narrowing: None,
        }
    }
}

impl Config {
    /// Load `explicit` (must exist) or the default path (missing = defaults).
    pub fn load(explicit: Option<&Path>) -> Result<Config, HookError> {
        let Some((text, path)) = read_text(explicit)? else {
            return Ok(Config::default());
        };
        let mut config = Config::parse(&text, &path)?;
        config.origin = Origin::File(path);
        Ok(config)
    }

    /// The config for `host`. Rootful: [`Config::load`]. Per-user (rootless
    /// podman, or a normal user running `check`/`volumes`): the admin's
    /// file, which must belong to host root (seen as the overflow uid inside
    /// the user namespace); then `volumes_root` and `state_dir` become the
    /// user's own, whatever the admin's say; then the user's config, if any,
    /// narrows the rest ([`user::narrow`]).
    pub fn load_for(explicit: Option<&Path>, host: &Host) -> Result<Config, HookError> {
        if !host.per_user() {
            return Config::load(explicit);
        }
        let owners = host.owners();
        let mut config = match read_checked(
            explicit,
            Path::new(DEFAULT_CONFIG),
            owners.host_root,
            None,
            &format!("host root (uid {} here)", owners.host_root),
        )? {
            None => Config::default(),
            Some((text, path)) => {
                let mut c = Config::parse(&text, &path)?;
                c.origin = Origin::File(path);
                c
            }
        };
        let (Some(volumes_root), Some(state_dir)) = (host.volumes_root(), host.state_dir()) else {
            return Err(HookError::failed(
                "config",
                "no per-user paths for this user",
            ));
        };
        if config.volumes_root != Path::new(DEFAULT_VOLUMES_ROOT)
            || config.state_dir != Path::new(DEFAULT_STATE_DIR)
        {
            log::debug!(
                "{}: volumes_root and state_dir do not apply to a normal user's containers",
                config.origin
            );
        }
        config.volumes_root = volumes_root;
        config.state_dir = state_dir;
        config.owners = owners;
        if let Some(user_path) = host.user_config() {
            // The user's file: the user's (0 inside the namespace), nobody
            // else may write it.
            let own = owners.user.unwrap_or(owners.host_root);
            match read_checked(
                None,
                &user_path,
                own,
                None,
                &format!("the user (uid {own} here)"),
            ) {
                Ok(Some((text, path))) => {
                    let u = user::UserConfig::parse(&text, &path)?;
                    user::narrow(&mut config, &u, &path)?;
                }
                Ok(None) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(config)
    }

    /// Parse and validate TOML text; `path` is only used in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, HookError> {
        let config: Config = toml::from_str(text).map_err(|e| toml_error(&e, text, path))?;
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
        if let Some(r) = &self.runtime {
            absolute("runtime", r)?;
        }
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
        let timeout_ok = |t: u64| (1..=MAX_MOUNT_TIMEOUT).contains(&t);
        if !timeout_ok(self.mount_timeout) {
            return Err(bad(format!(
                "mount_timeout = {} must be 1 to {MAX_MOUNT_TIMEOUT} seconds",
                self.mount_timeout
            )));
        }
        for server in &self.allowed_nfs_servers {
            crate::config::nfs::AllowedServer::parse(server)
                .map_err(|why| bad(format!("allowed_nfs_servers entry {server:?}: {why}")))?;
        }
        for (name, v) in &self.volumes {
            let t = format!("[volumes.{name}]");
            validate_name(name).map_err(|why| bad(format!("{t}: {why}")))?;
            if let Some(p) = &v.path {
                absolute(&format!("{t} path"), p)?;
            }
            match &v.nfs {
                Some(_) if v.path.is_some() => {
                    return Err(bad(format!("{t} has both path and nfs; choose one")))
                }
                Some(nfs) => {
                    crate::config::nfs::parse_server_export(nfs)
                        .map_err(|why| bad(format!("{t} {why}")))?;
                    if let Some(o) = &v.options {
                        crate::config::nfs::NfsOptions::parse(o)
                            .map_err(|why| bad(format!("{t} options: {why}")))?;
                    }
                }
                None => {
                    if v.options.is_some() || v.subdir.is_some() || v.mount_timeout.is_some() {
                        return Err(bad(format!(
                            "{t}: options, subdir and mount_timeout need nfs = \"server:/export\""
                        )));
                    }
                }
            }
            if let Some(sub) = &v.subdir {
                let clean = sub.is_relative()
                    && sub
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)));
                if !clean || sub.as_os_str().is_empty() {
                    return Err(bad(format!(
                        "{t} subdir = {sub:?} must be a relative path without \"..\""
                    )));
                }
            }
            v.validate_rules()
                .map_err(|why| bad(format!("{t}: {why}")))?;
            if let Some(t2) = v.mount_timeout {
                if !timeout_ok(t2) {
                    return Err(bad(format!(
                        "{t} mount_timeout = {t2} must be 1 to {MAX_MOUNT_TIMEOUT} seconds"
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The text of `explicit` (which must exist) or of the default config (a
/// missing default file means `None`: the built-in defaults). The hook and
/// the runtime wrapper run as root on input from this file: only root may
/// write it, and it is size-capped.
pub fn read_text(explicit: Option<&Path>) -> Result<Option<(String, PathBuf)>, HookError> {
    let root = rustix::process::geteuid().is_root();
    // Not root: whatever the file says, it can grant nothing the caller
    // could not do by hand.
    let other = (!root).then(|| rustix::process::geteuid().as_raw());
    read_checked(explicit, Path::new(DEFAULT_CONFIG), 0, other, "root")
}

/// [`read_text`] with the owners that may own the file: `owner` (host
/// root as this process sees it), or `also` when given.
fn read_checked(
    explicit: Option<&Path>,
    default: &Path,
    owner: u32,
    also: Option<u32>,
    who: &str,
) -> Result<Option<(String, PathBuf)>, HookError> {
    let path = explicit.unwrap_or(default);
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
    if meta.uid() != owner && also != Some(meta.uid()) {
        return Err(
            HookError::failed(&subject, format!("owned by uid {}, not {who}", meta.uid())).hint(
                if who == "root" {
                    "chown root:root the file"
                } else {
                    "the admin's config must belong to root, a user's own config to that user"
                },
            ),
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
    Ok(Some((text, path.to_path_buf())))
}

/// A TOML error as `FILE:LINE: message`, with the man page as the hint.
pub fn toml_error(e: &toml::de::Error, text: &str, path: &Path) -> HookError {
    let line = e
        .span()
        .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
    let msg = e.message().trim().to_string();
    let why = match line {
        Some(l) => format!("{}:{l}: {msg}", path.display()),
        None => format!("{}: {msg}", path.display()),
    };
    HookError::failed("config", why).hint("fix the file; see oci-volume-hook.conf(5)")
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
allowed_nfs_servers = ["fs.example.com"]
mount_timeout = 20
relabel = "always"
owner_change = "always"
[volumes.logs]
path = "/var/log/app"
read_only = true
[volumes.db]
selinux = "private"
selinux_locked = true
access = "exclusive"
relabel = "on-change"
owner_change = "on-root-mismatch"
[volumes.shared-logs]
nfs = "fs.example.com:/exports/logs"
options = "vers=4.1,hard,timeo=600"
subdir = "app1"
mount_timeout = 5
"#,
        )
        .unwrap();
        assert!(!c.auto_create);
        assert!(c.volumes["logs"].read_only);
        assert_eq!(c.volumes["db"].selinux, Some(SelinuxMode::Private));
        assert_eq!(c.volumes["db"].access, Access::Exclusive);
        assert_eq!(c.volumes["shared-logs"].subdir, Some(PathBuf::from("app1")));
        assert_eq!(
            (c.mount_timeout, c.relabel, c.owner_change),
            (20, Some(RelabelPolicy::Always), OwnerChange::Always)
        );
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
            "[volumes.a]\npath = \"/x\"\nnfs = \"h:/e\"",
            "[volumes.a]\nnfs = \"no-export\"",
            "[volumes.a]\npath = \"/x\"\nsubdir = \"a\"",
            "[volumes.a]\nnfs = \"h:/e\"\nsubdir = \"../a\"",
            "[volumes.a]\nnfs = \"h:/e\"\nmount_timeout = 0",
            "[volumes.a]\nselinux = \"paranoid\"",
            "[volumes.a]\naccess = \"mine\"",
            "mount_timeout = 100000",
            "relabel = \"sometimes\"",
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
