//! Run option U's ownership change on one directory, as the hook does, and
//! print what it did. Used by bench/owner.sh.
//!
//!     owner-walk PATH UID GID [always|on-root-mismatch] [THREADS]
//!
//! Prints one line: `decision=walk|skip entries=N changed=N seconds=S files_per_s=R`.

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;

use oci_volume_hook::apply::owner::{self, OwnerDecision};
use oci_volume_hook::apply::Protected;
use oci_volume_hook::config::OwnerChange;
use oci_volume_hook::plan::OwnerPlan;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: owner-walk PATH UID GID [always|on-root-mismatch] [THREADS]");
        return ExitCode::from(2);
    }
    let path = PathBuf::from(&args[0]);
    let (Ok(uid), Ok(gid)) = (args[1].parse(), args[2].parse()) else {
        eprintln!("owner-walk: UID and GID must be numbers");
        return ExitCode::from(2);
    };
    let policy = match args.get(3).map(String::as_str) {
        None | Some("on-root-mismatch") => OwnerChange::OnRootMismatch,
        Some("always") => OwnerChange::Always,
        Some(other) => {
            eprintln!("owner-walk: unknown policy {other:?}");
            return ExitCode::from(2);
        }
    };
    let threads = args
        .get(4)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(owner::default_threads);
    let fd = match rustix::fs::open(
        &path,
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("owner-walk: open {}: {e}", path.display());
            return ExitCode::from(1);
        }
    };
    let plan = OwnerPlan { uid, gid, policy };
    match owner::apply(fd.as_fd(), &path, &plan, threads, &Protected::new(&[])) {
        Ok(out) => {
            let secs = out.elapsed.as_secs_f64();
            println!(
                "decision={} entries={} changed={} seconds={secs:.6} files_per_s={:.0}",
                if out.decision == OwnerDecision::Skip {
                    "skip"
                } else {
                    "walk"
                },
                out.entries + 1,
                out.changed,
                (out.entries + 1) as f64 / secs.max(1e-9)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let e = e.into_hook("owner-walk");
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}
