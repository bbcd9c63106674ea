//! Keeps libtorch_cuda.so linked and records an rpath to the libtorch lib folder.
//!
//! The linker drops `libtorch_cuda.so` when nothing references it directly (`--as-needed`), and then
//! libtorch reports CUDA as unavailable on GPU machines. `--no-as-needed` before `-ltorch_cuda` keeps it.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    // torch-sys publishes the folder it linked against (its `links = "tch"` metadata).
    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("LIBTORCH").map(|p| PathBuf::from(p).join("lib")))
        .expect("libtorch lib folder unknown: set LIBTORCH (the Makefile does)");
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}
