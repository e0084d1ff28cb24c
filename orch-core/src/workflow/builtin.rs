//! The built-in workflows and the default slash commands they run.
//!
//! The built-ins are the seed's ADWs written in the workflow file format (proof that it is enough):
//! - `plan_build` — `/plan {{prompt}}`, then `/build <plan path>`;
//! - `plan_build_review` — adds `/review "<prompt>" <plan path>` with a `verdict` (FAIL, PASS or none)
//!   and the newest `app_review/review_*.md` as `review_path`;
//! - `plan_build_review_fix` — adds `/fix "<prompt>" <plan path> <review path>`, run only when the
//!   verdict is FAIL.
//!
//! Step models come from the inputs `model`, `review_model` and `fix_model` (the latter two falling
//! back to `model`); absent, the engine's default model is used.
//!
//! The agent experts (the seed's ACT → LEARN → REUSE over `.claude/commands/experts/<domain>/`, with
//! the inputs `domain` and `prompt`):
//! - `expert_question` — `/experts:<domain>:question "<prompt>"`, with read-only tools, so it cannot
//!   change the tree;
//! - `expert_self_improve` — `/experts:<domain>:self-improve <check_git_diff> "<prompt>" <max_lines>`:
//!   validates `expertise.yaml` against the code and rewrites it; the step fails when the file ends up
//!   longer than `max_lines` (input, default 1000); its content before and after is in the step's
//!   `StepEnd` payload (`file`), so the file's history is in the log;
//! - `expert_plan_build_improve` — `/experts:<domain>:plan`, `/build <plan path>`, then self-improve.
//!
//! The steps call `/plan`, `/build`, `/review`, `/fix` and `/experts:<domain>:{question,self-improve,plan}`.
//! A working directory's own `.claude/commands/…` files take precedence; otherwise the runner uses
//! [`default_command_for`], so a fresh repository works.

use std::path::Path;

use super::spec::{WorkflowSpec, parse_workflow};

/// The embedded workflow files: (file name, text).
const FILES: [(&str, &str); 6] = [
    ("plan_build.toml", include_str!("builtin/plan_build.toml")),
    ("plan_build_review.toml", include_str!("builtin/plan_build_review.toml")),
    ("plan_build_review_fix.toml", include_str!("builtin/plan_build_review_fix.toml")),
    ("expert_question.toml", include_str!("builtin/expert_question.toml")),
    ("expert_self_improve.toml", include_str!("builtin/expert_self_improve.toml")),
    ("expert_plan_build_improve.toml", include_str!("builtin/expert_plan_build_improve.toml")),
];

/// The default slash commands: (name, markdown).
const COMMANDS: [(&str, &str); 4] = [
    ("plan", include_str!("commands/plan.md")),
    ("build", include_str!("commands/build.md")),
    ("review", include_str!("commands/review.md")),
    ("fix", include_str!("commands/fix.md")),
];

/// The default expert commands, `experts:<domain>:<name>`: (name, markdown with `$DOMAIN` for the
/// domain).
const EXPERT_COMMANDS: [(&str, &str); 3] = [
    ("question", include_str!("commands/experts/question.md")),
    ("self-improve", include_str!("commands/experts/self-improve.md")),
    ("plan", include_str!("commands/experts/plan.md")),
];

/// The built-in workflows, in the order above, parsed from the embedded files. Their `source` is
/// `None`. A file that does not parse is a bug (the tests parse them all); it is logged and left out.
pub fn builtins() -> Vec<WorkflowSpec> {
    // Parsed once per process: every run looks its type up among these.
    static PARSED: std::sync::OnceLock<Vec<WorkflowSpec>> = std::sync::OnceLock::new();
    PARSED.get_or_init(parse_builtins).clone()
}

fn parse_builtins() -> Vec<WorkflowSpec> {
    FILES
        .iter()
        .filter_map(|(file, text)| match parse_workflow(text, &Path::new("<builtin>").join(file)) {
            Ok(mut spec) => {
                spec.source = None;
                Some(spec)
            }
            Err(e) => {
                tracing::error!(error = %e, "a built-in workflow does not parse");
                None
            }
        })
        .collect()
}

/// The default markdown (Claude Code command format, with `$ARGUMENTS`) of the slash command `name`:
/// `plan`, `build`, `review` or `fix`.
pub fn default_command(name: &str) -> Option<&'static str> {
    COMMANDS.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// The default markdown of the slash command `name`: [`default_command`], or for
/// `experts:<domain>:question`, `experts:<domain>:self-improve` and `experts:<domain>:plan` the shipped
/// expert command for that domain (`<domain>` made of ASCII letters, digits, `_` and `-`).
pub fn default_command_for(name: &str) -> Option<String> {
    if let Some(text) = default_command(name) {
        return Some(text.to_string());
    }
    let mut parts = name.split(':');
    let (Some("experts"), Some(domain), Some(command), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let valid = !domain.is_empty() && domain.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !valid {
        return None;
    }
    EXPERT_COMMANDS.iter().find(|(n, _)| *n == command).map(|(_, text)| text.replace("$DOMAIN", domain))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{Value, json};

    use super::*;
    use crate::template::SlashCommand;
    use crate::workflow::expr::{Scope, StepOutputs};
    use crate::workflow::extract::{PLAN_PATH_ACCEPT, accept_answer, extract_now};
    use crate::workflow::spec::Extract;

    #[test]
    fn the_builtins_parse() {
        for (file, text) in FILES {
            if let Err(e) = parse_workflow(text, Path::new(file)) {
                panic!("{e}");
            }
        }
        let names: Vec<String> = builtins().into_iter().map(|w| w.name).collect();
        assert_eq!(
            names,
            vec![
                "plan_build",
                "plan_build_review",
                "plan_build_review_fix",
                "expert_question",
                "expert_self_improve",
                "expert_plan_build_improve"
            ]
        );
        assert!(builtins().iter().all(|w| w.source.is_none()));
        assert!(builtins().iter().take(3).all(|w| w.inputs == ["prompt"]));
    }

    fn builtin(name: &str) -> WorkflowSpec {
        builtins().into_iter().find(|w| w.name == name).unwrap()
    }

    fn tools(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|s| s.to_string()).collect())
    }

    fn render(
        spec: &WorkflowSpec,
        step: &str,
        input: &Value,
        steps: &BTreeMap<String, StepOutputs>,
    ) -> (String, String) {
        let s = spec.step(step).unwrap();
        let scope = Scope { input, steps };
        let prompt = s.prompt_template().unwrap().render(&scope).unwrap();
        let model = s.model_template().unwrap().unwrap().render(&scope).unwrap();
        (prompt, model)
    }

    fn done(outputs: &[(&str, &str)]) -> StepOutputs {
        StepOutputs {
            status: "success".into(),
            result: Some("done".into()),
            outputs: outputs.iter().map(|(k, v)| (k.to_string(), Value::from(*v))).collect(),
        }
    }

    #[test]
    fn plan_build_review_fix_follows_the_seed() {
        let spec = builtin("plan_build_review_fix");
        let names: Vec<&str> = spec.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["plan", "build", "review", "fix"]);
        let all =
            ["Read", "Glob", "Grep", "Bash", "Write", "Edit", "Task", "TodoWrite", "WebFetch", "WebSearch", "Skill"];
        assert_eq!(spec.steps[0].allowed_tools, tools(&all));
        assert_eq!(spec.steps[1].allowed_tools, tools(&all));
        assert_eq!(spec.steps[2].allowed_tools, tools(&["Read", "Glob", "Grep", "Bash", "Write", "Skill"]));
        assert_eq!(
            spec.steps[3].allowed_tools,
            tools(&["Read", "Glob", "Grep", "Bash", "Write", "Edit", "Task", "TodoWrite", "Skill"])
        );
        assert!(spec.steps.iter().all(|s| s.retries == 0));

        // The plan path: required; ask with the seed's rule, then the newest specs/*.md.
        let plan_path = &spec.steps[0].outputs[0];
        assert_eq!((plan_path.name.as_str(), plan_path.required), ("plan_path", true));
        match &plan_path.extract[..] {
            [Extract::Ask { accept: Some(re), .. }, Extract::NewestFile { glob }] => {
                assert_eq!(re.as_str(), PLAN_PATH_ACCEPT);
                assert_eq!(glob, "specs/*.md");
                assert_eq!(accept_answer("See /r/specs/a.md.", Some(re)).as_deref(), Some("/r/specs/a.md"));
            }
            other => panic!("unexpected extractors {other:?}"),
        }

        // The verdict and the review file.
        let review = &spec.steps[2];
        let verdict = &review.outputs[0];
        assert_eq!((verdict.name.as_str(), verdict.required), ("verdict", false));
        let dir = Path::new(".");
        assert_eq!(extract_now(&verdict.extract[0], "VERDICT: FAIL", dir, None), Some(json!("FAIL")));
        assert_eq!(extract_now(&verdict.extract[0], "no pass or fail said? fail", dir, None), Some(json!("FAIL")));
        assert_eq!(extract_now(&verdict.extract[0], "VERDICT: PASS", dir, None), Some(json!("PASS")));
        assert_eq!(extract_now(&verdict.extract[0], "looks fine", dir, None), None);
        let review_path = &review.outputs[1];
        assert_eq!((review_path.name.as_str(), review_path.required), ("review_path", false));
        assert!(matches!(&review_path.extract[..], [Extract::NewestFile { glob }] if glob == "app_review/review_*.md"));

        // Prompts and models.
        let input = json!({"prompt": "add \"login\"", "model": "m", "review_model": "rm"});
        let mut steps = BTreeMap::new();
        assert_eq!(render(&spec, "plan", &input, &steps), ("/plan add \"login\"".into(), "m".into()));
        assert_eq!(render(&spec, "plan", &json!({"prompt": "p"}), &steps).1, "", "no model: engine default");
        steps.insert("plan".into(), done(&[("plan_path", "/r/specs/a.md")]));
        assert_eq!(render(&spec, "build", &input, &steps), ("/build /r/specs/a.md".into(), "m".into()));
        steps.insert("build".into(), done(&[]));
        assert_eq!(
            render(&spec, "review", &input, &steps),
            (r#"/review "add \"login\"" /r/specs/a.md"#.into(), "rm".into())
        );
        assert_eq!(render(&spec, "review", &json!({"prompt": "p"}), &steps).1, "");

        // fix runs only on FAIL, and then needs the review file.
        let fix = spec.step("fix").unwrap();
        let when = fix.when.as_ref().unwrap();
        for (verdict, runs) in [(Some("FAIL"), true), (Some("PASS"), false), (None, false)] {
            let mut s = steps.clone();
            let outputs: Vec<(&str, &str)> = verdict.map(|v| ("verdict", v)).into_iter().collect();
            s.insert("review".into(), done(&outputs));
            assert_eq!(when.eval(&Scope { input: &input, steps: &s }).unwrap(), runs, "{verdict:?}");
        }
        steps.insert("review".into(), done(&[("verdict", "FAIL"), ("review_path", "/r/app_review/review_1.md")]));
        assert_eq!(
            render(&spec, "fix", &input, &steps),
            (r#"/fix "add \"login\"" /r/specs/a.md /r/app_review/review_1.md"#.into(), "m".into())
        );
        assert_eq!(render(&spec, "fix", &json!({"prompt": "p", "fix_model": "fm"}), &steps).1, "fm");
        steps.insert("review".into(), done(&[("verdict", "FAIL")]));
        let err = fix.prompt_template().unwrap().render(&Scope { input: &input, steps: &steps }).unwrap_err();
        assert_eq!(err.to_string(), "steps.review.outputs.review_path has no value");
    }

    #[test]
    fn the_shorter_builtins_are_prefixes() {
        let full = builtin("plan_build_review_fix");
        for (name, n) in [("plan_build", 2), ("plan_build_review", 3)] {
            let spec = builtin(name);
            let names: Vec<&str> = spec.steps.iter().map(|s| s.name.as_str()).collect();
            let full_names: Vec<&str> = full.steps.iter().take(n).map(|s| s.name.as_str()).collect();
            assert_eq!(names, full_names);
            for (a, b) in spec.steps.iter().zip(&full.steps) {
                assert_eq!((&a.prompt, &a.model, &a.allowed_tools), (&b.prompt, &b.model, &b.allowed_tools));
            }
        }
    }

    #[test]
    fn the_experts_run_the_domain_commands() {
        let input = json!({"domain": "billing", "prompt": "How are \"refunds\" made?"});
        let question = builtin("expert_question");
        assert_eq!(question.inputs, ["domain", "prompt"]);
        assert_eq!(question.steps[0].allowed_tools, tools(&["Read", "Glob", "Grep"]), "read-only");
        let (prompt, _) = render(&question, "question", &input, &BTreeMap::new());
        assert_eq!(prompt, r#"/experts:billing:question "How are \"refunds\" made?""#);

        let improve = builtin("expert_self_improve");
        assert_eq!(improve.inputs, ["domain"]);
        let (prompt, _) = render(&improve, "self_improve", &json!({"domain": "billing"}), &BTreeMap::new());
        assert_eq!(prompt, r#"/experts:billing:self-improve false "" 1000"#);
        let with = json!({"domain": "billing", "prompt": "refunds", "check_git_diff": "true", "max_lines": 300});
        let (prompt, _) = render(&improve, "self_improve", &with, &BTreeMap::new());
        assert_eq!(prompt, r#"/experts:billing:self-improve true "refunds" 300"#);
        let track = improve.steps[0].track.as_ref().unwrap();
        let scope = Scope { input: &with, steps: &BTreeMap::new() };
        let path = crate::workflow::expr::Template::parse(&track.path).unwrap().render(&scope).unwrap();
        assert_eq!(path, ".claude/commands/experts/billing/expertise.yaml");
        let limit = track.max_lines.as_deref().unwrap();
        assert_eq!(crate::workflow::expr::Template::parse(limit).unwrap().render(&scope).unwrap(), "300");

        let full = builtin("expert_plan_build_improve");
        let names: Vec<&str> = full.steps.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["plan", "build", "self_improve"]);
        assert!(full.steps[2].track.as_ref().unwrap().max_lines.is_some());
    }

    #[test]
    fn the_expert_commands_default_per_domain() {
        let q = default_command_for("experts:billing:question").unwrap();
        assert!(q.contains(".claude/commands/experts/billing/expertise.yaml") && !q.contains("$DOMAIN"), "{q}");
        assert!(q.contains("$1"), "the question is its first argument");
        let si = default_command_for("experts:billing:self-improve").unwrap();
        assert!(si.contains("experts/billing/expertise.yaml") && si.contains("$3"));
        assert!(default_command_for("experts:billing:plan").unwrap().contains("specs/"));
        assert_eq!(default_command_for("plan").as_deref(), default_command("plan"));
        assert_eq!(default_command_for("experts:billing:deploy"), None);
        assert_eq!(default_command_for("experts:bad domain:question"), None);
        assert_eq!(default_command_for("experts:billing"), None);
        assert_eq!(default_command_for("experts:a:b:question"), None);
        for (name, _) in EXPERT_COMMANDS {
            let text = default_command_for(&format!("experts:d:{name}")).unwrap();
            assert!(SlashCommand::from_markdown(name.into(), Path::new("x"), &text).is_ok(), "{name} parses");
        }
    }

    #[test]
    fn default_commands_take_arguments() {
        for name in ["plan", "build", "review", "fix"] {
            let text = default_command(name).unwrap();
            assert!(text.starts_with("---\n"), "{name} has frontmatter");
            assert!(text.contains("$ARGUMENTS"), "{name} uses $ARGUMENTS");
        }
        assert!(default_command("plan").unwrap().contains("specs/"));
        assert!(default_command("review").unwrap().contains("VERDICT: PASS"));
        assert!(default_command("review").unwrap().contains("app_review/review_"));
        assert_eq!(default_command("deploy"), None);
    }
}
