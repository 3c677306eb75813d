//! NFS option syntax in the admin's config: `nfs = "server:/export"` and
//! `options = "vers=4.1,hard,timeo=600"`, checked strictly at load time
//! (known keys only, values checked, and the keys the hook sets itself —
//! `addr`, `clientaddr`, `context` — refused by name). Annotations carry no
//! NFS options.

use std::path::{Component, Path, PathBuf};

use crate::error::quote;

/// The NFS port, used when neither the URL nor `port=` names one.
pub const NFS_PORT: u16 = 2049;

/// Protocol version. No negotiation: the kernel is asked for exactly this
/// one (`vers=4` means 4.0, as in the kernel; mount.nfs would negotiate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Version {
    V3,
    V4_0,
    #[default]
    V4_1,
    V4_2,
}

impl Version {
    fn parse(s: &str) -> Option<Version> {
        Some(match s {
            "3" => Version::V3,
            "4" | "4.0" => Version::V4_0,
            "4.1" => Version::V4_1,
            "4.2" => Version::V4_2,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V3 => "3",
            Version::V4_0 => "4.0",
            Version::V4_1 => "4.1",
            Version::V4_2 => "4.2",
        }
    }

    /// The file system type to `fsopen`.
    pub fn fs_type(self) -> &'static str {
        match self {
            Version::V3 => "nfs",
            _ => "nfs4",
        }
    }
}

/// Address family forced by `proto=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

/// The admin's NFS options, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NfsOptions {
    pub version: Version,
    /// Every other option, in the admin's order: `(key, Some(value))` or a flag.
    pub params: Vec<(String, Option<String>)>,
    /// The admin chose `sharecache` or `nosharecache` explicitly.
    pub sharecache_set: bool,
    pub family: Option<Family>,
}

enum Kind {
    Flag,
    Num(u64, u64),
    Choice(&'static [&'static str]),
}

/// Options the hook passes through, with their values' range.
const KNOWN: &[(&str, Kind)] = &[
    ("rsize", Kind::Num(1024, 1 << 20)),
    ("wsize", Kind::Num(1024, 1 << 20)),
    ("timeo", Kind::Num(1, 6000)),
    ("retrans", Kind::Num(0, 100)),
    ("port", Kind::Num(0, 65535)),
    ("mountport", Kind::Num(0, 65535)),
    ("nconnect", Kind::Num(1, 16)),
    ("actimeo", Kind::Num(0, 36000)),
    ("acregmin", Kind::Num(0, 36000)),
    ("acregmax", Kind::Num(0, 36000)),
    ("acdirmin", Kind::Num(0, 36000)),
    ("acdirmax", Kind::Num(0, 36000)),
    ("proto", Kind::Choice(&["tcp", "tcp6", "udp", "udp6"])),
    ("mountproto", Kind::Choice(&["tcp", "tcp6", "udp", "udp6"])),
    (
        "sec",
        Kind::Choice(&["sys", "krb5", "krb5i", "krb5p", "none"]),
    ),
    (
        "lookupcache",
        Kind::Choice(&["all", "none", "pos", "positive"]),
    ),
    (
        "local_lock",
        Kind::Choice(&["none", "all", "flock", "posix"]),
    ),
    ("hard", Kind::Flag),
    ("soft", Kind::Flag),
    ("softerr", Kind::Flag),
    ("ac", Kind::Flag),
    ("noac", Kind::Flag),
    ("cto", Kind::Flag),
    ("nocto", Kind::Flag),
    ("lock", Kind::Flag),
    ("nolock", Kind::Flag),
    ("resvport", Kind::Flag),
    ("noresvport", Kind::Flag),
    ("sharecache", Kind::Flag),
    ("nosharecache", Kind::Flag),
    ("rdirplus", Kind::Flag),
    ("nordirplus", Kind::Flag),
    ("acl", Kind::Flag),
    ("noacl", Kind::Flag),
    ("sync", Kind::Flag),
    ("async", Kind::Flag),
];

/// Pairs that contradict each other.
const PAIRS: &[(&str, &str)] = &[
    ("hard", "soft"),
    ("hard", "softerr"),
    ("soft", "softerr"),
    ("ac", "noac"),
    ("cto", "nocto"),
    ("lock", "nolock"),
    ("resvport", "noresvport"),
    ("sharecache", "nosharecache"),
    ("rdirplus", "nordirplus"),
    ("acl", "noacl"),
    ("sync", "async"),
];

/// Options refused by name, with the reason.
fn refused(key: &str) -> Option<&'static str> {
    Some(match key {
        "context" | "fscontext" | "defcontext" | "rootcontext" | "seclabel" => {
            "the hook sets context= itself from the container's label (z/Z, or selinux = \"shared\"|\"private\" in the volume's table)"
        }
        "addr" => "the hook resolves the server name itself and passes its address",
        "clientaddr" => "the hook passes the local address that reaches the server (NFS 4.0)",
        "mounthost" | "mountaddr" => "a separate mount server is not supported",
        "minorversion" => "use vers=4.0, 4.1 or 4.2",
        "ro" | "rw" | "nosuid" | "suid" | "nodev" | "dev" | "noexec" | "exec" | "defaults" => {
            "mount flags come from read_only = true in the volume's table and the annotation's options"
        }
        "bg" | "fg" | "retry" | "_netdev" | "nofail" | "auto" | "noauto" | "user" | "users"
        | "owner" | "comment" => {
            "a mount(8)/fstab option the kernel does not know; the hook's deadline is mount_timeout"
        }
        "intr" | "nointr" => "it has had no effect since Linux 2.6.25; remove it",
        "fsc" | "nofsc" => "FS-Cache is not supported by this build",
        _ => return None,
    })
}

impl NfsOptions {
    /// Parse the admin's `options` string (`vers=4.1,hard,timeo=600`).
    pub fn parse(s: &str) -> Result<NfsOptions, String> {
        let mut o = NfsOptions::default();
        let mut seen: Vec<&str> = Vec::new();
        let mut version = None;
        for item in s.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err("empty option in the NFS option list".into());
            }
            let (key, value) = match item.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (item, None),
            };
            if let Some(v) = value {
                let ok = !v.is_empty()
                    && v.len() <= 64
                    && v.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"\"'\\=".contains(&b));
                if !ok {
                    return Err(format!("NFS option {}: bad value", quote(item)));
                }
            }
            let key = if key == "nfsvers" { "vers" } else { key };
            if seen.contains(&key) {
                return Err(format!("NFS option {} is given twice", quote(key)));
            }
            seen.push(key);
            if let Some(why) = refused(key) {
                return Err(format!(
                    "NFS option {} is not allowed here: {why}",
                    quote(key)
                ));
            }
            if key == "vers" {
                let v = value.unwrap_or("");
                version = Some(Version::parse(v).ok_or_else(|| {
                    format!("NFS option vers={v}: use vers=3, 4 (= 4.0), 4.0, 4.1 or 4.2")
                })?);
                continue;
            }
            let Some((_, kind)) = KNOWN.iter().find(|(k, _)| *k == key) else {
                return Err(format!(
                    "unknown NFS option {} (known: vers, {})",
                    quote(key),
                    KNOWN.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ));
            };
            match (kind, value) {
                (Kind::Flag, None) => {}
                (Kind::Flag, Some(_)) => {
                    return Err(format!("NFS option {key} takes no value"));
                }
                (_, None) => return Err(format!("NFS option {key} needs a value")),
                (Kind::Num(lo, hi), Some(v)) => {
                    let n: u64 = v
                        .parse()
                        .map_err(|_| format!("NFS option {key}={v}: not a number"))?;
                    if !(*lo..=*hi).contains(&n) {
                        return Err(format!("NFS option {key}={v}: must be {lo} to {hi}"));
                    }
                }
                (Kind::Choice(choices), Some(v)) => {
                    if !choices.contains(&v) {
                        return Err(format!(
                            "NFS option {key}={v}: must be one of {}",
                            choices.join(", ")
                        ));
                    }
                }
            }
            if key == "proto" {
                o.family = Some(if value.is_some_and(|v| v.ends_with('6')) {
                    Family::V6
                } else {
                    Family::V4
                });
            }
            if key == "sharecache" || key == "nosharecache" {
                o.sharecache_set = true;
            }
            o.params.push((key.to_string(), value.map(str::to_string)));
        }
        for (a, b) in PAIRS {
            if seen.contains(a) && seen.contains(b) {
                return Err(format!("NFS options {a} and {b} contradict each other"));
            }
        }
        o.version = version.unwrap_or_default();
        let udp = o
            .params
            .iter()
            .any(|(k, v)| k == "proto" && v.as_deref().is_some_and(|v| v.starts_with("udp")));
        if udp && o.version != Version::V3 {
            return Err("NFS option proto=udp needs vers=3 (NFSv4 runs over TCP)".into());
        }
        Ok(o)
    }
}

/// `server:/export` (as in fstab; `[v6addr]:/export` for IPv6) split into the
/// host and the export path.
pub fn parse_server_export(s: &str) -> Result<(String, PathBuf), String> {
    let bad = || format!("nfs = {} must be \"server:/export\"", quote(s));
    let (host, export) = if let Some(rest) = s.strip_prefix('[') {
        let (h, e) = rest.split_once("]:").ok_or_else(bad)?;
        h.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
        (h, e)
    } else {
        s.split_once(':').ok_or_else(bad)?
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && (host.contains(':')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
                && !host.starts_with(['-', '.']));
    if !host_ok || !export.starts_with('/') {
        return Err(bad());
    }
    let mut path = PathBuf::from("/");
    for c in Path::new(export).components() {
        match c {
            Component::Normal(n) => path.push(n),
            Component::RootDir | Component::CurDir => {}
            _ => return Err(format!("nfs = {}: the export contains \"..\"", quote(s))),
        }
    }
    Ok((host.to_ascii_lowercase(), path))
}

/// One `allowed_nfs_servers` entry: which `nfs://` URLs it lets an
/// annotation name. `host` allows any export on any port (as before);
/// `host:port` any export on that port; `host:/prefix` (and
/// `host:port:/prefix`) only exports at or under that path, component by
/// component, on the default port (or that port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedServer {
    /// Lower-case, as URLs are.
    pub host: String,
    pub port: Option<u16>,
    /// Absolute, normalised, no `..`.
    pub export_prefix: Option<PathBuf>,
}

impl AllowedServer {
    /// Parse an entry (checked at config load).
    pub fn parse(entry: &str) -> Result<AllowedServer, String> {
        if entry.is_empty() || entry.contains(char::is_whitespace) {
            return Err("is not a host name or address".into());
        }
        let (authority, prefix) = match entry.find(":/") {
            Some(i) => (&entry[..i], Some(&entry[i + 1..])),
            None => (entry, None),
        };
        if authority.is_empty() || authority.contains('/') {
            return Err(
                "must be HOST, HOST:PORT, HOST:/EXPORT-PREFIX or HOST:PORT:/EXPORT-PREFIX".into(),
            );
        }
        // `host:port` when what follows the last ':' is a port and the host
        // has no ':' of its own (an IPv6 address is a host, never a port).
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') && !h.is_empty() => {
                let port =
                    p.parse::<u16>().ok().filter(|&p| p != 0).ok_or_else(|| {
                        format!("port {} is not a number from 1 to 65535", quote(p))
                    })?;
                (h, Some(port))
            }
            _ => (authority, None),
        };
        let export_prefix = match prefix {
            None => None,
            Some(p) => {
                let mut out = PathBuf::from("/");
                for c in Path::new(p).components() {
                    match c {
                        Component::Normal(n) => out.push(n),
                        Component::RootDir | Component::CurDir => {}
                        _ => return Err(format!("export prefix {} contains \"..\"", quote(p))),
                    }
                }
                Some(out)
            }
        };
        Ok(AllowedServer {
            host: host.to_ascii_lowercase(),
            port,
            export_prefix,
        })
    }

    /// Whether this entry names `host` at all (to tell "server not allowed"
    /// from "export or port not allowed" in messages).
    pub fn names_host(&self, host: &str) -> bool {
        self.host.eq_ignore_ascii_case(host)
    }

    /// Whether an `nfs://host[:port]/export` URL is allowed by this entry.
    pub fn allows(&self, host: &str, port: Option<u16>, export: &Path) -> bool {
        if !self.names_host(host) {
            return false;
        }
        let port_ok = match (self.port, &self.export_prefix) {
            (Some(p), _) => port.unwrap_or(NFS_PORT) == p,
            // The bare host form keeps its meaning: any port.
            (None, None) => true,
            // A prefix is about one server's exports: the NFS port only.
            (None, Some(_)) => port.unwrap_or(NFS_PORT) == NFS_PORT,
        };
        let export_ok = self.export_prefix.as_ref().is_none_or(|prefix| {
            export.is_absolute()
                && !export.components().any(|c| c == Component::ParentDir)
                && export.starts_with(prefix)
        });
        port_ok && export_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_validated_strictly() {
        let o = NfsOptions::parse("vers=4.1,hard,timeo=600").unwrap();
        assert_eq!(o.version, Version::V4_1);
        assert_eq!(
            o.params,
            vec![
                ("hard".to_string(), None),
                ("timeo".to_string(), Some("600".to_string()))
            ]
        );
        assert_eq!(NfsOptions::parse("vers=4").unwrap().version, Version::V4_0);
        assert_eq!(NfsOptions::parse("nfsvers=3").unwrap().version, Version::V3);
        assert_eq!(
            NfsOptions::parse("rsize=65536").unwrap().version,
            Version::V4_1
        );
        let o = NfsOptions::parse("vers=3,proto=udp,nolock,nconnect=4,sec=sys,port=2049").unwrap();
        assert_eq!(o.family, Some(Family::V4));
        for (bad, want) in [
            ("vers=5", "vers=5"),
            ("context=system_u:object_r:x_t:s0", "sets context= itself"),
            ("addr=10.0.0.1", "resolves the server"),
            ("clientaddr=10.0.0.1", "local address"),
            ("ro", "read_only"),
            ("bg", "mount(8)"),
            ("retry=3", "mount_timeout"),
            ("intr", "2.6.25"),
            ("frobnicate", "unknown NFS option \"frobnicate\""),
            ("timeo=0", "must be 1 to 6000"),
            ("timeo=abc", "not a number"),
            ("rsize", "needs a value"),
            ("hard=1", "takes no value"),
            ("hard,soft", "contradict"),
            ("hard,hard", "twice"),
            ("vers=4.1,nfsvers=4.2", "twice"),
            ("proto=sctp", "one of"),
            ("proto=udp,vers=4.2", "needs vers=3"),
            ("sec=krb5\"x", "bad value"),
            ("hard,,soft", "empty option"),
            ("minorversion=1", "vers=4.0"),
        ] {
            let e = NfsOptions::parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
    }

    #[test]
    fn server_export_parsing() {
        assert_eq!(
            parse_server_export("FS.example.com:/exports//logs/").unwrap(),
            ("fs.example.com".into(), PathBuf::from("/exports/logs"))
        );
        assert_eq!(
            parse_server_export("[fd00::5]:/x").unwrap(),
            ("fd00::5".into(), PathBuf::from("/x"))
        );
        assert_eq!(
            parse_server_export("10.0.0.5:/").unwrap().1,
            PathBuf::from("/")
        );
        for bad in [
            "host",
            ":/x",
            "host:x",
            "-h:/x",
            "[zz]:/x",
            "h:/a/../b",
            "a b:/x",
        ] {
            assert!(parse_server_export(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn allowed_server_forms() {
        let a = |s: &str| AllowedServer::parse(s).unwrap();
        assert_eq!(
            a("NFS1"),
            AllowedServer {
                host: "nfs1".into(),
                port: None,
                export_prefix: None
            }
        );
        assert_eq!(a("nfs1:2050").port, Some(2050));
        let p = a("nfs1:/export//containers/");
        assert_eq!(
            (p.port, p.export_prefix.as_deref()),
            (None, Some(Path::new("/export/containers")))
        );
        let p = a("nfs1:2050:/export");
        assert_eq!(
            (p.host.as_str(), p.port, p.export_prefix.as_deref()),
            ("nfs1", Some(2050), Some(Path::new("/export")))
        );
        assert_eq!(a("fd00::5").host, "fd00::5");
        for bad in [
            "",
            "a b",
            "/export",
            ":/export",
            "nfs1:/export/../etc",
            "nfs1:0",
            "nfs1:port",
            "nfs1:99999:/x",
            "nfs1/export",
        ] {
            assert!(AllowedServer::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn allowed_server_matching() {
        let a = |s: &str| AllowedServer::parse(s).unwrap();
        let ok = |e: &AllowedServer, host: &str, port: Option<u16>, export: &str| {
            e.allows(host, port, Path::new(export))
        };
        // host: any export, any port.
        let h = a("nfs1");
        assert!(ok(&h, "nfs1", None, "/"));
        assert!(ok(&h, "NFS1", Some(20490), "/srv"));
        assert!(!ok(&h, "nfs2", None, "/srv"));
        // host:port: that port (no port in the URL is the NFS port).
        let hp = a("nfs1:2050");
        assert!(ok(&hp, "nfs1", Some(2050), "/x"));
        assert!(!ok(&hp, "nfs1", None, "/x"));
        assert!(ok(&a("nfs1:2049"), "nfs1", None, "/x"));
        // host:/prefix: at or under the prefix, by component; the NFS port.
        let pre = a("nfs1:/export/containers");
        assert!(ok(&pre, "nfs1", None, "/export/containers"));
        assert!(ok(&pre, "nfs1", None, "/export/containers/app/data"));
        assert!(ok(&pre, "nfs1", Some(2049), "/export/containers/app"));
        assert!(!ok(&pre, "nfs1", None, "/export/containers2"));
        assert!(!ok(&pre, "nfs1", None, "/export/container"));
        assert!(!ok(&pre, "nfs1", None, "/export"));
        assert!(!ok(&pre, "nfs1", None, "/"));
        assert!(!ok(&pre, "nfs1", None, "/etc"));
        assert!(!ok(&pre, "nfs1", None, "/export/containers/../secret"));
        assert!(!ok(&pre, "nfs1", None, "export/containers"));
        assert!(!ok(&pre, "nfs1", Some(20490), "/export/containers/app"));
        assert!(!ok(&pre, "nfs2", None, "/export/containers/app"));
        assert!(pre.names_host("nfs1") && !pre.names_host("nfs2"));
        // host:port:/prefix: both.
        let both = a("nfs1:2050:/export");
        assert!(ok(&both, "nfs1", Some(2050), "/export/a"));
        assert!(!ok(&both, "nfs1", None, "/export/a"));
        assert!(!ok(&both, "nfs1", Some(2050), "/other"));
        // A prefix of / allows every export, on the NFS port.
        assert!(ok(&a("nfs1:/"), "nfs1", None, "/anything"));
    }
}
