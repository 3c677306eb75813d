//! The `oci-volume-hook/volumes` annotation: the user's input, fully
//! untrusted. Any byte string: never a panic; an accepted value obeys the
//! grammar's guarantees (see `ovh_fuzz::check_requests`); a refusal is an
//! `invalid` error with a printable line; `error::quote` stays printable and
//! bounded on the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_volume_hook::input::annotations::{parse_annotation, parse_spec};
use oci_volume_hook::error::Class;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    ovh_fuzz::check_quote(value);
    match parse_annotation(value) {
        Ok(v) => ovh_fuzz::check_requests(value, &v),
        Err(e) => ovh_fuzz::check_error(&e, Class::Invalid, value),
    }
    // The spec parser alone, on the raw text (no split on ';', no trim, no
    // control-character filter in front of it).
    match parse_spec(value) {
        Ok(r) => {
            if r.spec.trim() == r.spec {
                ovh_fuzz::check_request(&r);
            }
        }
        Err(e) => assert_eq!(e.class, Class::Invalid, "{e:?}"),
    }
});
