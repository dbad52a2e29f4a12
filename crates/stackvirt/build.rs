//! Compiles bpf/stackvirt.bpf.c into $OUT_DIR/stackvirt.bpf.o with clang
//! (`-target bpf`), for `aya` to load: see src/bpf.rs.
//!
//! The compiler is `$STACKVIRT_CLANG`, else `clang-19` (the project's LLVM,
//! see the top Makefile).  The programs are C, not Rust: Rust BPF needs a
//! `bpf-linker` built against the same LLVM as rustc, which no package here
//! provides (see docs/stackvirt.md).

use std::{env, path::PathBuf, process::Command};

fn main() {
    let src = "bpf/stackvirt.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    println!("cargo:rerun-if-env-changed=STACKVIRT_CLANG");
    let clang = env::var("STACKVIRT_CLANG").unwrap_or_else(|_| "clang-19".into());
    let out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("stackvirt.bpf.o");
    // The uapi headers' <asm/...> live under the host's multiarch directory.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-Wall", "-Werror", "-target", "bpf"])
        .arg(format!("-I/usr/include/{arch}-linux-gnu"))
        .args(["-c", src, "-o"])
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {clang} (scripts/setup installs clang-19): {e}"));
    assert!(status.success(), "{clang} failed to compile {src}");
}
