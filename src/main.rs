//! Entry point: harden the process, parse the command line, run, and turn
//! an error into one line and an exit code.

use std::process::ExitCode;

use clap::Parser;
use oci_volume_hook::cli::Cli;
use oci_volume_hook::{command, hardening, logging};

fn main() -> ExitCode {
    let hardened = hardening::harden_early();
    // The hook stages' fixed forms skip clap (tens of µs on every start).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = oci_volume_hook::hook_args::parse(&args).unwrap_or_else(|| Cli::parse_from(args));
    let hardened = hardened.and_then(|env| {
        if !cli.command.runs_a_program() {
            hardening::no_new_privs()?;
        }
        Ok(env)
    });
    logging::init(
        cli.log_level.unwrap_or(::log::LevelFilter::Info),
        cli.command.is_hook(),
    );
    let caller_env = match hardened {
        Ok(env) => env,
        Err(e) => {
            ::log::error!("hook failed: process hardening: {e}");
            return ExitCode::from(1);
        }
    };
    let quiet_check = matches!(cli.command, oci_volume_hook::cli::Command::Check { .. });
    match command::run(cli, caller_env) {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            // check already printed its report; its exit code says the rest.
            if !(quiet_check && e.subject == "check" && e.why == "see the report above") {
                ::log::error!("{e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
