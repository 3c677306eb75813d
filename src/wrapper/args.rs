//! The wrapper's command line: its own leading options, then the runtime's
//! arguments, which are passed on unchanged. From those it only needs to
//! know whether they create a container, and from which bundle.
//!
//! runc 1.1 parses its command line with urfave/cli on top of Go's `flag`
//! package: an option may be written `-name` or `--name`, a value as the
//! next argument or after `=`, boolean options never take the next argument,
//! `--` ends the options, and the options of a command may follow its
//! positional arguments. crun accepts the same spellings for what docker and
//! containerd pass.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::HookError;

/// Global options of runc (and crun) that take a value. `--debug`,
/// `--systemd-cgroup`, `--help`/`-h` and `--version`/`-v` are booleans.
const GLOBAL_VALUE_OPTIONS: &[&str] = &[
    "root",
    "log",
    "log-format",
    "criu",
    "rootless",
    // crun only
    "log-level",
    "cgroup-manager",
];

/// Options of `create` and `run` that take a value (besides the bundle).
/// `config`/`f` is crun's "config file name" override.
const CREATE_VALUE_OPTIONS: &[&str] =
    &["console-socket", "pid-file", "preserve-fds", "config", "f"];

/// The wrapper's own options and the runtime's arguments.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WrapperArgs {
    /// `--config FILE`: the hook's config, passed on to the hook.
    pub config: Option<PathBuf>,
    /// `--runtime PATH`: the real runtime (absolute).
    pub runtime: Option<PathBuf>,
    /// Everything from the first argument that is not one of ours.
    pub runtime_args: Vec<OsString>,
}

/// What the runtime is asked to do, as far as the wrapper cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Invocation {
    /// The subcommand (`create`, `run`, `state`, …), if any.
    pub command: Option<OsString>,
    /// For `create` and `run`: the config.json to read (bundle + file name).
    pub create: Option<CreateTarget>,
    /// The runtime's `--log FILE` and `--log-format`, for reporting errors
    /// where containerd's shim looks for them.
    pub log: Option<OsString>,
    pub log_format: Option<OsString>,
}

/// Where `create`/`run` reads the container's configuration from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTarget {
    /// `--bundle`/`-b`, or `.` (the current directory) as runc defines it.
    pub bundle: PathBuf,
    /// `config.json`, or crun's `--config`/`-f` override (relative to the bundle).
    pub config_file: PathBuf,
}

impl CreateTarget {
    pub fn config_path(&self) -> PathBuf {
        self.bundle.join(&self.config_file)
    }
}

/// Split the wrapper's leading `--config`/`--runtime` (also `--opt=VALUE`)
/// from the runtime's arguments.
pub fn parse(args: Vec<OsString>) -> Result<WrapperArgs, HookError> {
    let mut out = WrapperArgs::default();
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let bytes = arg.as_bytes();
        let (name, inline) = match split_long(bytes) {
            Some((n @ (b"config" | b"runtime"), v)) if bytes.starts_with(b"--") => (n, v),
            _ => break,
        };
        let value = match inline {
            Some(v) => OsStr::from_bytes(v).to_os_string(),
            None => {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| usage(name, "needs a value"))?
            }
        };
        i += 1;
        if value.is_empty() {
            return Err(usage(name, "needs a value"));
        }
        let slot = if name == b"config" {
            &mut out.config
        } else {
            &mut out.runtime
        };
        if slot.is_some() {
            return Err(usage(name, "given twice"));
        }
        *slot = Some(PathBuf::from(value));
    }
    out.runtime_args = args[i.min(args.len())..].to_vec();
    Ok(out)
}

fn usage(name: &[u8], why: &str) -> HookError {
    HookError::invalid(
        format!("option --{}", String::from_utf8_lossy(name)),
        why.to_string(),
    )
    .hint("usage: oci-volume-runtime [--config FILE] [--runtime PATH] RUNTIME-ARGS...")
}

/// `--name=value` / `-name` → (name, inline value). None for non-options,
/// `-` and `--`.
fn split_long(arg: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let rest = arg.strip_prefix(b"--").or_else(|| arg.strip_prefix(b"-"))?;
    if rest.is_empty() || rest.starts_with(b"-") {
        return None;
    }
    match rest.iter().position(|&c| c == b'=') {
        Some(i) => Some((&rest[..i], Some(&rest[i + 1..]))),
        None => Some((rest, None)),
    }
}

/// Find the subcommand behind the runtime's global options, and for
/// `create`/`run` the bundle.
pub fn inspect(args: &[OsString]) -> Invocation {
    let mut inv = Invocation::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        if a == b"--" {
            i += 1;
            break;
        }
        match split_long(a) {
            Some((name, inline)) => {
                let takes_value = GLOBAL_VALUE_OPTIONS.iter().any(|o| o.as_bytes() == name);
                let value = if takes_value && inline.is_none() {
                    i += 1;
                    args.get(i).cloned()
                } else {
                    inline.map(|v| OsStr::from_bytes(v).to_os_string())
                };
                match name {
                    b"log" => inv.log = value,
                    b"log-format" => inv.log_format = value,
                    _ => {}
                }
                i += 1;
            }
            None => break,
        }
    }
    let Some(command) = args.get(i) else {
        return inv;
    };
    inv.command = Some(command.clone());
    if command == "create" || command == "run" {
        inv.create = Some(create_target(&args[i + 1..]));
    }
    inv
}

fn create_target(args: &[OsString]) -> CreateTarget {
    let mut target = CreateTarget {
        bundle: PathBuf::from("."),
        config_file: PathBuf::from("config.json"),
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        if a == b"--" {
            break;
        }
        if let Some((name, inline)) = split_long(a) {
            let is_bundle = name == b"bundle" || name == b"b";
            let takes_value =
                is_bundle || CREATE_VALUE_OPTIONS.iter().any(|o| o.as_bytes() == name);
            let value = if takes_value && inline.is_none() {
                i += 1;
                args.get(i).cloned()
            } else {
                inline.map(|v| OsStr::from_bytes(v).to_os_string())
            };
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                if is_bundle {
                    target.bundle = PathBuf::from(v);
                } else if name == b"config" || name == b"f" {
                    target.config_file = PathBuf::from(v);
                }
            }
        }
        i += 1;
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn bundle_of(args: &[&str]) -> Option<PathBuf> {
        inspect(&os(args)).create.map(|c| c.config_path())
    }

    #[test]
    fn wrapper_options_are_leading_only() {
        let w = parse(os(&[
            "--config",
            "/c.toml",
            "--runtime=/usr/bin/crun",
            "--root",
            "/r",
            "create",
            "x",
        ]))
        .unwrap();
        assert_eq!(w.config, Some(PathBuf::from("/c.toml")));
        assert_eq!(w.runtime, Some(PathBuf::from("/usr/bin/crun")));
        assert_eq!(w.runtime_args, os(&["--root", "/r", "create", "x"]));

        let w = parse(os(&["--config=/c.toml", "state", "--config", "x"])).unwrap();
        assert_eq!(w.config, Some(PathBuf::from("/c.toml")));
        assert_eq!(w.runtime, None);
        assert_eq!(w.runtime_args, os(&["state", "--config", "x"]));

        // The first other argument ends ours, even if ours follow.
        let w = parse(os(&["--debug", "--config", "/c", "run", "x"])).unwrap();
        assert_eq!(w.config, None);
        assert_eq!(
            w.runtime_args,
            os(&["--debug", "--config", "/c", "run", "x"])
        );

        // A single dash is not ours (it is the runtime's Go-style spelling).
        let w = parse(os(&["-config", "/c", "run"])).unwrap();
        assert_eq!(w.config, None);
        assert_eq!(w.runtime_args.len(), 3);

        let w = parse(os(&[])).unwrap();
        assert_eq!(w, WrapperArgs::default());
    }

    #[test]
    fn wrapper_option_errors() {
        for bad in [
            &["--config"][..],
            &["--runtime="],
            &["--config", "a", "--config", "b", "run"],
        ] {
            let e = parse(os(bad)).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}: {e}");
            assert!(e.to_string().contains("usage: oci-volume-runtime"), "{e}");
        }
        assert!(parse(os(&["--config"]))
            .unwrap_err()
            .to_string()
            .starts_with("option --config invalid: needs a value"));
    }

    #[test]
    fn every_runc_global_value_option_is_skipped() {
        // Each value is a word that would be mistaken for the subcommand.
        for opt in [
            "--root",
            "--log",
            "--log-format",
            "--criu",
            "--rootless",
            "-root",
            "--log-level",
            "--cgroup-manager",
        ] {
            let inv = inspect(&os(&[opt, "create", "state", "id"]));
            assert_eq!(inv.command, Some(OsString::from("state")), "{opt}");
            assert_eq!(inv.create, None, "{opt}");
            let inv = inspect(&os(&[&format!("{opt}=state"), "create", "id"]));
            assert_eq!(inv.command, Some(OsString::from("create")), "{opt}=");
        }
    }

    #[test]
    fn boolean_global_options_take_no_value() {
        for opt in [
            "--systemd-cgroup",
            "--debug",
            "-debug",
            "--systemd-cgroup=true",
        ] {
            let inv = inspect(&os(&[opt, "create", "id"]));
            assert_eq!(inv.command, Some(OsString::from("create")), "{opt}");
            assert_eq!(
                bundle_of(&[opt, "create", "id"]),
                Some(PathBuf::from("./config.json"))
            );
        }
    }

    #[test]
    fn docker_command_line() {
        // What dockerd 20.10's containerd shim runs.
        let args = os(&[
            "--root",
            "/var/run/docker/runtime-runc/moby",
            "--log",
            "/run/containerd/io.containerd.runtime.v2.task/moby/ID/log.json",
            "--log-format",
            "json",
            "--systemd-cgroup",
            "create",
            "--bundle",
            "/run/containerd/io.containerd.runtime.v2.task/moby/ID",
            "--pid-file",
            "/run/x/init.pid",
            "ID",
        ]);
        let inv = inspect(&args);
        assert_eq!(inv.command, Some(OsString::from("create")));
        assert_eq!(
            inv.log,
            Some(OsString::from(
                "/run/containerd/io.containerd.runtime.v2.task/moby/ID/log.json"
            ))
        );
        assert_eq!(inv.log_format, Some(OsString::from("json")));
        assert_eq!(
            inv.create.unwrap().config_path(),
            PathBuf::from("/run/containerd/io.containerd.runtime.v2.task/moby/ID/config.json")
        );
    }

    #[test]
    fn bundle_spellings() {
        let want = Some(PathBuf::from("/b/config.json"));
        assert_eq!(bundle_of(&["create", "--bundle", "/b", "id"]), want);
        assert_eq!(bundle_of(&["create", "-b", "/b", "id"]), want);
        assert_eq!(bundle_of(&["create", "--bundle=/b", "id"]), want);
        assert_eq!(bundle_of(&["create", "-b=/b", "id"]), want);
        assert_eq!(bundle_of(&["create", "-bundle", "/b", "id"]), want);
        assert_eq!(bundle_of(&["run", "-b", "/b", "id"]), want);
        // urfave/cli lets options follow the container id.
        assert_eq!(bundle_of(&["run", "id", "--bundle", "/b"]), want);
        // Other value options do not swallow the bundle or fake one.
        assert_eq!(
            bundle_of(&["create", "--pid-file", "-b", "id"]),
            Some(PathBuf::from("./config.json"))
        );
        assert_eq!(
            bundle_of(&[
                "create",
                "--console-socket",
                "/s",
                "--preserve-fds",
                "2",
                "-b",
                "/b",
                "id"
            ]),
            want
        );
        assert_eq!(bundle_of(&["run", "-d", "--keep", "-b", "/b", "id"]), want);
        // The last one wins, as with Go's flag package.
        assert_eq!(bundle_of(&["create", "-b", "/a", "-b", "/b", "id"]), want);
        // After `--` nothing is an option.
        assert_eq!(
            bundle_of(&["create", "--", "-b", "/b"]),
            Some(PathBuf::from("./config.json"))
        );
        // crun's config file override.
        assert_eq!(
            bundle_of(&["create", "-b", "/b", "--config", "other.json", "id"]),
            Some(PathBuf::from("/b/other.json"))
        );
        assert_eq!(
            bundle_of(&["create", "-b", "/b", "-f", "/abs.json", "id"]),
            Some(PathBuf::from("/abs.json"))
        );
    }

    #[test]
    fn default_bundle_is_the_current_directory() {
        assert_eq!(
            bundle_of(&["create", "id"]),
            Some(PathBuf::from("./config.json"))
        );
        assert_eq!(
            bundle_of(&["--root", "/r", "run", "id"]),
            Some(PathBuf::from("./config.json"))
        );
        assert_eq!(
            bundle_of(&["create", "-b", "", "id"]),
            Some(PathBuf::from("./config.json"))
        );
        assert_eq!(
            bundle_of(&["create", "-b", "rel", "id"]),
            Some(PathBuf::from("rel/config.json"))
        );
    }

    #[test]
    fn other_commands_are_not_creates() {
        for args in [
            &["state", "id"][..],
            &["start", "id"],
            &["kill", "id", "KILL"],
            &["delete", "--force", "id"],
            &["features"],
            &["--version"],
            &["-v"],
            &["--help"],
            &[],
            &["--root"],
        ] {
            let inv = inspect(&os(args));
            assert_eq!(inv.create, None, "{args:?}");
        }
        // `--` ends the global options; what follows is the command.
        assert_eq!(
            inspect(&os(&["--", "state", "x"])).command,
            Some(OsString::from("state"))
        );
        assert_eq!(inspect(&os(&["--version"])).command, None);
        assert_eq!(
            bundle_of(&["--", "create", "id"]),
            Some(PathBuf::from("./config.json"))
        );
    }
}
