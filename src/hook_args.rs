//! The hook stages' fixed argument forms, read without clap: a runtime runs
//! `oci-volume-hook [--config FILE] [--log-level L] STAGE` on every
//! container start and stop, and building clap's parser costs 70–100 µs of
//! that start (issue 15). Anything else — another order, a repeated or
//! empty option, a value that looks like an option, `--help` — returns
//! `None` and goes through clap, which accepts or rejects it with its usual
//! message. Both give the same [`Cli`] for every form read here (tested).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::cli::{Cli, Command};

/// `args` as the process got them (`args[0]` is the program name).
pub fn parse(args: &[OsString]) -> Option<Cli> {
    let mut config: Option<PathBuf> = None;
    let mut log_level: Option<log::LevelFilter> = None;
    let mut rest = args.get(1..)?.iter();
    loop {
        let arg = rest.next()?.to_str()?;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v)),
            _ => (arg, None),
        };
        match name {
            "--config" | "--log-level" => {
                let value: &std::ffi::OsStr = match inline {
                    Some(v) => v.as_ref(),
                    None => rest.next()?,
                };
                let bytes = value.as_encoded_bytes();
                if bytes.is_empty() || (inline.is_none() && bytes[0] == b'-') {
                    return None;
                }
                if name == "--config" {
                    if config.replace(PathBuf::from(value)).is_some() {
                        return None;
                    }
                } else if log_level.replace(value.to_str()?.parse().ok()?).is_some() {
                    return None;
                }
            }
            stage => {
                let command = match stage {
                    "prestart" | "create-runtime" | "createRuntime" => Command::Prestart,
                    "poststop" => Command::Poststop,
                    _ => return None,
                };
                if rest.next().is_some() {
                    return None;
                }
                return Some(Cli {
                    config,
                    log_level,
                    command,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn hook_forms_match_clap() {
        for v in [
            &["x", "prestart"][..],
            &["x", "createRuntime"],
            &["x", "create-runtime"],
            &["x", "poststop"],
            &["x", "--config", "/etc/c.toml", "prestart"],
            &["x", "--config=/etc/c.toml", "poststop"],
            &["x", "--log-level", "debug", "poststop"],
            &["x", "--log-level=WARN", "--config", "/c", "createRuntime"],
            &["x", "--config", "/c", "--log-level", "off", "prestart"],
            &["x", "--config", "rel/c.toml", "prestart"],
        ] {
            let a = args(v);
            let fast = parse(&a).unwrap_or_else(|| panic!("{v:?} not on the fast path"));
            let slow = Cli::try_parse_from(&a).unwrap();
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{v:?}");
        }
    }

    #[test]
    fn everything_else_goes_to_clap() {
        for v in [
            &["x"][..],
            &[],
            &["x", "check", "--bundle", "/b"],
            &["x", "prestart", "extra"],
            &["x", "prestart", "--config", "/c"],
            &["x", "--config", "/a", "--config", "/b", "prestart"],
            &["x", "--config", "prestart"],
            &["x", "--config", "--log-level", "prestart"],
            &["x", "--config=", "prestart"],
            &["x", "--log-level", "loud", "prestart"],
            &[
                "x",
                "--log-level",
                "debug",
                "--log-level",
                "info",
                "poststop",
            ],
            &["x", "--help"],
            &["x", "--version"],
            &["x", "-h", "prestart"],
            &["x", "--conf", "/c", "prestart"],
            &["x", "Prestart"],
            &["x", "start"],
        ] {
            assert!(parse(&args(v)).is_none(), "{v:?}");
        }
    }
}
