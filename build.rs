//! Keeps libtorch_cuda.so linked and records an rpath to the libtorch lib folder.
//!
//! The linker drops `libtorch_cuda.so` when nothing references it directly (`--as-needed`), and then
//! libtorch reports CUDA as unavailable on GPU machines. `--no-as-needed` before `-ltorch_cuda` keeps it.
//! It also compiles `src/native/`: the bf16 autocast switch and CUDA graphs, which tch does not expose.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    // torch-sys publishes the folder it linked against (its `links = "tch"` metadata).
    let lib_dir = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .map(PathBuf::from)
        .or_else(|_| std::env::var("LIBTORCH").map(|p| PathBuf::from(p).join("lib")))
        .expect("libtorch lib folder unknown: set LIBTORCH (the Makefile does)");
    compile_native(&lib_dir);
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    if lib_dir.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-lc10_cuda");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    }
}

fn compile_native(lib_dir: &Path) {
    for file in ["src/native/autocast.cpp", "src/native/cuda_graph.cpp"] {
        println!("cargo:rerun-if-changed={file}");
    }
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-env-changed=CUDA_HOME");
    let include = lib_dir
        .parent()
        .expect("the libtorch lib folder has a parent")
        .join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_string());
    let build = |cuda: Option<&[PathBuf]>| {
        let mut build = cc::Build::new();
        build
            .cpp(true)
            .file("src/native/autocast.cpp")
            .file("src/native/cuda_graph.cpp")
            .include(&include)
            .flag("-std=c++17")
            .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
            .warnings(false)
            .cargo_warnings(false);
        if let Some(dirs) = cuda {
            build.includes(dirs).define("ADARAT_CUDA_GRAPHS", None);
        }
        build
    };
    // CUDA graphs need the CUDA runtime headers; without them, or when they do not compile, the shim
    // is built as stubs that say so at run time.
    let cuda = cuda_includes(lib_dir).filter(|_| lib_dir.join("libtorch_cuda.so").exists());
    if let Some(dirs) = &cuda {
        if build(Some(dirs)).try_compile("adarat_native").is_ok() {
            return;
        }
    }
    println!("cargo:warning=built without CUDA graphs (no usable CUDA headers found)");
    build(None).compile("adarat_native");
}

/// Folders with the CUDA runtime headers: `cuda_runtime_api.h` from $CUDA_HOME/include, the torch
/// wheel's nvidia/cu*/include or /usr/local/cuda/include, plus a folder with the `crt/` headers that
/// the wheel's runtime package leaves to the compiler package (triton ships them).
fn cuda_includes(lib_dir: &Path) -> Option<Vec<PathBuf>> {
    let mut candidates = Vec::new();
    if let Ok(home) = std::env::var("CUDA_HOME") {
        candidates.push(PathBuf::from(home).join("include"));
    }
    // lib_dir is site-packages/torch/lib in the wheel (possibly reached through a symlink).
    let site_packages = lib_dir
        .canonicalize()
        .ok()
        .and_then(|lib| lib.parent()?.parent().map(Path::to_path_buf));
    if let Some(site) = &site_packages {
        if let Ok(entries) = std::fs::read_dir(site.join("nvidia")) {
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path().join("include")))
                .collect();
            found.sort();
            candidates.extend(found);
        }
        candidates.push(site.join("triton/backends/nvidia/include"));
    }
    candidates.push(PathBuf::from("/usr/local/cuda/include"));
    let runtime = candidates
        .iter()
        .find(|dir| dir.join("cuda_runtime_api.h").exists())?
        .clone();
    let crt = candidates
        .iter()
        .find(|dir| dir.join("crt/host_config.h").exists())?
        .clone();
    Some(if crt == runtime {
        vec![runtime]
    } else {
        vec![runtime, crt]
    })
}
