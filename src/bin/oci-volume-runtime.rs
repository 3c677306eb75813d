//! `oci-volume-runtime [--config FILE] [--runtime PATH] RUNTIME-ARGS...`:
//! adds oci-volume-hook's hooks to a bundle that asks for volumes, then
//! execs the real runtime (see `oci_volume_hook::wrapper`).

use std::process::ExitCode;

fn main() -> ExitCode {
    oci_volume_hook::wrapper::main(std::env::args_os().skip(1).collect())
}
