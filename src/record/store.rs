//! Per-container records under `state_dir/containers/`: written by prestart
//! once the volumes are attached, removed by poststop. Keyed on the
//! container id only (poststop never needs a pid), written atomically.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{openat, renameat, unlinkat, AtFlags, Mode, OFlags, CWD};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::config::Access;
use crate::error::HookError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Record {
    pub id: String,
    pub bundle: PathBuf,
    pub root: PathBuf,
    /// Seconds since the epoch when prestart attached the volumes.
    pub attached_at: u64,
    pub pid: Option<i32>,
    /// The pid's start time (clock ticks since boot, /proc/PID/stat field
    /// 22): a recycled pid is not the holder.
    #[serde(default)]
    pub pid_start: Option<u64>,
    /// false while prestart is still attaching (the record is then a claim).
    #[serde(default = "yes")]
    pub attached: bool,
    pub volumes: Vec<RecordVolume>,
}

fn yes() -> bool {
    true
}

impl Record {
    /// Is the container that wrote this record still there? Its pid must
    /// exist with the same start time. Records without a pid (should not
    /// happen) count as alive: never steal a claim on a guess.
    pub fn holder_alive(&self) -> bool {
        match (self.pid, self.pid_start) {
            (Some(pid), Some(start)) => pid_start_time(pid) == Some(start),
            (Some(pid), None) => pid_start_time(pid).is_some(),
            _ => true,
        }
    }
}

/// Start time of a process (field 22 of /proc/PID/stat), `None` if gone.
pub fn pid_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and ')': fields restart
    // after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RecordVolume {
    pub spec: String,
    pub name: Option<String>,
    pub source: PathBuf,
    /// The source root's identity (`st_dev`, `st_ino`), once opened:
    /// claims are keyed on it as well as on `source`.
    #[serde(default)]
    pub id: Option<(u64, u64)>,
    pub dest: PathBuf,
    pub read_only: bool,
    /// The access mode the admin set (shared, exclusive, read-only).
    #[serde(default)]
    pub access: Access,
    /// With `access = "exclusive"`: readers may attach beside a writer.
    #[serde(default)]
    pub exclusive_readers: bool,
    /// The SELinux context the hook gave the volume (z/Z), if any.
    #[serde(default)]
    pub label: Option<String>,
    /// `label` is private to the container (Z).
    #[serde(default)]
    pub label_private: bool,
}

const WRITABLE: &str = "state_dir (default /run/oci-volume-hook) must be writable and not full";

/// The open `state_dir/containers` directory. Opened before the hook enters
/// the container's mount namespace, so writes through it land on the host.
pub struct StateDir {
    dir: OwnedFd,
    path: PathBuf,
}

impl StateDir {
    /// Open (creating with `create`, mode 0700) `state_dir/containers`.
    pub fn open(state_dir: &Path, create: bool) -> Result<Option<StateDir>, HookError> {
        let path = state_dir.join("containers");
        let fail = |e: &dyn std::fmt::Display| {
            HookError::failed("state_dir", format!("{}: {e}", path.display())).hint(WRITABLE)
        };
        if create {
            std::fs::create_dir_all(state_dir).map_err(|e| fail(&e))?;
            match rustix::fs::mkdir(&path, Mode::from_raw_mode(0o700)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(fail(&e)),
            }
        }
        match openat(
            CWD,
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(dir) => Ok(Some(StateDir { dir, path })),
            Err(Errno::NOENT) if !create => Ok(None),
            Err(e) => Err(fail(&e)),
        }
    }

    /// Write a record atomically (temporary file, then rename).
    pub fn write(&self, record: &Record) -> Result<(), HookError> {
        let name = file_name(&record.id);
        let tmp = format!(".{name}.tmp");
        let fail = |e: &dyn std::fmt::Display| {
            HookError::failed("record", format!("{}/{name}: {e}", self.path.display()))
                .hint(WRITABLE)
        };
        let json = serde_json::to_vec_pretty(record).map_err(|e| fail(&e))?;
        let fd = openat(
            &self.dir,
            &tmp,
            OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| fail(&e))?;
        let mut file = std::fs::File::from(fd);
        file.write_all(&json).map_err(|e| fail(&e))?;
        drop(file);
        renameat(&self.dir, &tmp, &self.dir, &name).map_err(|e| {
            let _ = unlinkat(&self.dir, &tmp, AtFlags::empty());
            fail(&e)
        })
    }

    /// Read a record; `None` when there is none.
    pub fn read(&self, id: &str) -> Result<Option<Record>, HookError> {
        self.read_named(&file_name(id))
    }

    fn read_named(&self, name: &str) -> Result<Option<Record>, HookError> {
        let fd = match openat(
            &self.dir,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => {
                return Err(HookError::failed(
                    "record",
                    format!("{}/{name}: {e}", self.path.display()),
                ))
            }
        };
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::fs::File::from(fd), 1 << 20),
            &mut text,
        )
        .map_err(|e| HookError::failed("record", format!("{}/{name}: {e}", self.path.display())))?;
        serde_json::from_slice(&text).map(Some).map_err(|e| {
            HookError::failed(
                "record",
                format!("{}/{name}: malformed: {e}", self.path.display()),
            )
        })
    }

    /// Take the claims lock (`containers/.lock`, flock): held while claims
    /// are checked and written, released on drop.
    pub fn lock(&self) -> Result<OwnedFd, HookError> {
        let fail = |e: &dyn std::fmt::Display| {
            HookError::failed(
                "state_dir",
                format!("lock {}/.lock: {e}", self.path.display()),
            )
            .hint(WRITABLE)
        };
        let fd = openat(
            &self.dir,
            ".lock",
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|e| fail(&e))?;
        rustix::fs::flock(&fd, rustix::fs::FlockOperation::LockExclusive).map_err(|e| fail(&e))?;
        Ok(fd)
    }

    /// Records of containers that are still alive; stale ones (their holder
    /// is gone without a poststop) are removed and logged.
    pub fn live_records(&self) -> Vec<Record> {
        let mut live = Vec::new();
        for id in self.ids() {
            match self.read(&id) {
                Ok(Some(r)) if r.holder_alive() => live.push(r),
                Ok(Some(r)) => {
                    log::info!(
                        "recovered the claims of container {} (pid {:?} is gone without a poststop)",
                        crate::error::short_id(&r.id),
                        r.pid
                    );
                    let _ = self.remove(&id);
                }
                Ok(None) => {}
                Err(e) => log::warn!("{e}"),
            }
        }
        live
    }

    /// Remove a record; `false` when there was none.
    pub fn remove(&self, id: &str) -> Result<bool, HookError> {
        let name = file_name(id);
        match unlinkat(self.dir.as_fd(), &name, AtFlags::empty()) {
            Ok(()) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(HookError::failed(
                "record",
                format!("remove {}/{name}: {e}", self.path.display()),
            )),
        }
    }

    /// The ids of every record (for listing volumes in use).
    pub fn ids(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.path) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
            .filter(|n| !n.starts_with('.'))
            .filter_map(|n| match id_from_file_stem(&n) {
                Some(id) => Some(id),
                // A hashed name: the id is inside, and must hash to it.
                None => {
                    let name = format!("{n}.json");
                    let r = self.read_named(&name).ok().flatten()?;
                    (file_name(&r.id) == name).then_some(r.id)
                }
            })
            .collect()
    }
}

/// Longest id whose `x-` hex name fits in NAME_MAX (255) with `.json`.
const MAX_HEX_ID: usize = 120;

/// A safe file name for a container id, unique for every id: the id itself
/// when it is made of `[A-Za-z0-9_.+-]`, at most 200 bytes and starts with
/// neither `.`, `x-` nor `h-`; else `x-` and its hex when that fits; else
/// `h-` and the SHA-256 of the whole id (the id itself is in the record).
pub fn file_name(id: &str) -> String {
    let plain = !id.is_empty()
        && id.len() <= 200
        && !id.starts_with('.')
        && !id.starts_with("x-")
        && !id.starts_with("h-")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'+' | b'-'));
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02x}")).collect() };
    if plain {
        format!("{id}.json")
    } else if id.len() <= MAX_HEX_ID {
        format!("x-{}.json", hex(id.as_bytes()))
    } else {
        use sha2::Digest;
        format!("h-{}.json", hex(&sha2::Sha256::digest(id.as_bytes())))
    }
}

/// The id a plain or `x-` name stands for; `None` for an `h-` name.
fn id_from_file_stem(stem: &str) -> Option<String> {
    if stem.starts_with("h-") {
        return None;
    }
    match stem.strip_prefix("x-") {
        None => Some(stem.to_string()),
        Some(hex) => {
            let bytes: Option<Vec<u8>> = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
                .collect();
            String::from_utf8(bytes?).ok()
        }
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_name("seed-a"), "seed-a.json");
        assert_eq!(file_name("4f1b9c3a"), "4f1b9c3a.json");
        for evil in ["../../etc/passwd", "a/b", ".hidden", "", "x-41", "h-41"] {
            let n = file_name(evil);
            assert!(n.starts_with("x-") && !n.contains('/'), "{evil} -> {n}");
            assert_eq!(
                id_from_file_stem(n.strip_suffix(".json").unwrap()).unwrap(),
                evil
            );
        }
    }

    /// Security #12 item 8: ids that share a long prefix get distinct
    /// names, whatever their length; each name fits in NAME_MAX.
    #[test]
    fn long_ids_get_unique_names() {
        let common = "c".repeat(150);
        let a = format!("{common}{}", "a".repeat(100));
        let b = format!("{common}{}", "b".repeat(100));
        assert_ne!(file_name(&a), file_name(&b));
        assert!(file_name(&a).starts_with("h-") && file_name(&a).len() <= 255);
        let long_odd = format!("/{}", "é".repeat(200));
        assert!(file_name(&long_odd).len() <= 255);
        assert_ne!(
            file_name(&long_odd),
            file_name(&format!("/{}", "é".repeat(201)))
        );
        // A plain id that looks like a hashed name is hex-encoded instead.
        let h = file_name(&a);
        let stem = h.strip_suffix(".json").unwrap();
        assert!(file_name(stem).starts_with("x-"));
        let d = tempfile::tempdir().unwrap();
        let sd = StateDir::open(d.path(), true).unwrap().unwrap();
        let rec = |id: &str| Record {
            id: id.into(),
            bundle: "/b".into(),
            root: "/r".into(),
            attached_at: 0,
            pid: None,
            pid_start: None,
            attached: true,
            volumes: vec![],
        };
        sd.write(&rec(&a)).unwrap();
        sd.write(&rec(&b)).unwrap();
        let mut ids = sd.ids();
        ids.sort();
        assert_eq!(ids, vec![a.clone(), b.clone()]);
        assert_eq!(sd.read(&b).unwrap().unwrap().id, b);
    }

    #[test]
    fn liveness_uses_the_start_time() {
        let me = std::process::id() as i32;
        let start = pid_start_time(me).expect("our own start time");
        let mut r = Record {
            id: "x".into(),
            bundle: "/b".into(),
            root: "/r".into(),
            attached_at: 0,
            pid: Some(me),
            pid_start: Some(start),
            attached: true,
            volumes: vec![],
        };
        assert!(r.holder_alive());
        r.pid_start = Some(start + 1);
        assert!(!r.holder_alive(), "a recycled pid is not the holder");
        r.pid = Some(i32::MAX);
        r.pid_start = None;
        assert!(!r.holder_alive());
        // An old record without these fields still decodes.
        let old: Record = serde_json::from_str(r#"{"id":"a","bundle":"/b","root":"/r","attached_at":1,"pid":null,"volumes":[{"spec":"a:/a","name":"a","source":"/v/a","dest":"/a","read_only":false}]}"#).unwrap();
        assert!(old.attached && old.holder_alive());
    }

    #[test]
    fn write_read_remove_twice() {
        let t = tempfile::tempdir().unwrap();
        assert!(StateDir::open(t.path(), false).unwrap().is_none());
        let sd = StateDir::open(t.path(), true).unwrap().unwrap();
        let r = Record {
            id: "c1".into(),
            bundle: "/b".into(),
            root: "/b/rootfs".into(),
            attached_at: 1,
            pid: Some(5),
            pid_start: None,
            attached: true,
            volumes: vec![],
        };
        sd.write(&r).unwrap();
        assert_eq!(sd.read("c1").unwrap(), Some(r));
        assert_eq!(sd.ids(), vec!["c1".to_string()]);
        assert!(sd.remove("c1").unwrap());
        assert!(!sd.remove("c1").unwrap());
        assert_eq!(sd.read("c1").unwrap(), None);
    }
}
