//! Who the hook runs as: root of the host (rootful runtimes), root of a
//! normal user's user namespace (rootless podman), or a normal user outside
//! any container (`check`, `volumes` run by hand). Read from the process's
//! own `/proc/self/uid_map`: nothing in the runtime's state or config.json
//! says "rootless".
//!
//! The mode decides the per-user defaults (volumes in the user's home,
//! records in `/run/user/UID`), which owners the trust checks accept, and
//! which xattr namespace the completion markers use.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::error::HookError;
use crate::fd::Owners;

/// How the hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Root of the host (identity uid_map, euid 0): the admin's paths.
    Root,
    /// Root of a normal user's user namespace (rootless podman): acts with
    /// that user's rights only, on the user's own paths.
    Rootless {
        /// The user's uid on the host (what the namespace's 0 maps to).
        host_uid: u32,
    },
    /// A normal user outside any container (identity uid_map, euid != 0).
    User { uid: u32 },
}

/// The facts the per-user defaults and trust rules come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub mode: Mode,
    /// The id unmapped host ids (host root among them) show as inside a
    /// user namespace (`/proc/sys/kernel/overflowuid`, 65534).
    pub overflow_uid: u32,
    /// The user's home (passwd), in the per-user modes.
    pub home: Option<PathBuf>,
}

/// One line of a uid_map: ids `inside..inside+count` are host ids
/// `outside..outside+count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub inside: u32,
    pub outside: u32,
    pub count: u32,
}

/// Parse `/proc/PID/uid_map` text.
pub fn parse_id_map(text: &str) -> Result<Vec<IdRange>, String> {
    let mut ranges = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<u32> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| format!("line {}: {line:?} is not three numbers", n + 1))?;
        match f[..] {
            [inside, outside, count] if count > 0 => ranges.push(IdRange {
                inside,
                outside,
                count,
            }),
            _ => return Err(format!("line {}: {line:?} is not three numbers", n + 1)),
        }
    }
    if ranges.is_empty() {
        return Err("empty map".into());
    }
    Ok(ranges)
}

/// The mode a process with effective uid `euid` (as it sees it) and this
/// uid_map runs in. The initial user namespace maps `0 0 4294967295`;
/// anything else is a user namespace, and the host uid of `euid` is the
/// user the hook acts for.
pub fn mode_from(map: &[IdRange], euid: u32) -> Result<Mode, String> {
    let identity = matches!(
        map,
        [IdRange {
            inside: 0,
            outside: 0,
            count: u32::MAX
        }]
    );
    if identity {
        return Ok(if euid == 0 {
            Mode::Root
        } else {
            Mode::User { uid: euid }
        });
    }
    let host_uid = map
        .iter()
        .find(|r| euid >= r.inside && euid - r.inside < r.count)
        .map(|r| r.outside + (euid - r.inside))
        .ok_or_else(|| format!("uid {euid} is not in the process's own uid_map"))?;
    if host_uid == 0 {
        // A user namespace whose root is host root (a rootful container
        // with its own namespace): not a normal user's.
        return Ok(Mode::Root);
    }
    Ok(Mode::Rootless { host_uid })
}

/// The home directory of `uid` in passwd text (`name:x:uid:gid:gecos:home:shell`).
pub fn passwd_home(passwd: &str, uid: u32) -> Option<PathBuf> {
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 || f[2].parse::<u32>().ok()? != uid {
            return None;
        }
        let home = Path::new(f[5]);
        (home.is_absolute() && home != Path::new("/")).then(|| home.to_path_buf())
    })
}

static CURRENT: OnceLock<Host> = OnceLock::new();

impl Host {
    /// Read the mode from `/proc/self/uid_map` and, in the per-user modes,
    /// the user's home from /etc/passwd. Remembered for [`per_user`].
    pub fn detect() -> Result<Host, HookError> {
        let fail = |why: String| HookError::failed("host", why);
        let text = std::fs::read_to_string("/proc/self/uid_map")
            .map_err(|e| fail(format!("/proc/self/uid_map: {e}")))?;
        let map = parse_id_map(&text).map_err(|e| fail(format!("/proc/self/uid_map: {e}")))?;
        let euid = rustix::process::geteuid().as_raw();
        let mode = mode_from(&map, euid).map_err(|e| fail(format!("/proc/self/uid_map: {e}")))?;
        let overflow_uid = std::fs::read_to_string("/proc/sys/kernel/overflowuid")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(65534);
        let home = match mode.user_uid() {
            None => None,
            Some(uid) => {
                let passwd = std::fs::read_to_string("/etc/passwd")
                    .map_err(|e| fail(format!("/etc/passwd: {e}")))?;
                Some(passwd_home(&passwd, uid).ok_or_else(|| {
                    fail(format!("uid {uid} has no home directory in /etc/passwd"))
                        .hint("rootless volumes live in the user's home: give the user one")
                })?)
            }
        };
        let host = Host {
            mode,
            overflow_uid,
            home,
        };
        let _ = CURRENT.set(host.clone());
        Ok(host)
    }

    /// The built-in host, for rootful callers that never detect (nspawn).
    pub fn root() -> Host {
        Host {
            mode: Mode::Root,
            overflow_uid: 65534,
            home: None,
        }
    }

    pub fn per_user(&self) -> bool {
        self.mode != Mode::Root
    }

    /// Which owners the trust checks accept on the way to a volume.
    pub fn owners(&self) -> Owners {
        match self.mode {
            Mode::Root => Owners::ROOT,
            // Host root shows as the overflow uid; the user as 0.
            Mode::Rootless { .. } => Owners {
                host_root: self.overflow_uid,
                user: Some(0),
            },
            Mode::User { uid } => Owners {
                host_root: 0,
                user: Some(uid),
            },
        }
    }

    /// The per-user named volumes: `~/.local/share/oci-volume-hook/volumes`.
    pub fn volumes_root(&self) -> Option<PathBuf> {
        self.home
            .as_ref()
            .map(|h| h.join(".local/share/oci-volume-hook/volumes"))
    }

    /// The per-user records: `/run/user/UID/oci-volume-hook`.
    pub fn state_dir(&self) -> Option<PathBuf> {
        self.mode
            .user_uid()
            .map(|uid| PathBuf::from(format!("/run/user/{uid}/oci-volume-hook")))
    }

    /// The user's own config, which may only narrow the admin's.
    pub fn user_config(&self) -> Option<PathBuf> {
        self.home
            .as_ref()
            .map(|h| h.join(".config/oci-volume-hook/config.toml"))
    }

    /// One phrase for `check` and the log.
    pub fn describe(&self) -> String {
        match self.mode {
            Mode::Root => "rootful (host root)".into(),
            Mode::Rootless { host_uid } => {
                format!("rootless (uid 0 of the user namespace of host uid {host_uid})")
            }
            Mode::User { uid } => format!("per-user (host uid {uid}, outside any container)"),
        }
    }
}

impl Mode {
    /// The host uid of the user the hook acts for, in the per-user modes.
    pub fn user_uid(self) -> Option<u32> {
        match self {
            Mode::Root => None,
            Mode::Rootless { host_uid } => Some(host_uid),
            Mode::User { uid } => Some(uid),
        }
    }
}

/// Whether this process was detected to act for a normal user (rootless
/// or per-user mode): then `trusted.*` xattrs are out of reach and the
/// completion markers live in `user.*`. False until [`Host::detect`] ran.
pub fn per_user() -> bool {
    CURRENT.get().is_some_and(Host::per_user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(map: &str, euid: u32) -> Result<Mode, String> {
        mode_from(&parse_id_map(map)?, euid)
    }

    #[test]
    fn uid_maps() {
        assert_eq!(
            mode("         0          0 4294967295\n", 0),
            Ok(Mode::Root)
        );
        assert_eq!(mode("0 0 4294967295\n", 1001), Ok(Mode::User { uid: 1001 }));
        // Rootless podman: 0 is the user, then the subordinate range.
        assert_eq!(
            mode("0 1001 1\n1 100000 65536\n", 0),
            Ok(Mode::Rootless { host_uid: 1001 })
        );
        assert_eq!(mode("0 1001 1\n", 0), Ok(Mode::Rootless { host_uid: 1001 }));
        // A namespace not covering everything is not the initial one, even
        // when 0 maps to 0.
        assert_eq!(mode("0 0 65536\n", 0), Ok(Mode::Root));
        assert_eq!(
            mode("0 0 4294967294\n", 1),
            Ok(Mode::Rootless { host_uid: 1 })
        );
        assert!(mode("1 100000 65536\n", 0).unwrap_err().contains("not in"));
        for bad in ["", "0 0\n", "a b c\n", "0 0 0\n", "0 0 1 1\n"] {
            assert!(parse_id_map(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwd_lookup() {
        let p = "root:x:0:0:root:/root:/bin/bash\n\
                 # comment\n\
                 broken\n\
                 alice:x:1001:1001:Alice,,,:/home/alice:/bin/bash\n\
                 nohome:x:1002:1002::/:/usr/sbin/nologin\n\
                 rel:x:1003:1003::home/rel:/bin/sh\n";
        assert_eq!(passwd_home(p, 1001), Some(PathBuf::from("/home/alice")));
        assert_eq!(passwd_home(p, 0), Some(PathBuf::from("/root")));
        assert_eq!(passwd_home(p, 1002), None, "/ is no home");
        assert_eq!(passwd_home(p, 1003), None, "relative home");
        assert_eq!(passwd_home(p, 4242), None);
    }

    #[test]
    fn per_user_paths_and_owners() {
        let h = Host {
            mode: Mode::Rootless { host_uid: 1001 },
            overflow_uid: 65534,
            home: Some(PathBuf::from("/home/alice")),
        };
        assert_eq!(
            h.volumes_root().unwrap(),
            PathBuf::from("/home/alice/.local/share/oci-volume-hook/volumes")
        );
        assert_eq!(
            h.state_dir().unwrap(),
            PathBuf::from("/run/user/1001/oci-volume-hook")
        );
        assert_eq!(
            h.owners(),
            Owners {
                host_root: 65534,
                user: Some(0)
            }
        );
        assert_eq!(Host::root().owners(), Owners::ROOT);
        assert!(Host::root().state_dir().is_none());
    }
}
