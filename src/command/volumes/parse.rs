//! The pure parsing of the lifecycle commands' arguments: `--owner`,
//! `--mode`, `--label`, `--filter until=DURATION` and the prune filter
//! itself. No file is read here; unit tests need nothing.

use crate::input::selinux::Context;

/// `--owner UID:GID` (numeric: the hook never reads the host's passwd).
pub fn owner(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("--owner {s:?}: expected UID:GID, two numbers such as 1000:1000");
    let (u, g) = s.split_once(':').ok_or_else(bad)?;
    let num = |p: &str| -> Result<u32, String> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        // u32::MAX is (uid_t)-1, "no change" to chown: never an owner.
        match p.parse::<u32>() {
            Ok(n) if n != u32::MAX => Ok(n),
            _ => Err(bad()),
        }
    };
    Ok((num(u)?, num(g)?))
}

/// `--mode MODE`: octal permission bits, at most 07777 (`755`, `0750`,
/// `2775`).
pub fn mode(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    if digits.is_empty() || digits.len() > 5 || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b))
    {
        return Err(format!(
            "--mode {s:?}: expected octal permission bits such as 755 or 0750"
        ));
    }
    let m = u32::from_str_radix(digits, 8).map_err(|e| format!("--mode {s:?}: {e}"))?;
    if m > 0o7777 {
        return Err(format!(
            "--mode {s:?}: more than the permission bits (07777)"
        ));
    }
    Ok(m)
}

/// What `--label` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Label {
    /// `z`: the shared container file context (level s0), as option z.
    Shared,
    /// `Z`: private to one container (refused by `create`: there is no
    /// container yet; it is given at the container's start).
    Private,
    /// An explicit SELinux context.
    Context(String),
}

pub fn label(s: &str) -> Result<Label, String> {
    match s {
        "z" => Ok(Label::Shared),
        "Z" => Ok(Label::Private),
        ctx => Context::parse(ctx)
            .map(|c| Label::Context(c.to_string()))
            .ok_or_else(|| {
                format!(
                    "--label {}: expected z, Z or an SELinux context user:role:type[:level]",
                    crate::error::quote(ctx)
                )
            }),
    }
}

/// A duration such as `30m`, `24h`, `7d`, `1w`, `90s` or plain seconds;
/// units may be combined (`1d12h`). In seconds.
pub fn duration(s: &str) -> Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "duration {}: {why} (use e.g. 30m, 24h, 7d, 1w, 1d12h)",
            crate::error::quote(s)
        )
    };
    if s.is_empty() {
        return Err(bad("empty"));
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| bad("too large"));
    }
    let mut total: u64 = 0;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => return Err(bad(&format!("unknown unit {c:?}"))),
        };
        if num.is_empty() {
            return Err(bad("a unit without a number"));
        }
        let n: u64 = num.parse().map_err(|_| bad("too large"))?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| bad("too large"))?;
        num.clear();
    }
    if !num.is_empty() {
        return Err(bad("a number without a unit at the end"));
    }
    Ok(total)
}

/// `--filter KEY=VALUE` of prune: only `until=DURATION` is known. Returns
/// the duration in seconds.
pub fn prune_filter(s: &str) -> Result<u64, String> {
    match s.split_once('=') {
        Some(("until", d)) => duration(d),
        Some((k, _)) => Err(format!(
            "--filter {}: unknown filter {}; only until=DURATION is supported",
            crate::error::quote(s),
            crate::error::quote(k)
        )),
        None => Err(format!(
            "--filter {}: expected until=DURATION",
            crate::error::quote(s)
        )),
    }
}

/// The prune filter: may a volume no live container holds, last used at
/// `last_used` (seconds since the epoch; `None`: never recorded), be pruned
/// `now` with `until` (seconds unused at least; `None`: no filter)? A
/// volume whose last use is unknown counts as unused since `fallback` (the
/// volume root's change time).
pub fn prune_due(last_used: Option<u64>, fallback: u64, now: u64, until: Option<u64>) -> bool {
    match until {
        None => true,
        Some(min) => now.saturating_sub(last_used.unwrap_or(fallback)) >= min,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners() {
        assert_eq!(owner("1000:1000"), Ok((1000, 1000)));
        assert_eq!(owner("0:5"), Ok((0, 5)));
        for bad in [
            "",
            "1000",
            ":1",
            "1:",
            "a:b",
            "-1:0",
            "1:2:3",
            "4294967295:0",
            "99999999999:0",
            " 1:1",
        ] {
            assert!(owner(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn modes() {
        assert_eq!(mode("755"), Ok(0o755));
        assert_eq!(mode("0750"), Ok(0o750));
        assert_eq!(mode("2775"), Ok(0o2775));
        assert_eq!(mode("0o700"), Ok(0o700));
        for bad in ["", "8", "rwx", "17777", "0777777", "-1", "7 5"] {
            assert!(mode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn labels() {
        assert_eq!(label("z"), Ok(Label::Shared));
        assert_eq!(label("Z"), Ok(Label::Private));
        assert_eq!(
            label("system_u:object_r:container_file_t:s0"),
            Ok(Label::Context(
                "system_u:object_r:container_file_t:s0".into()
            ))
        );
        for bad in ["", "zz", "a:b", "a b:c:d", "u:r:t:"] {
            assert!(label(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(duration("30m"), Ok(1800));
        assert_eq!(duration("24h"), Ok(86_400));
        assert_eq!(duration("7d"), Ok(604_800));
        assert_eq!(duration("1w"), Ok(604_800));
        assert_eq!(duration("90s"), Ok(90));
        assert_eq!(duration("3600"), Ok(3600));
        assert_eq!(duration("1d12h"), Ok(129_600));
        assert_eq!(duration("0m"), Ok(0));
        for bad in [
            "",
            "h",
            "5x",
            "1h30",
            "-1h",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(duration(bad).is_err(), "{bad:?}");
        }
        assert!(duration("18446744073709551615w").is_err(), "overflow");
    }

    #[test]
    fn filters() {
        assert_eq!(prune_filter("until=24h"), Ok(86_400));
        assert!(prune_filter("label=x").unwrap_err().contains("only until"));
        assert!(prune_filter("until").is_err());
        assert!(prune_filter("until=").is_err());
    }

    #[test]
    fn prune_filter_decides_on_the_last_use() {
        let now = 1_000_000;
        // No filter: every unheld volume.
        assert!(prune_due(Some(now), now, now, None));
        // Used an hour ago, filter 24h: kept; filter 30m: pruned.
        assert!(!prune_due(Some(now - 3600), 0, now, Some(86_400)));
        assert!(prune_due(Some(now - 3600), 0, now, Some(1800)));
        // Exactly the duration: pruned.
        assert!(prune_due(Some(now - 1800), 0, now, Some(1800)));
        // Never used: the root's change time decides.
        assert!(!prune_due(None, now - 60, now, Some(3600)));
        assert!(prune_due(None, now - 7200, now, Some(3600)));
        // A clock that went backwards never underflows.
        assert!(!prune_due(Some(now + 50), 0, now, Some(1)));
    }
}
