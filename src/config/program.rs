//! Program resolution: which file `command[0]` names.
//!
//! One function decides it for service commands, health commands, notification
//! commands and whitelist entries alike, so the whitelist compares like with like:
//! an absolute path is taken as is, a path containing `/` is relative to the
//! service's working directory, a bare name is looked up in `PATH`. Paths are
//! cleaned lexically (`.` and `..` removed) so `./bin/x` and `bin/x` name the same
//! program for the whitelist's globs.

use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

/// The bare name that stands for this very binary when it is not installed on `PATH`
/// (so the shipped demo config works from a fresh clone).
pub const SELF_PROGRAM: &str = "ai-dawg-manager";

/// Resolve `written` (an argv[0]) to an absolute path.
///
/// - absolute → as is (cleaned);
/// - contains `/` → relative to `cwd` (which should be absolute);
/// - bare name → the first executable file of that name in a `PATH` directory
///   (relative and empty `PATH` entries are skipped); the bare name
///   `ai-dawg-manager`, when not on `PATH`, is `std::env::current_exe()`.
///
/// `None` when a bare name is found nowhere (or `written` is empty). Paths
/// containing `/` are not checked for existence: that is the spawn's business.
pub fn resolve_program(written: &str, cwd: &Path) -> Option<PathBuf> {
    resolve_program_in(written, cwd, std::env::var_os("PATH").as_deref())
}

/// [`resolve_program`] with an explicit `PATH` value (tests use it to avoid
/// touching the process environment).
pub(crate) fn resolve_program_in(
    written: &str,
    cwd: &Path,
    path_var: Option<&OsStr>,
) -> Option<PathBuf> {
    if written.is_empty() || written.contains('\0') {
        return None;
    }
    if written.contains('/') {
        return Some(clean(&cwd.join(written)));
    }
    if let Some(found) = search_path(written, path_var) {
        return Some(found);
    }
    if written == SELF_PROGRAM {
        return std::env::current_exe().ok();
    }
    None
}

fn search_path(name: &str, path_var: Option<&OsStr>) -> Option<PathBuf> {
    let path_var = path_var?;
    std::env::split_paths(path_var)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable_file(candidate))
        .map(|found| clean(&found))
}

fn is_executable_file(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(meta) => meta.is_file() && meta.permissions().mode() & 0o111 != 0,
        Err(_) => false,
    }
}

/// Remove `.` components and fold `..` lexically (never above the root).
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`
                Some(Component::RootDir | Component::Prefix(_)) => {}
                None | Some(Component::ParentDir | Component::CurDir) => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write_exe(path: &Path, mode: u32) {
        fs::write(path, "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn absolute_and_relative_paths() {
        let cwd = Path::new("/srv/app");
        assert_eq!(
            resolve_program("/usr/bin/env", cwd),
            Some(PathBuf::from("/usr/bin/env"))
        );
        assert_eq!(
            resolve_program("./bin/server", cwd),
            Some(PathBuf::from("/srv/app/bin/server"))
        );
        assert_eq!(
            resolve_program("../other/run", cwd),
            Some(PathBuf::from("/srv/other/run"))
        );
        assert_eq!(resolve_program("", cwd), None);
    }

    #[test]
    fn bare_names_take_the_first_executable_on_path() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write_exe(&a.path().join("tool"), 0o644); // not executable: skipped
        write_exe(&b.path().join("tool"), 0o755);
        write_exe(&a.path().join("other"), 0o755);
        fs::create_dir(b.path().join("adir")).unwrap(); // a directory is no program
        let path_var = std::env::join_paths([
            "relative/dir",
            "",
            a.path().to_str().unwrap(),
            b.path().to_str().unwrap(),
        ])
        .unwrap();
        let cwd = Path::new("/");
        assert_eq!(
            resolve_program_in("tool", cwd, Some(&path_var)),
            Some(b.path().join("tool"))
        );
        assert_eq!(
            resolve_program_in("other", cwd, Some(&path_var)),
            Some(a.path().join("other"))
        );
        assert_eq!(resolve_program_in("adir", cwd, Some(&path_var)), None);
        assert_eq!(resolve_program_in("missing", cwd, Some(&path_var)), None);
        assert_eq!(resolve_program_in("tool", cwd, None), None);
    }

    #[test]
    fn self_program_falls_back_to_current_exe() {
        let empty = tempfile::tempdir().unwrap();
        let path_var = empty.path().as_os_str().to_owned();
        let exe = std::env::current_exe().unwrap();
        assert_eq!(
            resolve_program_in(SELF_PROGRAM, Path::new("/"), Some(&path_var)),
            Some(exe)
        );
    }

    #[test]
    fn clean_folds_dots() {
        assert_eq!(clean(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(clean(Path::new("/../x")), PathBuf::from("/x"));
        assert_eq!(clean(Path::new("a/../../x")), PathBuf::from("../x"));
        assert_eq!(clean(Path::new("./")), PathBuf::from("."));
    }
}
