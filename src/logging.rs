//! Logging: every line goes to syslog (identifier `oci-volume-hook`, so the
//! journal has `SYSLOG_IDENTIFIER=oci-volume-hook`) with the container's
//! short id and the stage; errors also go to stderr as one line. A missing
//! /dev/log is tolerated. Nothing ever goes to stdout.

use std::io::Write;
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};
use syslog::{Facility, Formatter3164, LoggerBackend};

pub const IDENT: &str = "oci-volume-hook";

struct Context {
    id: String,
    stage: &'static str,
    stderr_level: LevelFilter,
    syslog: Option<syslog::Logger<LoggerBackend, Formatter3164>>,
}

static CONTEXT: Mutex<Context> = Mutex::new(Context {
    id: String::new(),
    stage: "",
    stderr_level: LevelFilter::Error,
    syslog: None,
});

struct HookLogger;
static LOGGER: HookLogger = HookLogger;

/// Install the logger. In hook mode only errors reach stderr; otherwise
/// (check, volumes) everything up to `level` does.
pub fn init(level: LevelFilter, hook_mode: bool) {
    let syslog = syslog::unix(Formatter3164 {
        facility: Facility::LOG_DAEMON,
        hostname: None,
        process: IDENT.into(),
        pid: std::process::id(),
    })
    .ok();
    if let Ok(mut c) = CONTEXT.lock() {
        c.syslog = syslog;
        c.stderr_level = if hook_mode { LevelFilter::Error } else { level };
    }
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
}

pub fn set_level(level: LevelFilter) {
    log::set_max_level(level);
}

/// Name the container (first 12 characters of its id) on every later line.
pub fn set_container(id: &str) {
    if let Ok(mut c) = CONTEXT.lock() {
        c.id = crate::error::short_id(id).to_string();
    }
}

pub fn set_stage(stage: &'static str) {
    if let Ok(mut c) = CONTEXT.lock() {
        c.stage = stage;
    }
}

impl Log for HookLogger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let Ok(mut c) = CONTEXT.lock() else { return };
        let msg = record.args().to_string();
        // Errors keep the fixed user-facing shape; other lines say the stage.
        let line = match (c.id.is_empty(), record.level()) {
            (true, Level::Error) => msg,
            (false, Level::Error) => format!("{}: {msg}", c.id),
            (true, _) if c.stage.is_empty() => msg,
            (true, _) => format!("{}: {msg}", c.stage),
            (false, _) => format!("{}: {}: {msg}", c.id, c.stage),
        };
        if record.level() <= c.stderr_level {
            let _ = writeln!(std::io::stderr().lock(), "{IDENT}: {line}");
        }
        if let Some(s) = c.syslog.as_mut() {
            let _ = match record.level() {
                Level::Error => s.err(&line),
                Level::Warn => s.warning(&line),
                Level::Info => s.info(&line),
                Level::Debug | Level::Trace => s.debug(&line),
            };
        }
    }

    fn flush(&self) {
        let _ = std::io::stderr().flush();
    }
}
