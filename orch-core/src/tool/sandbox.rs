//! Confines file paths to an agent's working directory.
//!
//! [`resolve`] is the single entry point used by the file tools (`Read`, `Write`, `Edit`, `Glob`,
//! `Grep`). A path may be relative to the working directory or absolute. It is allowed only if, after
//! resolving `..` lexically and then following every symbolic link along it (file or directory, at any
//! depth, including links inside link targets), it stays inside the canonical working directory.
//!
//! Paths that do not exist yet (a file `Write` is about to create, possibly under directories that do
//! not exist either) are checked the same way: the existing part is resolved on disk, the missing tail
//! is appended as is. A dangling symbolic link is followed to where it points, so writing through it
//! cannot create a file outside the working directory.
//!
//! The check gives the tools their messages ("resolves to …, which is outside …"); the file
//! operations themselves go through [`super::confined::ConfinedDir`], which opens every path relative
//! to a handle on the working directory, so a directory swapped for a symbolic link between the check
//! and the operation cannot lead out either. (`Bash` is confined separately, by Landlock.)

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use super::ToolError;

/// Most symbolic links followed while resolving one path (like Linux's `ELOOP` limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// Why a path was not resolved to a place inside the working directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// The path was empty.
    #[error("empty path: a file path is required (working directory {})", working_dir.display())]
    EmptyPath {
        /// The agent's working directory, as given.
        working_dir: PathBuf,
    },
    /// The path contains a NUL byte, which no file system accepts.
    #[error("invalid path {path:?}: contains a NUL byte")]
    InvalidPath {
        /// The path, as given.
        path: String,
    },
    /// The path (after `..` and symbolic links) is outside the working directory.
    #[error(
        "path {path:?} resolves to {}, which is outside the agent's working directory {}",
        resolved.display(),
        working_dir.display()
    )]
    OutsideWorkingDir {
        /// The path, as given.
        path: String,
        /// Where it actually leads.
        resolved: PathBuf,
        /// The canonical working directory.
        working_dir: PathBuf,
    },
    /// The working directory itself cannot be resolved (missing, unreadable, …).
    #[error("the agent's working directory {} cannot be resolved: {message}", working_dir.display())]
    WorkingDir {
        /// The working directory, as given.
        working_dir: PathBuf,
        /// The underlying error.
        message: String,
    },
    /// Resolving the path failed (permission denied, a symbolic link loop, …).
    #[error("cannot resolve path {path:?} in the agent's working directory {}: {message}", working_dir.display())]
    Unresolvable {
        /// The path, as given.
        path: String,
        /// The canonical working directory.
        working_dir: PathBuf,
        /// The underlying error.
        message: String,
    },
}

impl SandboxError {
    /// Always [`ErrorKind::Usage`](crate::ErrorKind::Usage): the path (or the working directory it is
    /// resolved in) is the caller's to fix; the sandbox refuses, it does not fail.
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::Usage
    }
}

impl From<SandboxError> for ToolError {
    /// A path outside the working directory is [`ToolError::Refused`]; an empty or malformed path is
    /// [`ToolError::InvalidInput`]; anything else is [`ToolError::Failed`].
    fn from(e: SandboxError) -> Self {
        match e {
            SandboxError::OutsideWorkingDir { .. } => ToolError::Refused(e.to_string()),
            SandboxError::EmptyPath { .. } | SandboxError::InvalidPath { .. } => ToolError::InvalidInput(e.to_string()),
            SandboxError::WorkingDir { .. } | SandboxError::Unresolvable { .. } => ToolError::Failed(e.to_string()),
        }
    }
}

/// The canonical form of `working_dir` (absolute, symbolic links resolved). All checks compare
/// against it, and tools show paths relative to it.
pub fn canonical_working_dir(working_dir: &Path) -> Result<PathBuf, SandboxError> {
    let root = std::fs::canonicalize(working_dir)
        .map_err(|e| SandboxError::WorkingDir { working_dir: working_dir.to_path_buf(), message: e.to_string() })?;
    if !root.is_dir() {
        return Err(SandboxError::WorkingDir {
            working_dir: working_dir.to_path_buf(),
            message: "not a directory".to_string(),
        });
    }
    Ok(root)
}

/// Resolves `path` (relative to `working_dir`, or absolute) to a path inside `working_dir`.
///
/// Returns the fully resolved path: absolute, under the canonical working directory, with `.`/`..`
/// removed and every existing symbolic link followed; a missing tail (a file about to be created) is
/// kept as written. Tools should operate on the returned path, not on `path`.
///
/// Refuses ([`SandboxError::OutsideWorkingDir`]) `../x` escapes, absolute paths elsewhere, and
/// symbolic links anywhere along the path that lead outside. Symbolic links that stay inside are fine.
/// The working directory itself is allowed (`"."`).
pub fn resolve(working_dir: &Path, path: &str) -> Result<PathBuf, SandboxError> {
    if path.is_empty() {
        return Err(SandboxError::EmptyPath { working_dir: working_dir.to_path_buf() });
    }
    if path.contains('\0') {
        return Err(SandboxError::InvalidPath { path: path.to_string() });
    }
    let root = canonical_working_dir(working_dir)?;
    let lexical = normalize_lexically(&root.join(path));
    let resolved = follow_links(&lexical).map_err(|e| SandboxError::Unresolvable {
        path: path.to_string(),
        working_dir: root.clone(),
        message: e.to_string(),
    })?;
    if resolved.starts_with(&root) {
        Ok(resolved)
    } else {
        Err(SandboxError::OutsideWorkingDir { path: path.to_string(), resolved, working_dir: root })
    }
}

/// Same as [`resolve`]; named for call sites that are about to create `path`. A file that does not
/// exist yet is checked through its nearest existing ancestor (and any dangling link is followed).
pub fn resolve_for_write(working_dir: &Path, path: &str) -> Result<PathBuf, SandboxError> {
    resolve(working_dir, path)
}

/// Removes `.` and applies `..` textually (`..` at the root stays at the root).
fn normalize_lexically(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Walks `path` (absolute) component by component, replacing each symbolic link by its target, like
/// `realpath`, but tolerating components that do not exist (they are appended unchanged).
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    // Components still to walk, last one first (so `pop` yields the next).
    let mut pending: Vec<OsString> = path.components().rev().map(|c| c.as_os_str().to_os_string()).collect();
    let mut out = PathBuf::new();
    let mut hops = 0usize;
    while let Some(part) = pending.pop() {
        let Some(component) = Path::new(&part).components().next() else {
            continue;
        };
        match component {
            Component::Prefix(_) => out = PathBuf::from(&part),
            Component::RootDir => {
                // Keep a Windows drive prefix, drop everything else.
                out = out.components().take_while(|c| matches!(c, Component::Prefix(_))).collect();
                out.push(&part);
            }
            Component::CurDir => {}
            Component::ParentDir => {
                // `out` has no links left in it, so its textual parent is its physical parent.
                out.pop();
            }
            Component::Normal(_) => {
                let candidate = out.join(&part);
                match std::fs::symlink_metadata(&candidate) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        hops += 1;
                        if hops > MAX_SYMLINK_HOPS {
                            return Err(io::Error::other(format!(
                                "too many levels of symbolic links at {}",
                                candidate.display()
                            )));
                        }
                        let target = std::fs::read_link(&candidate)?;
                        // A relative target is relative to the link's directory, which `out` is;
                        // an absolute one starts with a root component that resets `out`.
                        pending.extend(target.components().rev().map(|c| c.as_os_str().to_os_string()));
                    }
                    Ok(_) => out = candidate,
                    Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                        out = candidate;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_normalization() {
        assert_eq!(normalize_lexically(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(normalize_lexically(Path::new("/../../etc")), PathBuf::from("/etc"));
    }
}
