//! Windows resources for Graver's executables: the icon, the version information
//! Explorer shows, and the application manifest as `RT_MANIFEST` 1.
//!
//! Both build scripts (`crates/app/build.rs`, `crates/writer/build.rs`) include
//! this one file with `#[path = "../../packaging/windows/resources.rs"] mod resources;`
//! and call [`embed`], so the logic exists once without a build-dependency crate.
//!
//! [`embed`] writes a `.rc` file into `OUT_DIR`, compiles it with the target's
//! resource compiler and links the result into the package's binaries only
//! (`cargo:rustc-link-arg-bins`): the library, its unit tests, integration tests
//! and doc tests are untouched. A binary's own unit-test harness counts as a binary
//! and gets them too, which is harmless for `graver` (asInvoker) and why the
//! `graver-writer` binary has no test harness (`test = false`). The compilers:
//!
//! - `*-windows-gnu`: `windres` — `$WINDRES` if set, else `<arch>-w64-mingw32-windres`
//!   (Debian's binutils-mingw-w64), else `windres` (MSYS2). None is an error.
//! - `*-windows-msvc`: on a Windows host `rc.exe` from `PATH` or the Windows 10/11 SDK,
//!   else `llvm-rc` from `PATH`; the `.res` goes to the linker as it is (link.exe and
//!   lld-link both take `.res` inputs). On another host without `llvm-rc` nothing is
//!   embedded: that host can only type-check an msvc target (`cargo clippy --target
//!   x86_64-pc-windows-msvc` in CI), never link it, so there is no executable to miss
//!   the resources. A Windows host without `rc.exe` is an error.
//! - Every other target: nothing happens.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Who makes Graver, for `CompanyName` and `LegalCopyright`.
const AUTHORS: &str = "The Graver developers";

/// `RT_MANIFEST`: the resource type Windows reads an executable's manifest from.
const RT_MANIFEST: u16 = 24;

/// One executable's resources.
pub struct Executable<'a> {
    /// The binary's name without `.exe` (`graver`): `InternalName`, and
    /// `OriginalFilename` with `.exe` added.
    pub name: &'a str,
    /// `FileDescription`: what Explorer, Task Manager and, once the program is
    /// signed, the UAC prompt call it.
    pub description: &'a str,
    /// The application manifest, relative to the workspace root
    /// (`packaging/windows/graver.exe.manifest`).
    pub manifest: &'a str,
    /// When set, replaces the manifest's `requestedExecutionLevel` (`asInvoker`).
    pub execution_level: Option<&'a str>,
}

/// Compiles `exe`'s resources and links them into the binaries of the package whose
/// build script calls this, when the target is Windows; does nothing otherwise.
/// Also tells Cargo which files and variables to watch.
pub fn embed(exe: &Executable<'_>) -> Result<(), String> {
    let root = workspace_root()?;
    let manifest = root.join(exe.manifest);
    let icon = root.join("assets/icons/graver.ico");
    for watched in [&manifest, &icon, &root.join("packaging/windows/resources.rs")] {
        println!("cargo:rerun-if-changed={}", watched.display());
    }
    println!("cargo:rerun-if-env-changed=WINDRES");

    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return Ok(());
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").ok_or("OUT_DIR is not set; run this from a build script")?);
    let compiler = match env::var("CARGO_CFG_TARGET_ENV").as_deref() {
        Ok("gnu") => Compiler::Windres(windres()?),
        Ok("msvc") => match rc_for_msvc()? {
            Some(compiler) => compiler,
            // No resource compiler on a non-Windows host: only type-checking happens
            // here (see the module documentation), so there is nothing to embed into.
            None => return Ok(()),
        },
        _ => return Ok(()),
    };

    let text = std::fs::read_to_string(&manifest).map_err(|e| format!("cannot read {}: {e}", manifest.display()))?;
    let text = match exe.execution_level {
        Some(level) => with_execution_level(&text, level)
            .ok_or_else(|| format!("{} has no requestedExecutionLevel level to replace", manifest.display()))?,
        None => text,
    };
    let manifest_copy = out_dir.join(format!("{}.exe.manifest", exe.name));
    write(&manifest_copy, &text)?;
    let script = out_dir.join(format!("{}.rc", exe.name));
    write(&script, &resource_script(exe, &icon, &manifest_copy)?)?;

    let object = compiler.compile(&script)?;
    println!("cargo:rustc-link-arg-bins={}", object.display());
    if let Compiler::Rc(_) = compiler {
        // link.exe would otherwise add a manifest of its own as RT_MANIFEST 1 and
        // fail on the duplicate (CVT1100), or write a stray side-by-side file.
        println!("cargo:rustc-link-arg-bins=/MANIFEST:NO");
    }
    Ok(())
}

/// A resource compiler and the kind of output it makes.
enum Compiler {
    /// GNU windres: `.rc` to a COFF object.
    Windres(PathBuf),
    /// rc.exe or llvm-rc: `.rc` to a `.res` file.
    Rc(PathBuf),
}

impl Compiler {
    /// Compiles `script`; returns the file to link, beside it: `.o` (windres) or `.res`.
    fn compile(&self, script: &Path) -> Result<PathBuf, String> {
        let (mut command, output) = match self {
            Self::Windres(program) => {
                let output = script.with_extension("o");
                let mut command = Command::new(program);
                // The script is UTF-8 (code page 65001); windres converts its strings to UTF-16.
                command
                    .args([
                        "--codepage=65001",
                        "--input-format=rc",
                        "--output-format=coff",
                        "--input",
                    ])
                    .arg(script)
                    .arg("--output")
                    .arg(&output);
                (command, output)
            }
            Self::Rc(program) => {
                let output = script.with_extension("res");
                let dir = script
                    .parent()
                    .ok_or_else(|| format!("{} has no parent folder", script.display()))?;
                // llvm-rc would look for clang to preprocess; the script has no directives.
                let first = if is_llvm_rc(program) {
                    "/no-preprocess"
                } else {
                    "/nologo"
                };
                // llvm-rc on a Unix host reads any argument that starts with '/' as an
                // option: an absolute input such as `/check/...` became `/c heck/...` (the
                // code page option) and left no input file. So rc runs in the script's
                // folder and gets bare file names. The script is UTF-8 (code page 65001),
                // written the way rc.exe documents it.
                let mut command = Command::new(program);
                command
                    .current_dir(dir)
                    .args([first, "/c65001", "/fo"])
                    .arg(file_name(&output)?)
                    .arg(file_name(script)?);
                (command, output)
            }
        };
        let program = Path::new(command.get_program()).display().to_string();
        let result = command.output().map_err(|e| format!("cannot run {program}: {e}"))?;
        if !result.status.success() {
            return Err(format!(
                "{program} failed ({}) on {}:\n{}{}",
                result.status,
                script.display(),
                String::from_utf8_lossy(&result.stdout),
                String::from_utf8_lossy(&result.stderr)
            ));
        }
        Ok(output)
    }
}

/// The last component of `path`, for tools that must not see a leading '/'.
fn file_name(path: &Path) -> Result<std::ffi::OsString, String> {
    path.file_name()
        .map(std::ffi::OsStr::to_os_string)
        .ok_or_else(|| format!("{} has no file name", path.display()))
}

/// The workspace root: two levels above the crate calling this (`crates/<name>`).
fn workspace_root() -> Result<PathBuf, String> {
    let crate_dir = env::var_os("CARGO_MANIFEST_DIR").ok_or("CARGO_MANIFEST_DIR is not set")?;
    let crate_dir = PathBuf::from(crate_dir);
    crate_dir
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not two levels below the workspace root", crate_dir.display()))
}

/// The windres for this target: `$WINDRES`, else the mingw-w64 one for the
/// architecture, else plain `windres`.
fn windres() -> Result<PathBuf, String> {
    if let Some(program) = env::var_os("WINDRES").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(program));
    }
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default().as_str() {
        "x86" => "i686".to_owned(),
        other => other.to_owned(),
    };
    let prefixed = format!("{arch}-w64-mingw32-windres");
    find_on_path(&prefixed)
        .or_else(|| find_on_path("windres"))
        .ok_or_else(|| {
            format!(
                "{prefixed} was not found: it embeds the icon, version and manifest into the \
                 Windows executables. Install it (Debian/Ubuntu: apt-get install binutils-mingw-w64; \
                 MSYS2: pacman -S mingw-w64-x86_64-binutils) or set WINDRES to a windres for this target"
            )
        })
}

/// rc.exe (Windows host) or llvm-rc; `None` when neither exists on a non-Windows host.
fn rc_for_msvc() -> Result<Option<Compiler>, String> {
    if cfg!(windows) {
        let rc = find_on_path("rc")
            .or_else(rc_in_windows_sdk)
            .or_else(|| find_on_path("llvm-rc"));
        return rc.map(|rc| Some(Compiler::Rc(rc))).ok_or_else(|| {
            "rc.exe was not found on PATH nor in the Windows 10/11 SDK: install the SDK \
             (Visual Studio Installer, \"Windows SDK\") or build from a Developer Command Prompt"
                .to_owned()
        });
    }
    Ok(find_on_path("llvm-rc").map(Compiler::Rc))
}

/// The newest `rc.exe` of the Windows 10/11 SDK for this host's architecture.
fn rc_in_windows_sdk() -> Option<PathBuf> {
    let host = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else if cfg!(target_arch = "x86") {
        "x86"
    } else {
        "x64"
    };
    let program_files = env::var_os("ProgramFiles(x86)").or_else(|| env::var_os("ProgramFiles"))?;
    let bin = Path::new(&program_files).join("Windows Kits").join("10").join("bin");
    let mut found: Vec<PathBuf> = std::fs::read_dir(bin)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join(host).join("rc.exe"))
        .filter(|rc| rc.is_file())
        .collect();
    // Version directories (10.0.22621.0) sort well enough as text within one major version.
    found.sort();
    found.pop()
}

fn is_llvm_rc(program: &Path) -> bool {
    program
        .file_stem()
        .is_some_and(|stem| stem.to_string_lossy().to_ascii_lowercase().starts_with("llvm-rc"))
}

/// `name` (plus `.exe` on Windows) in a directory of `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let file = if cfg!(windows) {
        format!("{name}.exe")
    } else {
        name.to_owned()
    };
    env::split_paths(&env::var_os("PATH")?)
        .map(|dir| dir.join(&file))
        .find(|candidate| candidate.is_file())
}

/// `manifest` with the `level` attribute of its `requestedExecutionLevel` set to `level`.
fn with_execution_level(manifest: &str, level: &str) -> Option<String> {
    let element = manifest.find("<requestedExecutionLevel")?;
    let value = element + manifest[element..].find("level=\"")? + "level=\"".len();
    let end = value + manifest[value..].find('"')?;
    Some(format!("{}{level}{}", &manifest[..value], &manifest[end..]))
}

/// The `.rc` script: icon group 1, `RT_MANIFEST` 1 and `VERSIONINFO` 1, in UTF-8,
/// without preprocessor directives (numbers stand for the `winver.h` names).
fn resource_script(exe: &Executable<'_>, icon: &Path, manifest: &Path) -> Result<String, String> {
    let number = |name: &str| -> Result<u16, String> {
        let value = env::var(name).map_err(|_| format!("{name} is not set"))?;
        value
            .parse()
            .map_err(|_| format!("{name}={value} does not fit a Windows version field"))
    };
    let (major, minor, patch) = (
        number("CARGO_PKG_VERSION_MAJOR")?,
        number("CARGO_PKG_VERSION_MINOR")?,
        number("CARGO_PKG_VERSION_PATCH")?,
    );
    let version = env::var("CARGO_PKG_VERSION").map_err(|_| "CARGO_PKG_VERSION is not set")?;
    let license = env::var("CARGO_PKG_LICENSE").unwrap_or_default();
    // VS_FF_DEBUG (1) for builds without optimizations, VS_FF_PRERELEASE (2) for 1.0.0-beta.1 and the like.
    let mut flags = 0u32;
    if env::var("PROFILE").as_deref() != Ok("release") {
        flags |= 0x1;
    }
    if !env::var("CARGO_PKG_VERSION_PRE").unwrap_or_default().is_empty() {
        flags |= 0x2;
    }
    let copyright = if license.is_empty() {
        format!("Copyright © {AUTHORS}")
    } else {
        format!("Copyright © {AUTHORS}; licensed {license}")
    };
    let strings = [
        ("CompanyName", AUTHORS.to_owned()),
        ("FileDescription", exe.description.to_owned()),
        ("FileVersion", version.clone()),
        ("InternalName", exe.name.to_owned()),
        ("LegalCopyright", copyright),
        ("OriginalFilename", format!("{}.exe", exe.name)),
        ("ProductName", "Graver".to_owned()),
        ("ProductVersion", version),
    ];

    let mut rc = String::new();
    let mut line = |text: &str| {
        rc.push_str(text);
        rc.push('\n');
    };
    line("// Generated by packaging/windows/resources.rs; edit that file, not this one.");
    line(&format!("1 ICON {}", quoted_path(icon)));
    line(&format!("1 {RT_MANIFEST} {}", quoted_path(manifest)));
    line("1 VERSIONINFO");
    line(&format!("FILEVERSION {major},{minor},{patch},0"));
    line(&format!("PRODUCTVERSION {major},{minor},{patch},0"));
    line("FILEFLAGSMASK 0x3F");
    line(&format!("FILEFLAGS {flags:#x}"));
    // VOS_NT_WINDOWS32, VFT_APP.
    line("FILEOS 0x40004");
    line("FILETYPE 0x1");
    line("FILESUBTYPE 0x0");
    line("BEGIN");
    line("  BLOCK \"StringFileInfo\"");
    line("  BEGIN");
    // U.S. English (0x0409) in Unicode (1200 = 0x04B0).
    line("    BLOCK \"040904B0\"");
    line("    BEGIN");
    for (key, value) in &strings {
        line(&format!("      VALUE \"{key}\", {}", quoted(value)));
    }
    line("    END");
    line("  END");
    line("  BLOCK \"VarFileInfo\"");
    line("  BEGIN");
    line("    VALUE \"Translation\", 0x409, 1200");
    line("  END");
    line("END");
    Ok(rc)
}

/// `text` as an `.rc` string literal.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\"\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A path as an `.rc` file name: forward slashes, which every resource compiler
/// takes, so no backslash is read as an escape.
fn quoted_path(path: &Path) -> String {
    quoted(&path.to_string_lossy().replace('\\', "/"))
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}
