//! The QA pass (`[graphs] qa_model`): a completed attempt of a task with verification criteria that
//! are not commands is reviewed by a second agent on the QA model, with read-only tools (`Read`,
//! `Grep`, `Glob`) in the attempt's working directory, under the same budget gate. The reviewer ends
//! its answer with `VERDICT: PASS — why` or `VERDICT: FAIL — what is wrong`; a failed review (or one
//! without a verdict) raises a checkpoint, and the result is recorded on the task's output and in the
//! log. Its agent (`KEY-graph<8>-a<N>-qa`) keeps the review's full log.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;

use super::GraphRunner;
use super::budget::BudgetGate;
use crate::executor::RunOptions;
use crate::interrupt::Interrupt;
use crate::store::Batch;
use crate::text::clip_chars;
use crate::wire::{Agent, EndReason, Event, Task, short_id};

/// The tools of a reviewer: it reads, it does not change the work.
const REVIEW_TOOLS: [&str; 3] = ["Read", "Grep", "Glob"];

/// The longest answer of the reviewed attempt shown to the reviewer.
const ANSWER_CHARS: usize = 6_000;

/// What a review found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Review {
    /// The criteria are met.
    Pass(String),
    /// They are not, or the reviewer gave no verdict.
    Fail(String),
}

/// The commands a completed attempt runs: the verification items written `$ command`.
pub(crate) fn commands(verification: &[String]) -> impl Iterator<Item = &str> {
    verification.iter().filter_map(|v| v.trim().strip_prefix("$ "))
}

/// The criteria a reviewer checks: the verification items that are not `$ command`s.
pub(crate) fn criteria(verification: &[String]) -> Vec<&str> {
    verification.iter().map(|v| v.trim()).filter(|v| !v.is_empty() && !v.starts_with("$ ")).collect()
}

/// The reviewer's prompt.
fn review_prompt(task: &Task, answer: &str, criteria: &[&str]) -> String {
    let mut p = format!("# QA review of task {}: {}\n\n", task.key, task.title);
    if !task.description.trim().is_empty() {
        p.push_str(&format!("{}\n\n", task.description.trim()));
    }
    p.push_str("## Verification criteria\n");
    for c in criteria {
        p.push_str(&format!("- {c}\n"));
    }
    p.push_str(&format!(
        "\n## The agent's answer\n{}\n\n## Your job\nCheck the work in the working directory against every \
         criterion (you can read files, not change them). End your answer with one line:\n\
         VERDICT: PASS — <one sentence>\nor\nVERDICT: FAIL — <what is missing or wrong>\n",
        clip_chars(answer.trim(), ANSWER_CHARS, "\n…(cut)")
    ));
    p
}

/// The verdict of a reviewer's answer: its last `VERDICT:` line.
pub(crate) fn verdict(answer: &str) -> Review {
    let line = answer.lines().rev().map(str::trim).find_map(|l| {
        let l = l.trim_start_matches(['*', '#', ' ']);
        l.get(..8).filter(|p| p.eq_ignore_ascii_case("verdict:")).map(|_| l[8..].trim())
    });
    let Some(rest) = line else {
        return Review::Fail(format!("the reviewer gave no verdict: {}", clip_chars(answer.trim(), 300, "…")));
    };
    let upper = rest.to_ascii_uppercase();
    let why = |word: usize| {
        let why = rest.get(word..).unwrap_or_default();
        why.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '—' | '-' | ':' | '–'))
            .trim_end_matches('*')
            .trim()
            .to_string()
    };
    if upper.starts_with("PASS") {
        Review::Pass(why(4))
    } else if upper.starts_with("FAIL") {
        Review::Fail(why(4))
    } else {
        Review::Fail(format!("the reviewer's verdict is neither PASS nor FAIL: {rest}"))
    }
}

impl GraphRunner {
    /// Reviews a completed attempt of `task` on `model` when it has criteria to review: `None` when
    /// it has none; else the review and what it cost.
    pub(crate) async fn review(
        &self,
        task: &Task,
        answer: &str,
        workdir: &Path,
        model: &str,
        gate: Arc<BudgetGate>,
        interrupt: &Interrupt,
    ) -> Option<(Review, f64)> {
        let criteria = criteria(&task.verification);
        if criteria.is_empty() {
            return None;
        }
        let name = format!("{}-{}-a{}-qa", task.key, short_id(task.graph_id), task.attempt);
        let mut agent = Agent::new(name, model, workdir.display().to_string());
        agent.tools = Some(REVIEW_TOOLS.iter().map(|t| t.to_string()).collect());
        agent.metadata = json!({
            "graph_id": task.graph_id, "task_id": task.id, "task_key": task.key, "attempt": task.attempt, "qa": true,
        });
        let created = Batch::new()
            .change(crate::store::Change::CreateAgent(Box::new(agent.clone())))
            .event(crate::executor::agent_keys(&agent, None), Event::AgentCreated { agent: Box::new(agent.clone()) });
        if let Err(e) = self.store.commit(created).await {
            return Some((Review::Fail(format!("the reviewer could not be created: {e}")), 0.0));
        }
        let options = RunOptions {
            task_slug: Some(format!("graph-{}-{}-qa", short_id(task.graph_id), task.key)),
            interrupt: Some(interrupt.clone()),
            gate: Some(gate),
            allowed_tools: agent.tools.clone(),
            ..RunOptions::default()
        };
        let outcome = self.supervisor.run(&agent, review_prompt(task, answer, &criteria), options).await;
        let cost = match &outcome {
            // A fresh agent: its one turn is all it cost.
            Ok(o) => o.cost_usd,
            Err(_) => self.store.get_agent(agent.id).await.ok().flatten().map_or(0.0, |a| a.total_cost_usd),
        };
        let review = match outcome {
            Ok(o) if o.stop_reason == EndReason::EndTurn => verdict(o.final_text.as_deref().unwrap_or_default()),
            Ok(o) => Review::Fail(format!("the reviewer stopped: {}", o.stop_reason)),
            Err(e) => Review::Fail(format!("the review failed: {e}")),
        };
        Some((review, cost))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_from_the_last_verdict_line() {
        assert_eq!(verdict("All good.\nVERDICT: PASS — tests cover it"), Review::Pass("tests cover it".into()));
        assert_eq!(verdict("**Verdict: fail - no error handling**"), Review::Fail("no error handling".into()));
        assert_eq!(
            verdict("VERDICT: FAIL — first\nthen\nverdict: pass: fixed after all"),
            Review::Pass("fixed after all".into())
        );
        assert!(matches!(verdict("looks fine to me"), Review::Fail(w) if w.contains("no verdict")));
        assert!(matches!(verdict("VERDICT: maybe"), Review::Fail(w) if w.contains("neither PASS nor FAIL")));
    }

    #[test]
    fn only_criteria_that_are_not_commands_are_reviewed() {
        let v = vec!["$ cargo test".to_string(), "errors are handled".into(), "  ".into()];
        assert_eq!(criteria(&v), vec!["errors are handled"]);
    }
}
