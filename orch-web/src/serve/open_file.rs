//! `POST /api/open-file` (the seed's): opens a file of the working dir in the person's editor — only
//! when `IDE_ENABLED` is true, only an existing file inside the working dir, and without a shell
//! (`IDE_COMMAND`, default `code`, run with the path as its one argument). Like the seed, every refusal
//! answers 200 with `status:"error"` and the reason.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, SeedError};
use super::state::AppState;

#[derive(Deserialize)]
pub struct OpenFile {
    file_path: String,
}

fn refused(message: impl Into<String>) -> Json<Value> {
    Json(json!({"status": "error", "message": message.into()}))
}

/// Opens the file, or says why not.
pub async fn open_file(
    State(state): State<AppState>,
    body: Result<Json<OpenFile>, JsonRejection>,
) -> Result<Json<Value>, SeedError> {
    let Json(req) = body.map_err(ApiError::from)?;
    let enabled =
        std::env::var("IDE_ENABLED").is_ok_and(|v| matches!(v.trim(), "1" | "true" | "True" | "TRUE" | "yes"));
    if !enabled {
        return Ok(refused("opening files is disabled: set IDE_ENABLED=true (and IDE_COMMAND) on the server"));
    }
    let root = match state.working_dir().canonicalize() {
        Ok(r) => r,
        Err(e) => return Ok(refused(format!("the working dir cannot be read: {e}"))),
    };
    let asked = std::path::Path::new(&req.file_path);
    let path = if asked.is_absolute() { asked.to_path_buf() } else { root.join(asked) };
    let Ok(path) = path.canonicalize() else {
        return Ok(refused(format!("file not found: {}", req.file_path)));
    };
    if !path.starts_with(&root) {
        return Ok(refused(format!("{} is outside the working dir", req.file_path)));
    }
    if !path.is_file() {
        return Ok(refused(format!("not a file: {}", req.file_path)));
    }
    let command = std::env::var("IDE_COMMAND").ok().filter(|c| !c.trim().is_empty()).unwrap_or_else(|| "code".into());
    match std::process::Command::new(command.trim())
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
    {
        Ok(_) => Ok(Json(json!({"status": "success", "message": format!("Opened {} in {command}", path.display()),
                                "file_path": path.display().to_string()}))),
        Err(e) => Ok(refused(format!("could not run {command}: {e}"))),
    }
}
