//! `relabel PATH CONTEXT`: the z/Z walk on its own, for admins and
//! benchmarks.

use std::io::Write;

use rustix::fs::{FileType, Mode, OFlags};

use crate::apply::relabel::{self, RelabelOutcome};
use crate::apply::walk;
use crate::config::RelabelPolicy;
use crate::error::HookError;
use crate::input::selinux::Context;

pub fn run(
    path: &std::path::Path,
    context: &str,
    always: bool,
    threads: Option<usize>,
) -> Result<(), HookError> {
    let subject = format!("relabel {}", path.display());
    if Context::parse(context).is_none() {
        return Err(HookError::invalid(
            subject,
            format!("{} is not an SELinux context", crate::error::quote(context)),
        ));
    }
    let fd = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| HookError::failed(&subject, format!("open: {e}")))?;
    let st =
        rustix::fs::fstat(&fd).map_err(|e| HookError::failed(&subject, format!("fstat: {e}")))?;
    let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
    let policy = if always {
        RelabelPolicy::Always
    } else {
        RelabelPolicy::OnChange
    };
    let threads = threads.unwrap_or_else(walk::default_threads);
    let start = std::time::Instant::now();
    let outcome = relabel::relabel(
        &fd,
        is_dir,
        context,
        policy,
        threads,
        &walk::Protected::new(&[]),
    )
    .map_err(|e| e.into_hook(&subject))?;
    let secs = start.elapsed().as_secs_f64();
    let mut out = std::io::stdout().lock();
    let line = match outcome {
        RelabelOutcome::Skipped => format!(
            "skipped {}: already labelled {context} by a completed relabel ({:.3} ms)",
            path.display(),
            secs * 1e3
        ),
        RelabelOutcome::Walked {
            stats,
            changed,
            hardlinks_skipped,
            ..
        } => format!(
            "relabelled {} to {context}: {} entries, {changed} changed, {} mounts skipped, {hardlinks_skipped} hardlinked files with links outside left unchanged, {threads} threads, {:.3} s, {:.0} entries/s",
            path.display(),
            stats.entries + 1,
            stats.mounts_skipped,
            secs,
            (stats.entries + 1) as f64 / secs.max(1e-9)
        ),
    };
    writeln!(out, "{line}").map_err(|e| HookError::failed(&subject, e.to_string()))
}
