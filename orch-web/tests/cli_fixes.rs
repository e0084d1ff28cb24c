//! CLI defects: `events --follow` and Ctrl-C, `run --agent` names, blank prompts, `events --agent` for
//! an orchestrator's agents.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{json_lines, orch, run_in, script, text, wait_exit};

/// A small pseudo-random sequence (seeded from the clock; the seed is printed on failure).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn seed() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64
}

/// Whether process `pid` ignores SIGINT, catches it, or neither (from /proc/PID/status).
fn sigint_disposition(pid: u32) -> Option<(bool, bool)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mask = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .map(|m| m & 0b10 != 0)
    };
    Some((mask("SigIgn:")?, mask("SigCgt:")?))
}

/// Waits until `pid` is the orch binary and no longer ignores SIGINT (its handler is installed).
fn wait_handler(pid: u32) {
    let start = Instant::now();
    loop {
        let is_orch = std::fs::read_link(format!("/proc/{pid}/exe"))
            .map(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("orch")))
            .unwrap_or(false);
        if is_orch && sigint_disposition(pid).is_some_and(|(ignored, caught)| !ignored && caught) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "orch (pid {pid}) never installed its SIGINT handler");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn kill_int(pid: u32) {
    let ok = Command::new("kill").args(["-INT", &pid.to_string()]).status().unwrap();
    assert!(ok.success());
}

/// A database with a few thousand events (an agent calling Glob 600 times).
fn backlog(dir: &Path) {
    let s = dir.join("loop.json");
    std::fs::write(
        &s,
        r#"{"steps": [{"repeat": true, "reply": [{"type": "text", "text": "looking around once more"}, {"type": "tool_use", "name": "Glob", "input": {"pattern": "*.json"}}]}]}"#,
    )
    .unwrap();
    let out = run_in(dir, &["--model", &format!("scripted:{}", s.display()), "run", "--max-turns", "600", "loop"]);
    assert!(out.status.code().is_some(), "{}", text(&out.stderr));
    let n = json_lines(&run_in(dir, &["events", "--json"]).stdout).len();
    assert!(n > 3000, "backlog of {n} events");
}

#[test]
fn a_follower_in_the_background_of_a_script_stops_on_sigint_at_any_moment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    backlog(d);
    let mut rng = Lcg(seed());
    let seed0 = rng.0;
    for round in 0..4 {
        // `sh -c 'cmd &'` starts cmd with SIGINT ignored, as scripts do.
        let mut sh = Command::new("sh")
            .arg("-c")
            .arg(r#""$0" --cwd "$1" events --follow --json & echo $!; wait $!; echo "rc=$?""#)
            .arg(env!("CARGO_BIN_EXE_orch"))
            .arg(d)
            .env_remove("ORCH_DATABASE_URL")
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = sh.stdout.take().unwrap();
        // Read the pid, then the follower's output slowly, so it is busy printing its backlog.
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            let mut buf = [0u8; 2048];
            loop {
                match out.read(&mut buf) {
                    Ok(0) | Err(_) => return all,
                    Ok(n) => all.extend_from_slice(&buf[..n]),
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let start = Instant::now();
        let pid = loop {
            let p = std::fs::read_to_string(format!("/proc/{}/task/{}/children", sh.id(), sh.id()))
                .ok()
                .and_then(|c| c.split_whitespace().next().and_then(|p| p.parse::<u32>().ok()));
            if let Some(p) = p {
                break p;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "the follower never started");
            std::thread::sleep(Duration::from_millis(1));
        };
        wait_handler(pid);
        let delay = rng.below(700);
        std::thread::sleep(Duration::from_millis(delay));
        kill_int(pid);
        let status = wait_exit(
            &mut sh,
            Duration::from_secs(30),
            &format!("round {round}, SIGINT after {delay} ms (seed {seed0})"),
        );
        assert!(status.success());
        let printed = text(&reader.join().unwrap());
        assert!(
            printed.trim_end().ends_with("rc=130"),
            "round {round}, {delay} ms: exit 130, got …{}",
            &printed[printed.len().saturating_sub(200)..]
        );
    }
}

#[test]
fn a_follower_with_a_backlog_stops_on_sigint_at_any_moment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    backlog(d);
    let mut rng = Lcg(seed());
    let seed0 = rng.0;
    for round in 0..4 {
        let mut child = orch()
            .arg("--cwd")
            .arg(d)
            .args(["events", "--follow", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut total = 0usize;
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                total += n;
                std::thread::sleep(Duration::from_millis(2));
            }
            total
        });
        wait_handler(child.id());
        let delay = rng.below(700);
        std::thread::sleep(Duration::from_millis(delay));
        kill_int(child.id());
        let status = wait_exit(
            &mut child,
            Duration::from_secs(30),
            &format!("round {round}, SIGINT after {delay} ms (seed {seed0})"),
        );
        assert_eq!(status.code(), Some(130), "round {round}, {delay} ms");
        let _ = reader.join();
    }
}

#[test]
fn run_refuses_the_agent_names_agent_create_refuses_and_blank_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = format!("scripted:{}", script("demo.json").display());
    let long = "x".repeat(5000);
    for name in ["", "  ", "tab\there", "bell\u{7}", long.as_str(), "orchestrator"] {
        let out = run_in(d, &["--model", &model, "run", "--agent", name, "write a greeting for Ada"]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "name {:?}: {}",
            name.chars().take(20).collect::<String>(),
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains("name"), "{}", text(&out.stderr));
    }
    for prompt in ["", "   "] {
        let out = run_in(d, &["--model", &model, "run", prompt]);
        assert_eq!(out.status.code(), Some(2), "prompt {prompt:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains("prompt"), "{}", text(&out.stderr));
    }
    let list = json_lines(&run_in(d, &["agent", "list", "--json"]).stdout);
    assert!(list.is_empty(), "nothing was created: {list:?}");
}

#[test]
fn events_agent_finds_an_orchestrators_agents() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let model = format!("scripted:{}", script("orchestrator.json").display());
    let out = run_in(
        d,
        &["--model", &model, "chat", "create an agent called alice for python work, then have her write hello.py"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let alice = json_lines(&run_in(d, &["agent", "list", "--json"]).stdout)[0]["id"].clone();
    let out = run_in(d, &["events", "--agent", "alice", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let evs = json_lines(&out.stdout);
    assert!(evs.iter().any(|e| e["type"] == "ToolUse" && e["tool_name"] == "Write"), "{evs:?}");
    assert!(evs.iter().all(|e| e["agent_id"] == alice), "only alice's events");
    let out = run_in(d, &["events", "--agent", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
}
