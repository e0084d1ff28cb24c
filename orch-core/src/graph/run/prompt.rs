//! What a task's agent is told: the task, how it will be checked, what its dependencies produced
//! (bounded), the facts earlier tasks reported that concern it, and people's guidance; and how the
//! facts it reports are read back from its answer.

use crate::text::clip_chars;
use crate::wire::{Fact, Task};

/// At most this many characters of one dependency's output.
pub const DEP_OUTPUT_CHARS: usize = 4_000;
/// At most this many characters of all dependencies' outputs together.
pub const DEPS_TOTAL_CHARS: usize = 16_000;
/// At most this many characters of facts (the seed's cap).
pub const KNOWLEDGE_CHARS: usize = 3_000;
/// At most this many characters of a task's stored output.
pub const OUTPUT_CHARS: usize = 64_000;

/// The prompt of `task`'s next attempt.
pub fn task_prompt(task: &Task, deps: &[Task], facts: &[Fact], last_error: Option<&str>) -> String {
    let mut p = format!("# Task {}: {}\n\n", task.key, task.title);
    if !task.description.is_empty() {
        p.push_str(&task.description);
        p.push_str("\n\n");
    }
    if !task.verification.is_empty() {
        p.push_str("## Done when\n");
        for v in &task.verification {
            p.push_str(&format!("- {}\n", v.trim_start_matches("$ ")));
        }
        p.push('\n');
    }
    let mut budget = DEPS_TOTAL_CHARS;
    let outputs: Vec<&Task> = deps.iter().filter(|d| d.output.as_deref().is_some_and(|o| !o.is_empty())).collect();
    if !outputs.is_empty() {
        p.push_str("## What the tasks it depends on produced\n");
        for d in outputs {
            let out = d.output.as_deref().unwrap_or_default();
            let cap = DEP_OUTPUT_CHARS.min(budget);
            if cap < 100 {
                p.push_str(&format!(
                    "### {} ({})\n(left out: the context limit for dependencies is reached)\n",
                    d.key, d.title
                ));
                continue;
            }
            let text = clip_chars(out, cap, "\n…(cut)");
            budget = budget.saturating_sub(text.chars().count());
            p.push_str(&format!("### {} ({})\n{}\n\n", d.key, d.title, text));
        }
    }
    let relevant: Vec<&Fact> = facts.iter().filter(|f| fact_concerns(f, task)).collect();
    if !relevant.is_empty() {
        p.push_str("## Known facts of this project\n");
        let mut used = 0;
        for f in relevant {
            used += f.text.chars().count();
            if used > KNOWLEDGE_CHARS {
                break;
            }
            p.push_str(&format!("- {}\n", f.text));
        }
        p.push('\n');
    }
    if let Some(e) = last_error {
        p.push_str(&format!("## The previous attempt failed\n{}\n\n", clip_chars(e, 1_000, "…")));
    }
    if !task.guidance.is_empty() {
        p.push_str("## Guidance from a person\n");
        for g in &task.guidance {
            p.push_str(&format!("- {g}\n"));
        }
        p.push('\n');
    }
    p.push_str(
        "When you are done, answer with a short summary of what you did. Facts later tasks should know go \
         on lines of their own starting with `KNOWLEDGE:` (optionally `KNOWLEDGE[tag,tag]:`).",
    );
    p
}

/// Whether fact `f` is for `task`: it names the task's type or one of its tools, or names nothing.
pub fn fact_concerns(f: &Fact, task: &Task) -> bool {
    f.tags.is_empty()
        || f.tags.iter().any(|t| t.eq_ignore_ascii_case(&task.task_type))
        || f.tags.iter().any(|t| task.tools.iter().any(|x| x.eq_ignore_ascii_case(t)))
        || f.tags.iter().any(|t| t.eq_ignore_ascii_case(&task.key))
}

/// The facts of an answer: its `KNOWLEDGE:` lines, and the `knowledge` list of a JSON object in it
/// (`{"knowledge": ["fact", {"text": "fact", "tags": ["code"]}]}`). Facts without tags concern every
/// later task.
pub fn read_knowledge(answer: &str) -> Vec<Fact> {
    let mut facts = Vec::new();
    for line in answer.lines() {
        let line = line.trim().trim_start_matches(['-', '*']).trim();
        let Some(rest) = line.strip_prefix("KNOWLEDGE") else { continue };
        let (tags, text) = match rest.strip_prefix('[').and_then(|r| r.split_once("]:")) {
            Some((tags, text)) => {
                (tags.split(',').map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty()).collect(), text)
            }
            None => match rest.strip_prefix(':') {
                Some(text) => (Vec::new(), text),
                None => continue,
            },
        };
        let text = text.trim();
        if !text.is_empty() {
            facts.push(Fact { text: text.to_string(), tags });
        }
    }
    if let Ok(v) = crate::graph::parse::extract_json(answer)
        && let Some(list) = v.get("knowledge").and_then(serde_json::Value::as_array)
    {
        for item in list {
            match item {
                serde_json::Value::String(s) if !s.trim().is_empty() => {
                    facts.push(Fact { text: s.trim().to_string(), tags: Vec::new() })
                }
                serde_json::Value::Object(_) => {
                    if let Ok(f) = serde_json::from_value::<Fact>(item.clone())
                        && !f.text.trim().is_empty()
                    {
                        facts.push(f);
                    }
                }
                _ => {}
            }
        }
    }
    facts.dedup();
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knowledge_lines_and_json_are_read() {
        let answer = "Done.\nKNOWLEDGE: the API uses v2\n- KNOWLEDGE[code, rust]: use thiserror\nKNOWLEDGE nothing\n\
                      ```json\n{\"knowledge\": [\"port is 9403\", {\"text\": \"db is sqlite\", \"tags\": [\"research\"]}]}\n```";
        let f = read_knowledge(answer);
        let texts: Vec<&str> = f.iter().map(|f| f.text.as_str()).collect();
        assert_eq!(texts, vec!["the API uses v2", "use thiserror", "port is 9403", "db is sqlite"]);
        assert_eq!(f[1].tags, vec!["code".to_string(), "rust".to_string()]);
        assert_eq!(f[3].tags, vec!["research".to_string()]);
    }
}
