//! systemd-nspawn's command line, as the `nspawn` launcher sees it
//! (untrusted: whoever writes the unit or types the command): which machine
//! it names, and how a volume is handed to it (`--bind=SRC:DEST`).
//!
//! nspawn parses its options with `getopt_long("+hD:u:abL:M:jS:Z:qi:xp:nUE:P")`:
//! options stop at `--` or at the first argument that is not an option (the
//! command to run in the machine), short options may be grouped (`-xM web`,
//! `-Mweb`), long ones may be abbreviated (`--mach=web`). The scan below
//! follows the same rules, so an `-M` inside the machine's own command line
//! is never taken for the machine name.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use crate::error::HookError;

/// nspawn's short options that take an argument (its optstring
/// `+hD:u:abL:M:jS:Z:qi:xp:nUE:P`).
const SHORT_WITH_ARG: &[u8] = b"DuLMSZipE";

/// nspawn's long options (systemd 252 and later) and whether each takes a
/// required argument (`--opt VALUE` or `--opt=VALUE`). Options with an
/// optional argument (`--volatile`, `--private-users`, `--private-users-chown`)
/// take it only as `--opt=VALUE`, as flags do.
const LONG: &[(&str, bool)] = &[
    ("help", false),
    ("version", false),
    ("directory", true),
    ("template", true),
    ("ephemeral", false),
    ("user", true),
    ("private-network", false),
    ("as-pid2", false),
    ("boot", false),
    ("uuid", true),
    ("read-only", false),
    ("capability", true),
    ("ambient-capability", true),
    ("drop-capability", true),
    ("no-new-privileges", true),
    ("link-journal", true),
    ("bind", true),
    ("bind-ro", true),
    ("tmpfs", true),
    ("overlay", true),
    ("overlay-ro", true),
    ("inaccessible", true),
    ("machine", true),
    ("hostname", true),
    ("slice", true),
    ("setenv", true),
    ("selinux-context", true),
    ("selinux-apifs-context", true),
    ("quiet", false),
    ("share-system", false),
    ("register", true),
    ("keep-unit", false),
    ("network-interface", true),
    ("network-macvlan", true),
    ("network-ipvlan", true),
    ("network-veth", false),
    ("network-veth-extra", true),
    ("network-bridge", true),
    ("network-zone", true),
    ("network-namespace-path", true),
    ("personality", true),
    ("image", true),
    ("volatile", false),
    ("port", true),
    ("property", true),
    ("private-users", false),
    ("private-users-chown", false),
    ("private-users-ownership", true),
    ("kill-signal", true),
    ("settings", true),
    ("chdir", true),
    ("pivot-root", true),
    ("notify-ready", true),
    ("root-hash", true),
    ("root-hash-sig", true),
    ("verity-data", true),
    ("system-call-filter", true),
    ("rlimit", true),
    ("oom-score-adjust", true),
    ("cpu-affinity", true),
    ("resolv-conf", true),
    ("timezone", true),
    ("console", true),
    ("pipe", false),
    ("oci-bundle", true),
    ("no-pager", false),
    ("set-credential", true),
    ("load-credential", true),
    ("bind-user", true),
    ("suppress-sync", true),
    ("image-policy", true),
];

/// What nspawn's options say about the machine (the last of each wins, as
/// in nspawn).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NspawnArgs {
    /// `-M`/`--machine`; an empty value means "the default" again.
    pub machine: Option<OsString>,
    /// `-D`/`--directory`.
    pub directory: Option<OsString>,
    /// `-i`/`--image`.
    pub image: Option<OsString>,
    /// `-x`/`--ephemeral`: nspawn adds a random suffix to a default name.
    pub ephemeral: bool,
    /// `--oci-bundle`: the directory comes from the bundle.
    pub oci_bundle: bool,
}

/// Find a long option by its full name or by an unambiguous prefix, as
/// getopt_long does.
fn long_option(name: &[u8]) -> Option<(&'static str, bool)> {
    if let Some(&exact) = LONG.iter().find(|(n, _)| n.as_bytes() == name) {
        return Some(exact);
    }
    let mut found = LONG.iter().filter(|(n, _)| n.as_bytes().starts_with(name));
    match (found.next(), found.next()) {
        (Some(&one), None) if !name.is_empty() => Some(one),
        _ => None,
    }
}

/// Scan nspawn's options; stops where nspawn stops.
pub fn scan(args: &[OsString]) -> NspawnArgs {
    let mut out = NspawnArgs::default();
    let set = |out: &mut NspawnArgs, opt: &str, value: Option<OsString>| match (opt, value) {
        ("machine", Some(v)) => out.machine = (!v.is_empty()).then_some(v),
        ("directory", Some(v)) => out.directory = Some(v),
        ("image", Some(v)) => out.image = Some(v),
        ("oci-bundle", Some(_)) => out.oci_bundle = true,
        ("ephemeral", _) => out.ephemeral = true,
        _ => {}
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_bytes();
        i += 1;
        if a == b"--" || a.len() < 2 || a[0] != b'-' {
            break;
        }
        if let Some(long) = a.strip_prefix(b"--") {
            let (name, inline) = match long.iter().position(|&b| b == b'=') {
                Some(p) => (
                    &long[..p],
                    Some(OsStr::from_bytes(&long[p + 1..]).to_owned()),
                ),
                None => (long, None),
            };
            let Some((opt, required)) = long_option(name) else {
                continue; // nspawn refuses it; nothing to learn here
            };
            let value = match inline {
                Some(v) => Some(v),
                None if required => {
                    i += 1;
                    args.get(i - 1).cloned()
                }
                None => None,
            };
            set(&mut out, opt, value);
            continue;
        }
        // Grouped short options: "-xM", "-Mweb", "-D" "/dir".
        let mut j = 1;
        while j < a.len() {
            let c = a[j];
            j += 1;
            let opt = match c {
                b'M' => "machine",
                b'D' => "directory",
                b'i' => "image",
                b'x' => "ephemeral",
                _ => "",
            };
            if SHORT_WITH_ARG.contains(&c) {
                let value = if j < a.len() {
                    Some(OsStr::from_bytes(&a[j..]).to_owned())
                } else {
                    i += 1;
                    args.get(i - 1).cloned()
                };
                set(&mut out, opt, value);
                break;
            }
            set(&mut out, opt, None);
        }
    }
    out
}

/// The machine name nspawn will use: `--machine`, else the last component
/// of `--directory` (or of the current directory when neither a directory
/// nor an image is given), else the file name of `--image` without `.raw`;
/// the host's name for the host's root directory; cleaned up as nspawn's
/// `hostname_cleanup()` does and checked as its `hostname_is_valid()`.
pub fn machine_name(args: &NspawnArgs, cwd: &Path, hostname: &str) -> Result<String, HookError> {
    let subject = "nspawn";
    if let Some(m) = &args.machine {
        let m = m.to_str().filter(|m| hostname_is_valid(m)).ok_or_else(|| {
            HookError::invalid(
                subject,
                format!(
                    "invalid machine name {:?}: letters, digits and '-' in labels separated by '.', at most 64 bytes",
                    m.to_string_lossy()
                ),
            )
        })?;
        return Ok(m.to_string());
    }
    let name_it = || "give the machine a name with --machine NAME";
    if args.ephemeral || args.oci_bundle {
        let why = if args.ephemeral {
            "with --ephemeral and no --machine, nspawn picks a random machine name, so the volumes' holder could not be named"
        } else {
            "with --oci-bundle and no --machine, the machine name comes from the bundle, which the launcher does not read"
        };
        return Err(HookError::invalid(subject, why).hint(name_it()));
    }
    let (path, image) = match (&args.directory, &args.image) {
        (Some(d), _) => (PathBuf::from(d), false),
        (None, Some(i)) => (PathBuf::from(i), true),
        (None, None) => (cwd.to_path_buf(), false),
    };
    let absolute = cwd.join(&path);
    let mut last = None;
    for c in absolute.components() {
        match c {
            Component::Normal(n) => last = Some(n.as_bytes().to_vec()),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => last = Some(b"..".to_vec()),
        }
    }
    let raw = match last {
        None if !image => hostname.as_bytes().to_vec(),
        Some(n) if n != b".." => {
            let mut n = n;
            if image && n.ends_with(b".raw") {
                n.truncate(n.len() - 4);
            }
            n
        }
        _ => {
            return Err(HookError::invalid(
                subject,
                format!("cannot tell the machine name from {}", absolute.display()),
            )
            .hint(name_it()))
        }
    };
    let name = hostname_cleanup(&raw);
    if !hostname_is_valid(&name) {
        return Err(HookError::invalid(
            subject,
            format!(
                "no valid machine name can be made from {:?} (nspawn would refuse it too)",
                String::from_utf8_lossy(&raw)
            ),
        )
        .hint(name_it()));
    }
    Ok(name)
}

const HOST_NAME_MAX: usize = 64;

/// Letters and digits (nspawn's `valid_ldh_char`, '-' handled apart).
fn ld(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

/// systemd's `hostname_cleanup()`: keep letters, digits, '-' and '.', drop
/// a '.' or '-' that starts a label, a '.' after a '-', at most 64 bytes,
/// one trailing '.' or '-' removed.
pub fn hostname_cleanup(s: &[u8]) -> String {
    let mut d: Vec<u8> = Vec::with_capacity(s.len().min(HOST_NAME_MAX));
    let (mut dot, mut hyphen) = (true, true);
    for &c in s {
        if d.len() >= HOST_NAME_MAX {
            break;
        }
        if c == b'.' {
            if dot || hyphen {
                continue;
            }
            d.push(c);
            (dot, hyphen) = (true, false);
        } else if c == b'-' {
            if dot {
                continue;
            }
            d.push(c);
            (dot, hyphen) = (false, true);
        } else if ld(c) {
            d.push(c);
            (dot, hyphen) = (false, false);
        }
    }
    if matches!(d.last(), Some(b'-' | b'.')) {
        d.pop();
    }
    String::from_utf8(d).unwrap_or_default()
}

/// systemd's `hostname_is_valid(s, 0)`: labels of letters, digits and '-',
/// separated by single dots; no label starts with '-'; no leading or
/// trailing '.', no trailing '-'; at most 64 bytes. Such a name is also a
/// safe file name (no '/', never "." or "..").
pub fn hostname_is_valid(s: &str) -> bool {
    if s.is_empty() || s.len() > HOST_NAME_MAX {
        return false;
    }
    let (mut dot, mut hyphen) = (true, true);
    for &c in s.as_bytes() {
        if c == b'.' {
            if dot || hyphen {
                return false;
            }
            (dot, hyphen) = (true, false);
        } else if c == b'-' {
            if dot {
                return false;
            }
            (dot, hyphen) = (false, true);
        } else if ld(c) {
            (dot, hyphen) = (false, false);
        } else {
            return false;
        }
    }
    !dot && !hyphen
}

/// The nspawn option that binds `source` (a host path) on `dest` (a path
/// in the machine): `--bind=` or `--bind-ro=`, with '\' and ':' escaped
/// (nspawn splits the value on ':' and undoes backslash escapes).
pub fn bind_arg(source: &Path, dest: &Path, read_only: bool) -> OsString {
    let mut v = if read_only {
        b"--bind-ro=".to_vec()
    } else {
        b"--bind=".to_vec()
    };
    let escape = |v: &mut Vec<u8>, p: &Path| {
        for &b in p.as_os_str().as_bytes() {
            if matches!(b, b'\\' | b':') {
                v.push(b'\\');
            }
            v.push(b);
        }
    };
    escape(&mut v, source);
    v.push(b':');
    escape(&mut v, dest);
    OsString::from_vec(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn name(a: &[&str]) -> Result<String, HookError> {
        machine_name(&scan(&args(a)), Path::new("/srv/cwd-dir"), "host.example")
    }

    #[test]
    fn machine_option_in_every_spelling() {
        for a in [
            &["-M", "web"][..],
            &["-Mweb"],
            &["--machine", "web"],
            &["--machine=web"],
            &["--mach=web"],
            &["-qM", "web", "-D", "/var/lib/machines/app"],
            &["-D", "/x/app", "-M", "other", "--machine=web"],
        ] {
            assert_eq!(name(a).unwrap(), "web", "{a:?}");
        }
        // An empty --machine means the default again.
        assert_eq!(
            name(&["-M", "web", "--machine=", "-D", "/x/app"]).unwrap(),
            "app"
        );
    }

    #[test]
    fn default_is_the_directory_or_image_name() {
        assert_eq!(name(&["-D", "/var/lib/machines/app"]).unwrap(), "app");
        assert_eq!(name(&["-D", "/var/lib/machines/app/"]).unwrap(), "app");
        assert_eq!(name(&["--directory=/m/./app/."]).unwrap(), "app");
        assert_eq!(name(&["-Drel/app2"]).unwrap(), "app2");
        assert_eq!(name(&["--dir", "/m/app3"]).unwrap(), "app3");
        assert_eq!(name(&["-i", "/images/web.raw"]).unwrap(), "web");
        assert_eq!(name(&["--image=/images/web.img"]).unwrap(), "web.img");
        // Neither: the current directory, as nspawn does.
        assert_eq!(name(&["--register=no"]).unwrap(), "cwd-dir");
        assert_eq!(name(&[]).unwrap(), "cwd-dir");
        // The host's root: the host name.
        assert_eq!(name(&["-D", "/"]).unwrap(), "host.example");
        // Cleaned up as nspawn does: '_' and other bytes dropped.
        assert_eq!(name(&["-D", "/m/my_app"]).unwrap(), "myapp");
        assert_eq!(name(&["-D", "/m/-.a..b-"]).unwrap(), "a.b");
        assert_eq!(name(&["-D", "/m/d\u{e9}j\u{e0}"]).unwrap(), "dj");
        let long = format!("/m/{}", "a".repeat(80));
        assert_eq!(name(&["-D", &long]).unwrap().len(), 64);
    }

    #[test]
    fn options_stop_where_nspawn_stops() {
        // The machine's own command line is not nspawn's.
        assert_eq!(name(&["-D", "/m/app", "sh", "-M", "evil"]).unwrap(), "app");
        assert_eq!(name(&["-D", "/m/app", "--", "-M", "evil"]).unwrap(), "app");
        // A required argument is consumed even when it looks like an option.
        assert_eq!(
            name(&["--setenv", "-M", "-D", "/m/app"]).unwrap(),
            "app",
            "-M is --setenv's value"
        );
        assert_eq!(name(&["-E", "-Mx", "-D", "/m/app"]).unwrap(), "app");
        assert_eq!(name(&["--bind", "/a:/b", "-D", "/m/app"]).unwrap(), "app");
        // Optional arguments only with '='.
        assert_eq!(name(&["--volatile", "-D", "/m/app"]).unwrap(), "app");
        // An ambiguous abbreviation is nobody's.
        assert_eq!(long_option(b"bind"), Some(("bind", true)));
        assert_eq!(long_option(b"net"), None);
        assert_eq!(long_option(b"mach"), Some(("machine", true)));
    }

    #[test]
    fn names_that_cannot_be_known_are_refused() {
        for a in [
            &["-x", "-D", "/m/app"][..],
            &["--ephemeral", "-D", "/m/app"],
            &["--oci-bundle=/b"],
            &["-D", "/m/___"],
            &["-D", "/m/.."],
            &["-M", "bad name"],
            &["-M", "a..b"],
            &["-M", ".host"],
            &["-M", "-a"],
        ] {
            let e = name(a).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{a:?}: {e}");
        }
        assert!(name(&["-x", "-M", "web"]).is_ok());
        assert!(name(&["-x", "-D", "/m/app"])
            .unwrap_err()
            .to_string()
            .contains("--machine NAME"));
    }

    #[test]
    fn hostname_rules() {
        for ok in ["a", "web", "a-b", "a.b", "a1.b-2", &"x".repeat(64)] {
            assert!(hostname_is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a.",
            ".a",
            "-a",
            "a-",
            "a..b",
            "a.-b",
            "a_b",
            "a/b",
            &"x".repeat(65),
        ] {
            assert!(!hostname_is_valid(bad), "{bad}");
        }
        assert_eq!(hostname_cleanup(b"a--b"), "a--b");
        assert_eq!(hostname_cleanup(b"a-.b"), "a-b");
        assert_eq!(hostname_cleanup(b"..a"), "a");
    }

    #[test]
    fn binds_are_escaped() {
        assert_eq!(
            bind_arg(Path::new("/run/s/nspawn/app/0"), Path::new("/myapp"), false),
            "--bind=/run/s/nspawn/app/0:/myapp"
        );
        assert_eq!(
            bind_arg(Path::new("/st:ate\\x/0"), Path::new("/a\\b"), true),
            "--bind-ro=/st\\:ate\\\\x/0:/a\\\\b"
        );
    }
}
