//! `volumes import`'s tar extraction (`apply::archive::import`): any bytes
//! as the archive, extracted into a fresh temporary directory. Never a
//! panic; nothing is made outside that directory (checked on a sentinel
//! beside it); a refusal is a refusal, not a crash.
#![no_main]

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use oci_volume_hook::apply::archive::{import, ImportOptions};

static N: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let base = std::env::temp_dir().join(format!("ovh-fuzz-tar-{}", std::process::id()));
    let dir = base.join(format!("v{}", N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::create_dir_all(&dir);
    let sentinel = base.join("outside");
    let _ = std::fs::write(&sentinel, b"untouched");
    let root: OwnedFd = std::fs::File::open(&dir).expect("open the temp dir").into();
    for preserve_special in [false, true] {
        let _ = import(&root, data, ImportOptions { preserve_special });
        // Whatever the archive said, the directory beside stays as it was.
        let listing: Vec<_> = std::fs::read_dir(&base)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .filter(|n| n.to_string_lossy() != dir.file_name().unwrap().to_string_lossy())
            .collect();
        assert_eq!(listing, vec![std::ffi::OsString::from("outside")], "made outside");
        assert_eq!(std::fs::read(&sentinel).unwrap(), b"untouched");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::create_dir_all(&dir);
    }
    drop(root);
    let _ = std::fs::remove_dir_all(&dir);
});
