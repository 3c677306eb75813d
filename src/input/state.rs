//! The OCI state the runtime writes on the hook's stdin, decoded tolerantly.
//!
//! runc sends `status: creating` and no `pid` in poststop; crun sends
//! `status: created`, an extra `root`, and `pid: 0` in poststop; podman runs
//! poststop itself with no pid and fewer annotations. Only the fields the
//! hook needs are decoded, and none of them is required but `id`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::HookError;

/// Largest state JSON accepted on stdin. A real state is a few KiB.
pub const MAX_STATE_BYTES: u64 = 1 << 20;

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct State {
    pub id: String,
    /// Informational only: the stage comes from argv.
    #[serde(default)]
    pub status: String,
    /// Absent (runc, podman) or 0 (crun) in poststop.
    #[serde(default)]
    pub pid: Option<i64>,
    #[serde(default)]
    pub bundle: PathBuf,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

impl State {
    /// The container's init pid, when the runtime gave a real one.
    pub fn live_pid(&self) -> Option<i32> {
        match self.pid {
            Some(p) if p > 0 && p <= i64::from(i32::MAX) => Some(p as i32),
            _ => None,
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<State, HookError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(HookError::invalid("state", "stdin is empty").hint(
                "the runtime passes the container state as JSON on stdin; run this as an OCI hook, or use `oci-volume-hook check --bundle DIR` by hand",
            ));
        }
        let state: State = serde_json::from_slice(bytes).map_err(|e| {
            HookError::invalid("state", format!("stdin is not an OCI state JSON: {e}")).hint(
                "the runtime passes the container state on stdin; check the hook configuration",
            )
        })?;
        if state.id.is_empty() {
            return Err(HookError::invalid("state", "the container id is empty"));
        }
        if state.id.len() > 1024 || state.id.chars().any(char::is_control) {
            return Err(HookError::invalid(
                "state",
                "the container id is longer than 1024 bytes or has control characters",
            ));
        }
        Ok(state)
    }

    /// Read and parse the state from a reader (stdin), refusing more than
    /// [`MAX_STATE_BYTES`].
    pub fn read_from(reader: impl Read) -> Result<State, HookError> {
        let mut buf = Vec::new();
        reader
            .take(MAX_STATE_BYTES + 1)
            .read_to_end(&mut buf)
            .map_err(|e| HookError::failed("state", format!("reading stdin: {e}")))?;
        if buf.len() as u64 > MAX_STATE_BYTES {
            return Err(HookError::invalid(
                "state",
                format!("stdin holds more than {MAX_STATE_BYTES} bytes"),
            ));
        }
        State::parse(&buf)
    }
}

pub use crate::error::short_id;

#[cfg(test)]
mod tests {
    use super::*;

    const RUNC_CREATE: &str = r#"{"ociVersion":"1.0.2-dev","id":"seed-a","status":"creating","pid":7131,"bundle":"/tmp/b","annotations":{"oci-volume-hook/volumes":"myapp:/myapp"}}"#;
    const RUNC_POSTSTOP: &str = r#"{"ociVersion":"1.0.2-dev","id":"seed-a","status":"stopped","bundle":"/tmp/b","annotations":{"oci-volume-hook/volumes":"myapp:/myapp"}}"#;
    const CRUN_CREATE: &str = r#"{"ociVersion":"1.0","id":"seed-b","status":"created","pid":812,"root":"rootfs","bundle":"/tmp/b","annotations":{"oci-volume-hook/volumes":"myapp:/myapp"}}"#;
    const CRUN_POSTSTOP: &str = r#"{"ociVersion":"1.0","id":"seed-b","status":"stopped","pid":0,"root":"rootfs","bundle":"/tmp/b"}"#;
    const PODMAN_POSTSTOP: &str = r#"{"ociVersion":"1.0.2-dev","id":"4f1b9c3a2d7e8f90aa11bb22cc33dd44ee55ff6677889900aabbccddeeff0011","status":"stopped","bundle":"/var/lib/containers/storage/overlay-containers/4f1b/userdata","annotations":{"io.container.manager":"libpod","oci-volume-hook/volumes":"myapp:/myapp"}}"#;

    #[test]
    fn parses_every_runtime() {
        let s = State::parse(RUNC_CREATE.as_bytes()).unwrap();
        assert_eq!(s.live_pid(), Some(7131));
        assert_eq!(s.annotations["oci-volume-hook/volumes"], "myapp:/myapp");
        assert_eq!(
            State::parse(RUNC_POSTSTOP.as_bytes()).unwrap().live_pid(),
            None
        );
        let c = State::parse(CRUN_CREATE.as_bytes()).unwrap();
        assert_eq!((c.status.as_str(), c.live_pid()), ("created", Some(812)));
        let c = State::parse(CRUN_POSTSTOP.as_bytes()).unwrap();
        assert_eq!(c.live_pid(), None);
        assert!(c.annotations.is_empty());
        let p = State::parse(PODMAN_POSTSTOP.as_bytes()).unwrap();
        assert_eq!(short_id(&p.id), "4f1b9c3a2d7e");
        assert_eq!(p.live_pid(), None);
    }

    #[test]
    fn refuses_bad_input_without_panicking() {
        for bad in [
            &b""[..],
            b"  \n",
            b"{",
            b"null",
            b"[]",
            b"{\"id\":\"\"}",
            b"{\"id\":5}",
            b"\xff\xfe\x00binary",
            b"{\"id\":\"a\\u0000b\"}",
        ] {
            let e = State::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
        }
        let huge = vec![b' '; (MAX_STATE_BYTES + 10) as usize];
        assert_eq!(State::read_from(&huge[..]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn short_id_is_char_safe() {
        assert_eq!(short_id("abc"), "abc");
        assert_eq!(short_id("ééééééééééééééé"), "éééééééééééé");
    }
}
