//! The command line. Stages are verbs (the stage never comes from the
//! state's `status`); `check` explains what a hook run would do.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "oci-volume-hook",
    version,
    about = "OCI hook that attaches persistent, policy-checked volumes to containers",
    long_about = "OCI hook that attaches persistent, policy-checked volumes to containers.\n\n\
        Runtimes (runc, crun, podman via hooks.d) run `oci-volume-hook prestart` and \
        `oci-volume-hook poststop` with the container state on stdin. The annotation \
        oci-volume-hook/volumes=SOURCE:DEST[:OPTIONS][;...] selects volumes; \
        /etc/oci-volume-hook/config.toml decides what is allowed.\n\n\
        Exit codes: 0 ok, 1 failed, 2 invalid request, 3 denied by policy."
)]
pub struct Cli {
    /// Configuration file [default: /etc/oci-volume-hook/config.toml]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log level: off, error, warn, info, debug, trace [default: config log_level, else info]
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<log::LevelFilter>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Hook stage prestart/createRuntime: attach the requested volumes (state JSON on stdin)
    #[command(alias = "create-runtime", alias = "createRuntime")]
    Prestart,
    /// Hook stage poststop: release what prestart recorded (state JSON on stdin)
    Poststop,
    /// Show what the hook would do for a bundle, and why, without changing anything
    Check {
        /// Bundle directory (holding config.json)
        #[arg(long, value_name = "DIR")]
        bundle: PathBuf,
        /// Annotation to add or override, KEY=VALUE (repeatable)
        #[arg(long = "annotation", value_name = "KEY=VALUE", value_parser = parse_key_value)]
        annotations: Vec<(String, String)>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Relabel a volume directory as z/Z do (parallel walk, completion
    /// marker, O(1) when already done); for admins and benchmarks
    Relabel {
        /// The volume directory (or file)
        path: PathBuf,
        /// The SELinux file context, e.g. system_u:object_r:container_file_t:s0:c1,c2
        #[arg(long, value_name = "CONTEXT")]
        context: String,
        /// Walk even when the marker says a relabel to CONTEXT completed
        #[arg(long)]
        always: bool,
        /// Walker threads [default: the CPUs available, at most 16]
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
    },
    /// List volumes (named, auto-created), their backend, owner, label and the running containers using them
    Volumes {
        #[command(subcommand)]
        command: Option<VolumesCommand>,
        /// Output format
        #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
        format: Format,
        /// Also compute each volume's size on disk (walks the volumes)
        #[arg(long, global = true)]
        size: bool,
    },
    /// Run systemd-nspawn with volumes: check and prepare them as prestart
    /// does, hand them to nspawn as --bind/--bind-ro, release them when it exits
    #[command(
        long_about = "Run /usr/bin/systemd-nspawn with volumes. Each --volume SPEC uses the \
            annotation grammar (SOURCE:DEST[:OPTIONS], several joined by ';'); the volumes are \
            checked, claimed and prepared as prestart does, mounted under \
            state_dir/nspawn/MACHINE/ and handed to nspawn as --bind= or --bind-ro=. \
            NSPAWN-ARGS (after --) go to nspawn unchanged. The launcher forwards SIGINT, \
            SIGTERM and SIGHUP to nspawn, releases the volumes when it exits and exits \
            with its status (128+N when it was killed by signal N)."
    )]
    Nspawn {
        /// A volume, as in the annotation: SOURCE:DEST[:OPTIONS] (repeatable; ';' joins several)
        #[arg(long = "volume", short = 'v', value_name = "SPEC", required = true)]
        volumes: Vec<String>,
        /// systemd-nspawn's own arguments (-D DIR, -M NAME, the command, ...)
        #[arg(
            value_name = "NSPAWN-ARGS",
            trailing_var_arg = true,
            allow_hyphen_values = true
        )]
        args: Vec<std::ffi::OsString>,
    },
    /// Print a shell completion script
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum VolumesCommand {
    /// Show one volume in detail
    Inspect {
        /// The volume name
        name: String,
    },
    /// Create a managed volume in volumes_root (as auto-create does); idempotent
    Create {
        /// The volume name
        name: String,
        /// Owner of the volume root, numeric UID:GID [default: 0:0]
        #[arg(long, value_name = "UID:GID")]
        owner: Option<String>,
        /// SELinux label: z (shared), or a context user:role:type[:level]
        #[arg(long, value_name = "z|Z|CONTEXT")]
        label: Option<String>,
        /// Mode of the volume root, octal [default: 0755]
        #[arg(long, value_name = "MODE")]
        mode: Option<String>,
    },
    /// Remove managed volumes no live container holds
    #[command(alias = "remove")]
    Rm {
        /// The volume names
        #[arg(required = true)]
        names: Vec<String>,
        /// Do not ask before removing a non-empty volume (never overrides a live container)
        #[arg(long, short)]
        force: bool,
    },
    /// Remove every managed volume no live container holds
    Prune {
        /// Do not ask (needed without a terminal)
        #[arg(long, short)]
        force: bool,
        /// Only volumes unused for DURATION: until=DURATION (30m, 24h, 7d)
        #[arg(long, value_name = "until=DURATION")]
        filter: Option<String>,
    },
    /// Write a volume's content as a tar stream
    Export {
        /// The volume name
        name: String,
        /// Write to FILE instead of stdout
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Export even while a container may write to the volume (the copy may be torn)
        #[arg(long)]
        live: bool,
    },
    /// Fill an empty (or new) volume from a tar stream
    Import {
        /// The volume name (created when missing)
        name: String,
        /// The tar file, or - for stdin [default: -]
        file: Option<PathBuf>,
        /// Also accept device nodes, setuid/setgid files and file capabilities
        #[arg(long)]
        preserve_special: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

impl Command {
    pub fn is_hook(&self) -> bool {
        matches!(self, Command::Prestart | Command::Poststop)
    }

    /// Does the verb run another program (then no_new_privs is not set)?
    pub fn runs_a_program(&self) -> bool {
        matches!(self, Command::Nspawn { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn stage_aliases() {
        for (args, hook) in [
            (&["x", "prestart"][..], true),
            (&["x", "create-runtime"], true),
            (&["x", "--config", "/c", "poststop"], true),
            (
                &["x", "check", "--bundle", "/b", "--annotation", "a=b=c"],
                false,
            ),
        ] {
            let cli = Cli::try_parse_from(args).unwrap();
            assert_eq!(cli.command.is_hook(), hook);
        }
        assert!(
            Cli::try_parse_from(["x", "check", "--bundle", "/b", "--annotation", "novalue"])
                .is_err()
        );
        assert!(Cli::try_parse_from(["x", "start"]).is_err());
    }

    fn nspawn(args: &[&str]) -> (Option<PathBuf>, Vec<String>, Vec<String>) {
        let cli = Cli::try_parse_from(args).unwrap();
        match cli.command {
            Command::Nspawn { volumes, args } => (
                cli.config,
                volumes,
                args.iter()
                    .map(|a| a.to_str().unwrap().to_string())
                    .collect(),
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nspawn_arguments() {
        let (config, volumes, args) = nspawn(&[
            "x",
            "--config",
            "/c",
            "nspawn",
            "--volume",
            "a:/a",
            "-v",
            "b:/b:ro;c:/c",
            "--",
            "-D",
            "/m/app",
            "--config",
            "sh",
            "-c",
            "echo",
        ]);
        assert_eq!(config.as_deref(), Some(std::path::Path::new("/c")));
        assert_eq!(volumes, ["a:/a", "b:/b:ro;c:/c"]);
        // Everything after -- is nspawn's, even our own option names.
        assert_eq!(args, ["-D", "/m/app", "--config", "sh", "-c", "echo"]);
        // Without --, nspawn's arguments start at the first unknown one.
        let (_, volumes, args) = nspawn(&["x", "nspawn", "--volume=a:/a", "-D", "/m/app", "-b"]);
        assert_eq!(volumes, ["a:/a"]);
        assert_eq!(args, ["-D", "/m/app", "-b"]);
        let (_, _, args) = nspawn(&["x", "nspawn", "--volume", "a:/a"]);
        assert!(args.is_empty());
        // At least one volume.
        assert!(Cli::try_parse_from(["x", "nspawn", "--", "-D", "/m"]).is_err());
        let cli = Cli::try_parse_from(["x", "nspawn", "-v", "a:/a"]).unwrap();
        assert!(cli.command.runs_a_program() && !cli.command.is_hook());
    }
}
