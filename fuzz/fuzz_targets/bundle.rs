//! The bundle's config.json (`Spec::parse`) and the `Bundle` accessors the
//! hook calls on it. Any bytes: never a panic; accepted only if it is a JSON
//! object; the rootfs is absolute; id mapping is exact and never overflows.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use oci_volume_hook::input::bundle::{map_id, Bundle, Spec};
use oci_volume_hook::error::Class;

fuzz_target!(|data: &[u8]| {
    let spec = match Spec::parse(data) {
        Ok(s) => s,
        Err(e) => {
            ovh_fuzz::check_error(&e, Class::Invalid, &String::from_utf8_lossy(data));
            return;
        }
    };
    assert_eq!(
        data.iter().find(|b| !b.is_ascii_whitespace()),
        Some(&b'{'),
        "a non-object accepted"
    );
    let b = Bundle {
        dir: PathBuf::from("/run/containers/bundle"),
        spec,
    };
    assert!(b.root_path().is_absolute(), "root_path {:?}", b.root_path());
    assert!(b.mount_label().is_none_or(|l| !l.is_empty()));
    assert!(b.process_label().is_none_or(|l| !l.is_empty()));
    let _ = b.has_user_namespace();
    let (uid, gid) = b.user();
    match b.host_owner() {
        Ok((hu, hg)) => {
            assert_eq!(Some(hu), map_id(b.uid_mappings(), uid));
            assert_eq!(Some(hg), map_id(b.gid_mappings(), gid));
            if b.uid_mappings().is_empty() {
                assert_eq!(hu, uid);
            }
            if b.gid_mappings().is_empty() {
                assert_eq!(hg, gid);
            }
        }
        Err(e) => ovh_fuzz::check_error(&e, Class::Invalid, "host_owner"),
    }
    // map_id against a reference computed in u64.
    for (maps, id) in [(b.uid_mappings(), uid), (b.gid_mappings(), gid)] {
        let want = if maps.is_empty() {
            Some(id)
        } else {
            maps.iter().find_map(|m| {
                let (c, h, n) = (
                    u64::from(m.container_id()),
                    u64::from(m.host_id()),
                    u64::from(m.size()),
                );
                let id = u64::from(id);
                // In range but past u32::MAX on the host: not this mapping.
                (id >= c && id - c < n)
                    .then(|| u32::try_from(h + (id - c)).ok())
                    .flatten()
            })
        };
        assert_eq!(map_id(maps, id), want, "map_id({id}) over {maps:?}");
    }
});
