//! The browser dashboard's files (`orch-ui-leptos`, built by `scripts/build-ui.sh`), served at `/` from
//! a directory: `--ui DIR`, else `ORCH_UI_DIR`, else this repository's `orch-ui-leptos/dist` when it has
//! been built. Without one, `/` is the landing page, which says how to build it.

use std::path::{Path, PathBuf};

use tower_http::services::ServeDir;

use crate::chat::Failure;

/// The dashboard of this source tree, once `scripts/build-ui.sh` has built it.
const REPO_DIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../orch-ui-leptos/dist");

/// The directory to serve the dashboard from, if any: `option` (`--ui`), else `ORCH_UI_DIR`, else the
/// repository's build. A directory given explicitly must hold an `index.html`.
pub fn dir(option: Option<&Path>) -> Result<Option<PathBuf>, Failure> {
    let named = option
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("ORCH_UI_DIR").filter(|v| !v.is_empty()).map(PathBuf::from));
    if let Some(d) = named {
        if !d.join("index.html").is_file() {
            return Err(Failure::usage(format!(
                "--ui/ORCH_UI_DIR {}: no index.html there (build the dashboard with scripts/build-ui.sh)",
                d.display()
            )));
        }
        return Ok(Some(d));
    }
    let repo = PathBuf::from(REPO_DIST);
    Ok(repo.join("index.html").is_file().then(|| repo.canonicalize().unwrap_or(repo)))
}

/// The files of `dir`, compressed copies preferred (`x.br`, `x.gz` beside `x`, for browsers that accept
/// them); a path with no file, or a method other than GET and HEAD, goes to `fallback` (so unknown API
/// routes keep their JSON errors).
pub fn files<F>(dir: &Path, fallback: F) -> ServeDir<F> {
    ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .call_fallback_on_method_not_allowed(true)
        .fallback(fallback)
}
