//! The OCI state JSON on the hook's stdin (`State::parse`, `read_from`).
//! Any bytes: never a panic; an accepted state has a usable id and pid; a
//! refusal is an `invalid` error with a printable line. The annotation the
//! state carries is fed on to the annotation parser, as the hook does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_volume_hook::input::annotations::{parse_annotation, ANNOTATION_KEY};
use oci_volume_hook::error::Class;
use oci_volume_hook::input::state::{short_id, State};

fuzz_target!(|data: &[u8]| {
    let parsed = State::parse(data);
    // read_from is parse behind a size cap; the fuzzer's inputs are below it.
    assert_eq!(State::read_from(data), parsed);
    let s = match parsed {
        Ok(s) => s,
        Err(e) => {
            ovh_fuzz::check_error(&e, Class::Invalid, &String::from_utf8_lossy(data));
            return;
        }
    };
    assert!(!s.id.is_empty() && s.id.len() <= 1024);
    assert!(!s.id.chars().any(char::is_control), "id {:?}", s.id);
    let short = short_id(&s.id);
    assert!(s.id.starts_with(short) && short.chars().count() <= 12);
    assert!(short.chars().count() == s.id.chars().count().min(12));
    if let Some(pid) = s.live_pid() {
        assert!(pid > 0 && Some(i64::from(pid)) == s.pid);
    }
    if let Some(value) = s.annotations.get(ANNOTATION_KEY) {
        match parse_annotation(value) {
            Ok(v) => ovh_fuzz::check_requests(value, &v),
            Err(e) => ovh_fuzz::check_error(&e, Class::Invalid, value),
        }
    }
});
