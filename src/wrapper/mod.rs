//! `oci-volume-runtime`: a runtime wrapper for engines that do not read
//! hooks.d (docker, containerd). The engine runs it in place of runc; on
//! `create`/`run` of a container that asks for volumes it adds our hooks to
//! the bundle's config.json, and in every case it then execs the real
//! runtime with the same arguments, so that the runtime's output and exit
//! code reach the engine untouched.
//!
//! `args` reads the command line, `settings` the `runtime` key of the
//! hook's config.toml, `bundle` edits config.json. Nothing here prints on
//! stdout: that belongs to the runtime.

pub(crate) mod args;
pub(crate) mod bundle;
pub(crate) mod settings;

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::error::HookError;

/// Prefix of every line the wrapper writes.
pub const PROGRAM: &str = "oci-volume-runtime";
/// The hook, looked up beside the wrapper's own executable only.
pub const HOOK_BINARY: &str = "oci-volume-hook";
/// Where runc is looked for when neither `--runtime` nor the config's
/// `runtime` key names one (Debian ships /usr/sbin/runc). Never PATH.
pub const DEFAULT_RUNTIMES: [&str; 2] = ["/usr/bin/runc", "/usr/sbin/runc"];

/// Run the wrapper with its arguments (without argv[0]). Returns only on
/// error; on success the process has become the runtime.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let inv_for_errors;
    let err = match args::parse(argv) {
        Err(e) => {
            inv_for_errors = args::Invocation::default();
            e
        }
        Ok(w) => {
            inv_for_errors = args::inspect(&w.runtime_args);
            match prepare(&w, &inv_for_errors) {
                Ok(mut cmd) => {
                    let e = cmd.exec();
                    exec_failed(cmd.get_program(), e)
                }
                Err(e) => e,
            }
        }
    };
    report(&err, &inv_for_errors);
    ExitCode::from(err.exit_code())
}

/// Everything before the exec: pick the runtime, edit the bundle if the
/// container asks for volumes, and build the runtime's command.
pub fn prepare(w: &args::WrapperArgs, inv: &args::Invocation) -> Result<Command, HookError> {
    let runtime = resolve_runtime(w)?;
    if let Some(target) = &inv.create {
        let hook = HookSpecSource::beside_own_exe()?;
        edit_bundle(&target.config_path(), &hook.spec(w.config.as_deref())?)?;
    }
    let mut cmd = Command::new(runtime);
    cmd.args(&w.runtime_args);
    Ok(cmd)
}

/// Add our hooks to the config.json at `path` if the container asks for
/// volumes; leave the file alone (not even rewritten) otherwise.
pub fn edit_bundle(path: &Path, hook: &bundle::HookSpec) -> Result<bool, HookError> {
    let mut config = bundle::read(path)?;
    let changed = bundle::add_hooks(&mut config, hook).map_err(|why| {
        HookError::failed(format!("bundle config {}", path.display()), why)
            .hint("the engine wrote a config.json the wrapper cannot edit")
    })?;
    if changed {
        bundle::write_atomic(path, &config)?;
    }
    Ok(changed)
}

/// `--runtime`, else the config's `runtime` key, else runc at its usual
/// absolute paths. The path must be absolute and exist.
pub fn resolve_runtime(w: &args::WrapperArgs) -> Result<PathBuf, HookError> {
    let chosen = match &w.runtime {
        Some(r) => Some(r.clone()),
        None => settings::configured_runtime(w.config.as_deref())?,
    };
    match chosen {
        Some(r) => {
            if !r.is_absolute() {
                return Err(HookError::invalid(
                    format!("runtime {}", r.display()),
                    "not an absolute path",
                )
                .hint("the runtime is never looked up through PATH; give its full path"));
            }
            match std::fs::metadata(&r) {
                Ok(m) if m.is_file() => Ok(r),
                Ok(_) => Err(HookError::failed(
                    format!("runtime {}", r.display()),
                    "not a regular file",
                )),
                Err(e) => Err(
                    HookError::failed(format!("runtime {}", r.display()), e.to_string())
                        .hint("install it or fix --runtime / the runtime key of config.toml"),
                ),
            }
        }
        None => DEFAULT_RUNTIMES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                HookError::failed(
                    "runtime",
                    format!(
                        "runc is neither at {} nor at {}",
                        DEFAULT_RUNTIMES[0], DEFAULT_RUNTIMES[1]
                    ),
                )
                .hint("install runc, or pass --runtime PATH")
            }),
    }
}

/// Where the hook binary is: beside the wrapper's own executable.
struct HookSpecSource {
    path: PathBuf,
}

impl HookSpecSource {
    fn beside_own_exe() -> Result<Self, HookError> {
        let exe = std::env::current_exe().map_err(|e| {
            HookError::failed("own executable", format!("readlink /proc/self/exe: {e}"))
        })?;
        let dir = exe.parent().unwrap_or(Path::new("/"));
        Ok(HookSpecSource {
            path: dir.join(HOOK_BINARY),
        })
    }

    fn spec(&self, config: Option<&Path>) -> Result<bundle::HookSpec, HookError> {
        let subject = format!("hook {}", self.path.display());
        match std::fs::metadata(&self.path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(HookError::failed(subject, "not a regular file")),
            Err(e) => {
                return Err(HookError::failed(subject, e.to_string()).hint(
                    "oci-volume-hook must be installed in the same directory as oci-volume-runtime",
                ))
            }
        }
        let utf8 = |p: &Path, what: &str| {
            p.to_str().map(str::to_owned).ok_or_else(|| {
                HookError::failed(what.to_string(), format!("{} is not UTF-8", p.display()))
            })
        };
        let config = match config {
            None => None,
            // The hook runs with / as its working directory.
            Some(c) => {
                let abs = if c.is_absolute() {
                    c.to_path_buf()
                } else {
                    std::env::current_dir()
                        .map_err(|e| HookError::failed("--config", format!("getcwd: {e}")))?
                        .join(c)
                };
                Some(utf8(&abs, "--config")?)
            }
        };
        Ok(bundle::HookSpec {
            path: utf8(&self.path, "hook path")?,
            config,
        })
    }
}

fn exec_failed(program: &std::ffi::OsStr, e: std::io::Error) -> HookError {
    HookError::failed(
        format!("runtime {}", Path::new(program).display()),
        format!("exec: {e}"),
    )
}

/// One line on stderr; and, when the runtime was told to log JSON to a
/// file (containerd's shims do), the same line there as an error entry:
/// that file is where the shim takes the message it shows the user from.
fn report(e: &HookError, inv: &args::Invocation) {
    let line = format!("{PROGRAM}: {e}");
    eprintln!("{line}");
    if let (Some(log), Some(fmt)) = (&inv.log, &inv.log_format) {
        if fmt == "json" {
            let entry = serde_json::json!({ "level": "error", "msg": line });
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .open(log)
            {
                let _ = writeln!(f, "{entry}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn w(args: &[&str]) -> args::WrapperArgs {
        args::parse(args.iter().map(OsString::from).collect()).unwrap()
    }

    #[test]
    fn runtime_must_be_absolute_and_exist() {
        let e = resolve_runtime(&w(&["--runtime", "runc", "state"])).unwrap_err();
        assert!(e.to_string().contains("not an absolute path"), "{e}");
        assert_eq!(e.exit_code(), 2);
        let e = resolve_runtime(&w(&["--runtime", "/nonexistent/runc", "state"])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("runtime /nonexistent/runc failed: "),
            "{e}"
        );
        assert_eq!(
            resolve_runtime(&w(&["--runtime", "/bin/sh", "state"])).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }

    #[test]
    fn runtime_from_the_config_key() {
        let d = tempfile::tempdir().unwrap();
        let c = d.path().join("config.toml");
        std::fs::write(&c, "volumes_root = \"/v\"\nruntime = \"/bin/sh\"\n").unwrap();
        std::fs::set_permissions(&c, std::fs::Permissions::from_mode(0o644)).unwrap();
        let cs = c.to_str().unwrap();
        assert_eq!(
            resolve_runtime(&w(&["--config", cs, "x"])).unwrap(),
            PathBuf::from("/bin/sh")
        );
        // --runtime wins over the key.
        assert_eq!(
            resolve_runtime(&w(&["--config", cs, "--runtime", "/bin/true", "x"])).unwrap(),
            PathBuf::from("/bin/true")
        );
    }

    #[test]
    fn untouched_file_is_not_rewritten() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("config.json");
        let text = "{ \"process\": {\"env\": [\"A=1\"]},\n  \"x\": 1 }";
        std::fs::write(&p, text).unwrap();
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&p).unwrap());
        let hook = bundle::HookSpec {
            path: "/h/oci-volume-hook".into(),
            config: None,
        };
        assert!(!edit_bundle(&p, &hook).unwrap());
        assert_eq!(std::fs::read_to_string(&p).unwrap(), text);
        std::fs::write(
            &p,
            "{\"annotations\": {\"oci-volume-hook/volumes\": \"a:/a\"}}",
        )
        .unwrap();
        assert!(edit_bundle(&p, &hook).unwrap());
        let ino2 = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&p).unwrap());
        assert_ne!(ino, ino2, "replaced by rename");
        assert!(!edit_bundle(&p, &hook).unwrap(), "second pass adds nothing");
    }
}
