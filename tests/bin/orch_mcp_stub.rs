//! `orch-mcp-stub`: the stub MCP server of the MCP client's tests, on stdio (see `orch_tests::mcp_stub`).
//! `--grandchild` also starts a `sleep` in its process group (its pid goes to `STUB_PID_FILE`).

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let grandchild = std::env::args().any(|a| a == "--grandchild");
    orch_tests::mcp_stub::serve_stdio(grandchild).await
}
