//! User requests: the `oci-volume-hook/volumes` annotation parsed into
//! [`VolumeRequest`]s. Everything here is untrusted and only checked for
//! form; what the admin allows is decided in `policy`.
//!
//! Grammar (the `-v` syntax podman and docker users know):
//!
//! ```text
//! annotation := spec { ";" spec }          whitespace around specs ignored
//! spec       := SOURCE ":" DEST [ ":" OPTIONS ]
//! SOURCE     := NAME | ABSOLUTE-HOST-PATH | NFS-URL
//! NAME       := [A-Za-z0-9][A-Za-z0-9_.-]*  (at most 128 bytes)
//! NFS-URL    := "nfs://" HOST [ ":" PORT ] ABSOLUTE-EXPORT-PATH
//! OPTIONS    := option { SEP option }
//! SEP        := "," | "+"                   interchangeable
//! option     := ro | rw | nosuid | suid | nodev | dev | noexec | exec
//!             | z | Z | U | idmap
//! ```
//!
//! `+` is there for podman 4.x, which splits `--annotation` at commas
//! (`--annotation K=a:/a:ro,nosuid` fails in podman itself): `a:/a:ro+nosuid`
//! passes podman 4 and 5 alike. It can only ever separate options: it is
//! not in any option name, and it is read only after the second `:`, so
//! a source or destination path keeps its `+`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{quote, volume_subject, HookError};

pub const ANNOTATION_KEY: &str = "oci-volume-hook/volumes";
pub const MAX_ANNOTATION_BYTES: usize = 64 * 1024;
pub const MAX_VOLUMES: usize = 64;
pub const MAX_NAME_BYTES: usize = 128;

const VALID_OPTIONS: &str = "ro, rw, nosuid, suid, nodev, dev, noexec, exec, z, Z, U, idmap; separated by + (podman 4 splits --annotation at commas) or ,";

/// Where the user wants the data to come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestSource {
    /// A named volume: admin-defined, or created under `volumes_root`.
    Named(String),
    /// An absolute host path (normalised lexically; symlinks are resolved by policy).
    HostPath(PathBuf),
    /// `nfs://server[:port]/export`: only for servers the admin allows.
    Nfs(NfsUrl),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsUrl {
    pub host: String,
    pub port: Option<u16>,
    /// Absolute, normalised export path.
    pub export: PathBuf,
}

/// SELinux relabelling the user asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relabel {
    /// `z`: shared, every container may use it (level s0, no categories).
    Shared,
    /// `Z`: private, the container's own MCS categories.
    Private,
}

/// Mount options after defaults (`rw,nosuid,nodev`) are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub read_only: bool,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
    /// `z` / `Z`.
    pub relabel: Option<Relabel>,
    /// `U`: the files belong to the container's (mapped) user and group.
    pub chown: bool,
    /// `idmap`: an idmapped mount into the container's user namespace.
    pub idmap: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            read_only: false,
            nosuid: true,
            nodev: true,
            noexec: false,
            relabel: None,
            chown: false,
            idmap: false,
        }
    }
}

impl Options {
    /// The options as a canonical comma list, e.g. `rw,nosuid,nodev`.
    pub fn to_list(&self) -> String {
        let mut v = vec![if self.read_only { "ro" } else { "rw" }];
        v.push(if self.nosuid { "nosuid" } else { "suid" });
        v.push(if self.nodev { "nodev" } else { "dev" });
        v.push(if self.noexec { "noexec" } else { "exec" });
        match self.relabel {
            Some(Relabel::Shared) => v.push("z"),
            Some(Relabel::Private) => v.push("Z"),
            None => {}
        }
        if self.chown {
            v.push("U");
        }
        if self.idmap {
            v.push("idmap");
        }
        v.join(",")
    }
}

/// One volume as the user asked for it, checked for form only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRequest {
    /// The spec as written (trimmed), for messages.
    pub spec: String,
    pub source: RequestSource,
    /// Absolute, normalised, no `..`.
    pub dest: PathBuf,
    pub options: Options,
    /// The annotation said `exec` itself (the default, so `options` cannot
    /// tell): policy refuses it where the admin forces noexec.
    pub exec_asked: bool,
}

/// Parse the whole annotation value.
pub fn parse_annotation(value: &str) -> Result<Vec<VolumeRequest>, HookError> {
    let subject = format!("annotation {ANNOTATION_KEY}");
    if value.len() > MAX_ANNOTATION_BYTES {
        return Err(HookError::invalid(
            subject,
            format!(
                "value is {} bytes, more than the limit of {MAX_ANNOTATION_BYTES}",
                value.len()
            ),
        )
        .hint("ask for fewer volumes"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    {
        return Err(HookError::invalid(
            subject,
            format!(
                "value contains the control character {}",
                c.escape_default()
            ),
        ));
    }
    let mut requests = Vec::new();
    let mut dests: BTreeMap<PathBuf, String> = BTreeMap::new();
    for raw in value.split(';') {
        let spec = raw.trim();
        if spec.is_empty() {
            continue;
        }
        if requests.len() == MAX_VOLUMES {
            return Err(HookError::invalid(
                subject,
                format!("more than {MAX_VOLUMES} volumes requested"),
            ));
        }
        let req = parse_spec(spec)?;
        if let Some(other) = dests.insert(req.dest.clone(), req.spec.clone()) {
            return Err(HookError::invalid(
                volume_subject(spec),
                format!(
                    "destination {} is already used by volume {}",
                    req.dest.display(),
                    quote(&other)
                ),
            )
            .hint("give each volume its own destination"));
        }
        requests.push(req);
    }
    if requests.is_empty() {
        return Err(HookError::invalid(subject, "no volume spec in the value")
            .hint("use SOURCE:DEST[:OPTIONS], e.g. myapp:/myapp"));
    }
    Ok(requests)
}

/// Parse one `SOURCE:DEST[:OPTIONS]` spec.
pub fn parse_spec(spec: &str) -> Result<VolumeRequest, HookError> {
    let subject = volume_subject(spec);
    let invalid = |why: String| HookError::invalid(subject.clone(), why);
    // Tab, CR and LF may separate specs, never sit inside one (a destination
    // or host path with a newline would reach paths, records and log lines).
    if let Some(c) = spec.chars().find(|c| c.is_control()) {
        return Err(invalid(format!(
            "contains the control character {}",
            c.escape_default()
        )));
    }
    // An nfs:// source holds ':' itself: split it off first.
    let (nfs, rest) = match spec.strip_prefix("nfs://") {
        Some(after) => {
            let (url, rest) = split_nfs_url(after).map_err(&invalid)?;
            (Some(url), rest)
        }
        None => (None, spec),
    };
    let parts: Vec<&str> = match nfs {
        Some(_) => std::iter::once("").chain(rest.split(':')).collect(),
        None => rest.split(':').collect(),
    };
    let (src, dest, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, None),
        [s, d, o] => (*s, *d, Some(*o)),
        [_] => {
            return Err(invalid("missing destination".into())
                .hint("use SOURCE:DEST[:OPTIONS], e.g. myapp:/myapp"))
        }
        _ => {
            return Err(invalid(format!(
                "{} ':' separators, at most 2 expected",
                parts.len() - 1
            ))
            .hint("use SOURCE:DEST[:OPTIONS]; paths with ':' are not supported"))
        }
    };
    let source = match nfs {
        Some(url) => RequestSource::Nfs(url),
        None => parse_source(src).map_err(|why| {
            invalid(why).hint("the source is a volume name such as myapp, or an absolute host path the admin allows")
        })?,
    };
    let dest = parse_dest(dest).map_err(|why| {
        invalid(why).hint("the destination must be an absolute path in the container, not / nor under /proc, /sys or /dev, without \"..\"")
    })?;
    let options = match opts {
        Some(o) => parse_options(o)
            .map_err(|why| invalid(why).hint(format!("valid options: {VALID_OPTIONS}")))?,
        None => Options::default(),
    };
    Ok(VolumeRequest {
        spec: spec.to_string(),
        source,
        dest,
        options,
        exec_asked: opts.is_some_and(|o| o.split(',').any(|o| o == "exec")),
    })
}

/// Split `host[:port]/export:REST` (after `nfs://`) into the URL and REST.
fn split_nfs_url(after: &str) -> Result<(NfsUrl, &str), String> {
    let slash = after.find('/').ok_or("nfs:// source has no export path")?;
    let (authority, path_and_rest) = after.split_at(slash);
    let colon = path_and_rest.find(':').ok_or("missing destination")?;
    let (export, rest) = (&path_and_rest[..colon], &path_and_rest[colon + 1..]);
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (
            h,
            Some(p.parse::<u16>().map_err(|_| {
                format!("nfs:// port {} is not a number from 1 to 65535", quote(p))
            })?),
        ),
        None => (authority, None),
    };
    if port == Some(0) {
        return Err("nfs:// port 0 is not valid".into());
    }
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        && !host.starts_with(['-', '.']);
    if !host_ok {
        return Err(format!(
            "nfs:// server {} is not a host name or IPv4 address",
            quote(host)
        ));
    }
    let export = normalize_absolute(export)
        .map_err(|why| format!("nfs:// export {}: {why}", quote(export)))?;
    Ok((
        NfsUrl {
            host: host.to_ascii_lowercase(),
            port,
            export,
        },
        rest,
    ))
}

fn parse_source(src: &str) -> Result<RequestSource, String> {
    if src.is_empty() {
        return Err("empty source".into());
    }
    if src.starts_with('/') {
        return normalize_absolute(src)
            .map(RequestSource::HostPath)
            .map_err(|why| format!("source {}: {why}", quote(src)));
    }
    validate_name(src)?;
    Ok(RequestSource::Named(src.to_string()))
}

/// Check a volume name: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 128 bytes.
pub fn validate_name(name: &str) -> Result<(), String> {
    let bad = || {
        format!(
            "{} is neither an absolute host path nor a volume name ([A-Za-z0-9][A-Za-z0-9_.-]*, at most {MAX_NAME_BYTES} bytes)",
            quote(name)
        )
    };
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err(bad());
    }
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    if !first_ok || !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err(bad());
    }
    Ok(())
}

fn parse_dest(dest: &str) -> Result<PathBuf, String> {
    if dest.is_empty() {
        return Err("empty destination".into());
    }
    let path =
        normalize_absolute(dest).map_err(|why| format!("destination {}: {why}", quote(dest)))?;
    let first = path
        .components()
        .nth(1)
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    match first.as_deref() {
        None => Err("destination is the container's root \"/\"".into()),
        Some(top @ ("proc" | "sys" | "dev")) => Err(format!(
            "destination {} is under /{top}, which the runtime owns",
            path.display()
        )),
        _ => Ok(path),
    }
}

/// Normalise an absolute path lexically: collapse `//` and `.`, refuse `..`.
fn normalize_absolute(p: &str) -> Result<PathBuf, String> {
    if !p.starts_with('/') {
        return Err("is not an absolute path".into());
    }
    let mut out = PathBuf::from("/");
    for c in Path::new(p).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => return Err("contains \"..\"".into()),
            Component::Normal(n) => out.push(n),
            Component::Prefix(_) => return Err("is not a Linux path".into()),
        }
    }
    Ok(out)
}

fn parse_options(list: &str) -> Result<Options, String> {
    let mut o = Options::default();
    // Each pair (ro/rw, nosuid/suid, …) may be given once either way.
    let mut seen: BTreeMap<&'static str, &str> = BTreeMap::new();
    for opt in list.split([',', '+']) {
        let (pair, value): (&'static str, bool) = match opt {
            "ro" => ("ro/rw", true),
            "rw" => ("ro/rw", false),
            "nosuid" => ("suid", true),
            "suid" => ("suid", false),
            "nodev" => ("dev", true),
            "dev" => ("dev", false),
            "noexec" => ("exec", true),
            "exec" => ("exec", false),
            "z" => ("z/Z", false),
            "Z" => ("z/Z", true),
            "U" => ("U", true),
            "idmap" => ("idmap", true),
            "" => return Err("empty option in the option list".into()),
            other if other.contains('=') => {
                return Err(format!(
                    "unknown option {}: mount options such as NFS's vers= or timeo= are the admin's, set in the volume's [volumes.NAME] options, never in the annotation",
                    quote(other)
                ))
            }
            other => return Err(format!("unknown option {}", quote(other))),
        };
        if let Some(prev) = seen.insert(pair, opt) {
            if prev != opt {
                return Err(format!(
                    "options {} and {} contradict each other",
                    quote(prev),
                    quote(opt)
                ));
            }
        }
        match pair {
            "ro/rw" => o.read_only = value,
            "suid" => o.nosuid = value,
            "dev" => o.nodev = value,
            "exec" => o.noexec = value,
            "z/Z" => {
                o.relabel = Some(if value {
                    Relabel::Private
                } else {
                    Relabel::Shared
                })
            }
            "U" => o.chown = true,
            _ => o.idmap = true,
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> VolumeRequest {
        parse_spec(s).unwrap()
    }

    fn err(s: &str) -> String {
        parse_annotation(s).unwrap_err().to_string()
    }

    #[test]
    fn named_and_host_sources() {
        let r = one("myapp:/myapp");
        assert_eq!(r.source, RequestSource::Named("myapp".into()));
        assert_eq!(r.dest, PathBuf::from("/myapp"));
        assert_eq!(r.options, Options::default());
        assert_eq!(r.options.to_list(), "rw,nosuid,nodev,exec");
        let r = one("/export/myapp//./logs:/var/log/app/:ro");
        assert_eq!(
            r.source,
            RequestSource::HostPath("/export/myapp/logs".into())
        );
        assert_eq!(r.dest, PathBuf::from("/var/log/app"));
        assert!(r.options.read_only);
    }

    #[test]
    fn options_parse_and_conflict() {
        let o = one("a:/b:ro,noexec,dev,suid").options;
        assert_eq!(
            o,
            Options {
                read_only: true,
                nosuid: false,
                nodev: false,
                noexec: true,
                ..Options::default()
            }
        );
        let o = one("a:/b:Z,U,idmap").options;
        assert_eq!(
            (o.relabel, o.chown, o.idmap),
            (Some(Relabel::Private), true, true)
        );
        assert_eq!(o.to_list(), "rw,nosuid,nodev,exec,Z,U,idmap");
        assert!(!one("a:/b:Z,U,idmap").exec_asked);
        assert!(one("a:/b:ro,exec").exec_asked);
        assert!(!one("a:/b:noexec").exec_asked);
        assert_eq!(one("a:/b:z").options.relabel, Some(Relabel::Shared));
        assert!(err("a:/b:z,Z").contains("contradict"));
        assert!(err("a:/b:u").contains("unknown option \"u\""));
        assert!(one("a:/b:ro,ro").options.read_only);
        assert!(err("a:/b:ro,rw").contains("contradict"));
        let e = err("a:/b:rw,zap");
        assert!(e.contains("unknown option \"zap\""), "{e}");
        assert!(e.contains("valid options"), "{e}");
        assert!(err("a:/b:").contains("empty option"));
        assert!(err("a:/b:ro,,rw").contains("empty option"));
    }

    #[test]
    fn plus_separates_options_as_comma_does() {
        // The podman-4-safe form: podman 4.x splits --annotation at commas.
        for (plus, comma) in [
            ("myapp:/myapp:ro+nosuid", "myapp:/myapp:ro,nosuid"),
            ("a:/b:ro+noexec+dev+suid", "a:/b:ro,noexec,dev,suid"),
            ("a:/b:Z+U+idmap", "a:/b:Z,U,idmap"),
            ("a:/b:z+U", "a:/b:z,U"),
            ("a:/b:ro+noexec,U", "a:/b:ro,noexec,U"),
            (
                "nfs://fs.example.com/exports/logs:/var/log/app:ro+z",
                "nfs://fs.example.com/exports/logs:/var/log/app:ro,z",
            ),
        ] {
            let (p, c) = (one(plus), one(comma));
            assert_eq!(
                (&p.source, &p.dest, p.options),
                (&c.source, &c.dest, c.options),
                "{plus}"
            );
            assert_eq!(p.spec, plus, "the spec is kept as written");
        }
        assert!(one("myapp:/myapp:ro+nosuid").options.read_only);
        // Each option's pair is judged across both separators.
        assert!(err("a:/b:ro+rw").contains("contradict"));
        assert!(err("a:/b:z,Z").contains("contradict"));
        assert!(err("a:/b:z+Z").contains("contradict"));
        assert!(err("a:/b:ro+").contains("empty option"));
        assert!(err("a:/b:+ro").contains("empty option"));
        assert!(err("a:/b:ro+,nosuid").contains("empty option"));
        let e = err("a:/b:ro+zap");
        assert!(e.contains("unknown option \"zap\""), "{e}");
        assert!(
            e.contains("separated by +"),
            "the hint shows the + form: {e}"
        );
        // `+` in paths is a path character, never a separator.
        let r = one("/srv/a+b:/c+d:ro+nosuid");
        assert_eq!(r.source, RequestSource::HostPath("/srv/a+b".into()));
        assert_eq!(r.dest, PathBuf::from("/c+d"));
        assert!(r.options.read_only && r.options.nosuid);
        assert_eq!(one("a:/c+d").options, Options::default());
        assert!(err("a+b:/c").contains("volume name"));
        // Several specs, each with + options.
        let v = parse_annotation("a:/a:ro+nosuid;b:/b:z+U").unwrap();
        assert_eq!(v.len(), 2);
        assert!(v[0].options.read_only && v[1].options.chown);
        // The canonical list re-parses with either separator.
        let o = one("a:/b:ro+noexec+Z+U+idmap").options;
        assert_eq!(one(&format!("a:/b:{}", o.to_list())).options, o);
        assert_eq!(
            one(&format!("a:/b:{}", o.to_list().replace(',', "+"))).options,
            o
        );
    }

    #[test]
    fn several_specs_whitespace_and_empties() {
        let v = parse_annotation(" a:/a ;\n b:/b:ro ;; ").unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].spec, "b:/b:ro");
    }

    #[test]
    fn refuses_bad_destinations() {
        assert!(err("a:relative").contains("not an absolute path"));
        assert!(err("a:/x/../etc").contains("\"..\""));
        assert!(err("a:/").contains("root"));
        assert!(err("a://").contains("root"));
        assert!(err("a:/proc/x").contains("/proc"));
        assert!(err("a:/sys").contains("/sys"));
        assert!(err("a:/dev//shm").contains("/dev"));
        assert!(parse_spec("a:/devices").is_ok());
        assert!(parse_spec("a:/process").is_ok());
        assert!(err("a:").contains("empty destination"));
        assert!(err("a").contains("missing destination"));
        assert!(err("a:/b:ro:x").contains("separators"));
    }

    #[test]
    fn nfs_urls() {
        let r = one("nfs://fs.example.com/exports/logs:/var/log/app:ro");
        assert_eq!(
            r.source,
            RequestSource::Nfs(NfsUrl {
                host: "fs.example.com".into(),
                port: None,
                export: "/exports/logs".into()
            })
        );
        assert_eq!(r.dest, PathBuf::from("/var/log/app"));
        assert!(r.options.read_only);
        let r = one("nfs://10.0.0.5:2049/:/data");
        assert_eq!(
            r.source,
            RequestSource::Nfs(NfsUrl {
                host: "10.0.0.5".into(),
                port: Some(2049),
                export: "/".into()
            })
        );
        assert!(err("nfs://h:0/x:/d").contains("port 0"));
        assert!(err("nfs://h:99999/x:/d").contains("port"));
        assert!(err("nfs://h/x").contains("missing destination"));
        assert!(err("nfs://h").contains("no export path"));
        assert!(err("nfs:///x:/d").contains("server"));
        assert!(err("nfs://a b/x:/d").contains("server"));
        assert!(err("nfs://h/x/../y:/d").contains("\"..\""));
        assert!(err("nfs://h/x:/d:ro:y").contains("separators"));
    }

    #[test]
    fn refuses_duplicate_destinations() {
        let e = err("a:/data;b:/data/");
        assert!(e.contains("already used"), "{e}");
    }

    #[test]
    fn refuses_bad_names() {
        for bad in ["-x:/y", ".x:/y", "a/b:/y", "a b:/y", "é:/y", "_a:/y"] {
            let e = err(bad);
            assert!(e.contains("volume name"), "{bad}: {e}");
        }
        let long = format!("{}:/y", "a".repeat(129));
        assert!(err(&long).contains("volume name"));
        assert!(parse_spec(&format!("{}:/y", "a".repeat(128))).is_ok());
        assert!(parse_spec("a..b:/y").is_ok());
        assert!(err(":/y").contains("empty source"));
        assert!(err("/etc/../root:/y").contains("\"..\""));
    }

    #[test]
    fn limits_and_control_characters() {
        let big = "a:/b;".repeat(MAX_ANNOTATION_BYTES / 5 + 1);
        assert!(err(&big).contains("limit"));
        let many: String = (0..=MAX_VOLUMES).map(|i| format!("v{i}:/d{i};")).collect();
        assert!(err(&many).contains("more than 64"));
        assert!(err("a:/b\0").contains("control character"));
        assert!(err("a:/b\u{1b}[31m").contains("control character"));
        assert!(err("a:/x\ty").contains("control character"));
        assert!(err("a:/proc/x\ny").contains("control character"));
        assert_eq!(parse_annotation("a:/a\t;\n\tb:/b\r\n").unwrap().len(), 2);
        assert!(err("").contains("no volume spec"));
        assert!(err(" ; ").contains("no volume spec"));
    }

    #[test]
    fn messages_name_the_spec_and_never_echo_raw_control_bytes() {
        let e = parse_annotation("ok:/ok;bad:/b:nope")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("volume \"bad:/b:nope\" invalid:"), "{e}");
    }
}
