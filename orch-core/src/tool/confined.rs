//! Race-free file access below an agent's working directory.
//!
//! [`super::sandbox::resolve`] says where a path leads, for the tools' checks and messages. A check
//! alone leaves a window: between it and the file operation, another process could replace a
//! directory along the path with a symbolic link leading out. So every file operation of the file
//! tools goes through a [`ConfinedDir`]: a handle on the working directory opened once, through which
//! paths are opened relative to it (cap-std: `openat2(RESOLVE_BENEATH)` on Linux, a checked walk
//! component by component elsewhere). A path that leads outside at the moment of the operation fails
//! then, whatever the check saw before. Symbolic links that stay inside keep working.

use std::ffi::OsString;
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, Metadata};

use super::sandbox::{self, SandboxError};

/// Deepest directory level [`ConfinedDir::walk`] descends to (a guard against directories swapped
/// for links into their own ancestors while it walks).
const MAX_WALK_DEPTH: usize = 256;

/// A handle on an agent's working directory through which the file tools read and write.
#[derive(Debug)]
pub struct ConfinedDir {
    root: PathBuf,
    dir: Dir,
}

/// What a walked directory entry is (its own type: links are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (socket, fifo, device).
    Other,
}

/// An entry found by [`ConfinedDir::walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walked {
    /// Its path as walked: the walk's base joined with the names below it.
    pub path: PathBuf,
    /// Its type.
    pub kind: EntryKind,
}

impl ConfinedDir {
    /// Opens the working directory (its canonical form: tools show paths relative to it).
    pub fn open(working_dir: &Path) -> Result<Self, SandboxError> {
        let root = sandbox::canonical_working_dir(working_dir)?;
        let dir = Dir::open_ambient_dir(&root, ambient_authority())
            .map_err(|e| SandboxError::WorkingDir { working_dir: working_dir.to_path_buf(), message: e.to_string() })?;
        Ok(Self { root, dir })
    }

    /// The canonical working directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `path` leads, checked to be inside ([`sandbox::resolve`]).
    pub fn resolve(&self, path: &str) -> Result<PathBuf, SandboxError> {
        sandbox::resolve(&self.root, path)
    }

    /// `path` (absolute, under the root) relative to the root; `.` for the root itself.
    fn relative<'a>(&self, path: &'a Path) -> io::Result<&'a Path> {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => Ok(Path::new(".")),
            Ok(rel) => Ok(rel),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{} is outside the working directory {}", path.display(), self.root.display()),
            )),
        }
    }

    /// The metadata of the file `path` leads to (links followed, inside only).
    pub fn metadata(&self, path: &Path) -> io::Result<Metadata> {
        self.dir.metadata(self.relative(path)?)
    }

    /// The bytes of the file at `path`.
    pub fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.dir.read(self.relative(path)?)
    }

    /// Writes `contents` to `path` (created or truncated).
    pub fn write(&self, path: &Path, contents: &[u8]) -> io::Result<()> {
        self.dir.write(self.relative(path)?, contents)
    }

    /// Creates the directory `path` and its missing parents.
    pub fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let rel = self.relative(path)?;
        if rel == Path::new(".") {
            return Ok(());
        }
        self.dir.create_dir_all(rel)
    }

    /// Calls `visit` for each entry below the directory `base` (absolute, under the root), depth
    /// first, sorted by name within each directory, without following symbolic links and skipping
    /// `.git` and `.orch` directories (`.orch` holds orch's own database: reading its files outside
    /// SQLite drops the process's locks on them). Subdirectories are opened through their parent's
    /// handle, so a directory swapped for a link while walking cannot take the walk outside.
    /// Unreadable entries are skipped; `visit` stops the walk by returning `Break`.
    pub fn walk(&self, base: &Path, visit: &mut dyn FnMut(Walked) -> ControlFlow<()>) -> io::Result<()> {
        let dir = self.dir.open_dir(self.relative(base)?)?;
        // A stop asked for by `visit` is not an error: the walk just ends.
        let _ = walk_dir(&dir, base, 1, visit);
        Ok(())
    }

    /// The file the walked `entry` stands for, if the file tools may look at it: a regular file, or a
    /// symbolic link leading to a file inside the working directory (its resolved path).
    pub fn listed_file(&self, entry: &Walked) -> Option<PathBuf> {
        match entry.kind {
            EntryKind::File => Some(entry.path.clone()),
            EntryKind::Symlink => {
                let target = self.resolve(&entry.path.to_string_lossy()).ok()?;
                self.metadata(&target).is_ok_and(|m| m.is_file()).then_some(target)
            }
            EntryKind::Dir | EntryKind::Other => None,
        }
    }
}

fn walk_dir(dir: &Dir, at: &Path, depth: usize, visit: &mut dyn FnMut(Walked) -> ControlFlow<()>) -> ControlFlow<()> {
    if depth > MAX_WALK_DEPTH {
        return ControlFlow::Continue(());
    }
    let Ok(entries) = dir.entries() else { return ControlFlow::Continue(()) };
    let mut listed: Vec<(OsString, EntryKind, cap_std::fs::DirEntry)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let ft = e.file_type().ok()?;
            let kind = if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else if ft.is_symlink() {
                EntryKind::Symlink
            } else {
                EntryKind::Other
            };
            Some((e.file_name(), kind, e))
        })
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, kind, entry) in listed {
        let path = at.join(&name);
        visit(Walked { path: path.clone(), kind })?;
        if kind == EntryKind::Dir
            && name != ".git"
            && name != ".orch"
            && let Ok(sub) = entry.open_dir()
        {
            walk_dir(&sub, &path, depth + 1, visit)?;
        }
    }
    ControlFlow::Continue(())
}
