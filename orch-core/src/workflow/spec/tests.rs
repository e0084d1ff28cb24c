//! Tests of the workflow file format.
use super::*;

const GOOD: &str = r#"
description = "Plan, then build"
inputs = ["prompt"]

[[steps]]
name = "plan"
prompt = "/plan {{prompt}}"
model = '{{input.model | default ""}}'
allowed_tools = ["Read", "Write"]
retries = 2
[[steps.outputs]]
name = "plan_path"
required = true
extract = [ { ask = "Path?", accept = '^(/|\./)\S+\.md$' },
        { newest_file = "specs/*.md" } ]
[[steps.outputs]]
name = "count"
extract = [ { regex = 'tests: (\d+)' }, { regex = 'v\d+' }, { regex = '(a)(b)', group = 2 }, { result = true }, { keyword = ["FAIL", "PASS"] } ]

[[steps]]
name = "build"
prompt = "/build {{steps.plan.outputs.plan_path}}"
when = 'steps.plan.outputs.count != "0" and not input.skip'
"#;

fn parse(text: &str) -> Result<WorkflowSpec, WorkflowFileError> {
    parse_workflow(text, Path::new("/repo/.orch/workflows/flow.toml"))
}

fn err(text: &str) -> WorkflowFileError {
    match parse(text) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

#[test]
fn parses_a_full_workflow() {
    let spec = parse(GOOD).unwrap();
    assert_eq!(spec.name, "flow", "the name defaults to the file stem");
    assert_eq!(spec.description, "Plan, then build");
    assert_eq!(spec.inputs, vec!["prompt"]);
    assert_eq!(spec.source.as_deref(), Some(Path::new("/repo/.orch/workflows/flow.toml")));
    assert_eq!(spec.steps.len(), 2);
    let plan = &spec.steps[0];
    assert_eq!(plan.name, "plan");
    assert_eq!(plan.prompt, "/plan {{prompt}}");
    assert_eq!(plan.model.as_deref(), Some("{{input.model | default \"\"}}"));
    assert_eq!(plan.allowed_tools.as_deref(), Some(&["Read".to_string(), "Write".to_string()][..]));
    assert_eq!(plan.retries, 2);
    assert!(plan.when.is_none());
    assert!(plan.prompt_template().is_ok());
    assert_eq!(plan.outputs.len(), 2);
    assert!(plan.outputs[0].required);
    assert!(!plan.outputs[1].required);
    assert!(matches!(&plan.outputs[0].extract[0], Extract::Ask { question, accept: Some(_) } if question == "Path?"));
    assert!(matches!(&plan.outputs[0].extract[1], Extract::NewestFile { glob } if glob == "specs/*.md"));
    let x = &plan.outputs[1].extract;
    assert!(matches!(&x[0], Extract::Regex { group: 1, .. }), "group defaults to 1 with a group");
    assert!(matches!(&x[1], Extract::Regex { group: 0, .. }), "and to 0 without");
    assert!(matches!(&x[2], Extract::Regex { group: 2, .. }));
    assert!(matches!(&x[3], Extract::Result));
    assert!(matches!(&x[4], Extract::Keyword { keywords } if keywords == &["FAIL", "PASS"]));
    let build = &spec.steps[1];
    assert_eq!(build.retries, 0);
    assert!(build.allowed_tools.is_none() && build.model.is_none() && build.outputs.is_empty());
    assert_eq!(build.when.as_ref().unwrap().as_str(), r#"steps.plan.outputs.count != "0" and not input.skip"#);
}

#[test]
fn worktree_and_on_success_are_read_and_checked() {
    let spec = parse(GOOD).unwrap();
    assert_eq!(spec.isolation, Isolation::default(), "no worktree, keep, by default");
    let spec = parse(&format!("worktree = true\non_success = \"merge\"\n{GOOD}")).unwrap();
    assert_eq!(spec.isolation, Isolation { worktree: true, on_success: OnSuccess::Merge });
    let e = err(&format!("worktree = true\non_success = \"push\"\n{GOOD}"));
    assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("on_success")), "{e}");
    assert!(e.message.contains("`push` is not one of \"keep\" or \"merge\""), "{e}");
    let e = err(&format!("worktree = \"yes\"\n{GOOD}"));
    assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("worktree")), "{e}");
}

#[test]
fn a_tracked_file_is_read_and_checked() {
    let ok = "[[steps]]\nname = \"a\"\nprompt = \"x\"\ntrack = { path = 'e/{{input.d}}.yaml', max_lines = '{{input.n | default \"9\"}}' }\n";
    let spec = parse(ok).unwrap();
    let track = spec.steps[0].track.as_ref().unwrap();
    assert_eq!(track.path, "e/{{input.d}}.yaml");
    assert_eq!(track.max_lines.as_deref(), Some("{{input.n | default \"9\"}}"));
    assert!(parse(GOOD).unwrap().steps[0].track.is_none());
    let e = err("[[steps]]\nname = \"a\"\nprompt = \"x\"\ntrack = { path = '../x.yaml' }\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("steps[0].track.path")), "{e}");
    assert!(e.message.contains("relative"), "{e}");
    let e = err("[[steps]]\nname = \"a\"\nprompt = \"x\"\ntrack = { path = 'x', max_lines = '{{n' }\n");
    assert_eq!(e.key.as_deref(), Some("steps[0].track.max_lines"), "{e}");
    let n = parse("[[steps]]\nname = \"a\"\nprompt = \"x\"\ntrack = { path = 'x', max_lines = 40 }\n").unwrap();
    assert_eq!(n.steps[0].track.as_ref().unwrap().max_lines.as_deref(), Some("40"), "a number is fine too");
    let e = err("[[steps]]\nname = \"a\"\nprompt = \"x\"\ntrack = { path = 'x', max_lines = true }\n");
    assert_eq!(e.key.as_deref(), Some("steps[0].track.max_lines"), "{e}");
    let e = err("[[steps]]\nname = \"a\"\nprompt = \"x\"\ntrack = { path = 'x', lines = 3 }\n");
    assert!(e.message.contains("unknown field `lines`"), "{e}");
}

#[test]
fn an_explicit_name_wins_over_the_file_stem() {
    let spec = parse(&format!("name = \"mine\"\n{GOOD}")).unwrap();
    assert_eq!(spec.name, "mine");
}

#[test]
fn unknown_keys_are_located() {
    let e = err("[[steps]]\nname = \"a\"\nprompt = \"x\"\nmodle = \"m\"\n");
    assert_eq!(e.line, Some(4), "{e}");
    assert_eq!(e.key.as_deref(), Some("steps[0].modle"), "{e}");
    assert!(e.message.contains("unknown field `modle`"), "{e}");
    assert!(e.to_string().starts_with("/repo/.orch/workflows/flow.toml:4:1: steps[0].modle: unknown field"), "{e}");

    let e = err("titel = \"x\"\n[[steps]]\nname = \"a\"\nprompt = \"x\"\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("titel")), "{e}");

    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps.outputs]]\nname = \"o\"\nextract = [ { regex = 'a', grop = 1 } ]\n",
    );
    assert_eq!(e.line, Some(6), "{e}");
    assert!(e.key.as_deref().unwrap().starts_with("steps[0].outputs[0].extract[0]"), "{e}");
}

#[test]
fn type_and_syntax_errors_are_located() {
    let e = err("[[steps]]\nname = \"a\"\nprompt = \"x\"\nretries = \"two\"\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(4), Some("steps[0].retries")), "{e}");
    let e = err("[[steps]]\nname = \"a\"\nprompt = \"x\n");
    assert_eq!(e.line, Some(3), "{e}");
    let e = err("[[steps]]\nname = \"a\"\n");
    assert!(e.message.contains("prompt"), "{e}");
}

#[test]
fn a_bad_regex_is_located() {
    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n\n[[steps.outputs]]\nname = \"o\"\nextract = [\n  { result = true },\n  { regex = '(unclosed' },\n]\n",
    );
    assert_eq!(e.line, Some(9), "{e}");
    assert_eq!(e.key.as_deref(), Some("steps[0].outputs[0].extract[1].regex"));
    assert_eq!(e.message, "bad regular expression: unclosed group");
    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps.outputs]]\nname = \"o\"\nextract = [ { ask = 'q', accept = '[' } ]\n",
    );
    assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("steps[0].outputs[0].extract[0].accept")), "{e}");
    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps.outputs]]\nname = \"o\"\nextract = [ { regex = 'a(b)', group = 2 } ]\n",
    );
    assert!(e.message.contains("group 2 does not exist"), "{e}");
}

#[test]
fn a_bad_when_is_located() {
    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n\n[[steps]]\nname = \"b\"\nprompt = \"y\"\nwhen = 'steps.a.status = \"success\"'\n",
    );
    assert_eq!(e.line, Some(8), "{e}");
    assert_eq!(e.column, Some(8), "{e}");
    assert_eq!(e.key.as_deref(), Some("steps[1].when"));
    assert!(e.message.contains("column 16: unexpected character `=`"), "{e}");
    assert_eq!(
        e.to_string(),
        "/repo/.orch/workflows/flow.toml:8:8: steps[1].when: column 16: unexpected character `=`"
    );
}

#[test]
fn a_reference_to_a_later_or_unknown_step_is_an_error() {
    let e = err(
        "[[steps]]\nname = \"plan\"\nprompt = \"/plan {{steps.review.outputs.verdict}}\"\n\n[[steps]]\nname = \"review\"\nprompt = \"r\"\n",
    );
    assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("steps[0].prompt")), "{e}");
    assert!(e.message.contains("refers to step `review`"), "{e}");

    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps]]\nname = \"b\"\nprompt = \"y\"\nwhen = 'steps.b.status == \"x\"'\n",
    );
    assert_eq!((e.line, e.key.as_deref()), (Some(7), Some("steps[1].when")), "a step cannot read itself: {e}");

    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps]]\nname = \"b\"\nprompt = \"y\"\nmodel = '{{steps.c.result}}'\n",
    );
    assert_eq!(e.key.as_deref(), Some("steps[1].model"), "{e}");

    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps]]\nname = \"b\"\nprompt = \"{{steps.a.outputs.nope}}\"\n",
    );
    assert!(e.message.contains("declares no output `nope`"), "{e}");

    // Undeclared inputs are optional and allowed; earlier steps are fine.
    assert!(
        parse("[[steps]]\nname = \"a\"\nprompt = \"{{input.anything}}\"\n[[steps]]\nname = \"b\"\nprompt = \"{{steps.a.result}} {{steps.a.status}}\"\n")
            .is_ok()
    );
}

#[test]
fn structural_errors() {
    let e = err("description = \"none\"\n");
    assert_eq!(e.key.as_deref(), Some("steps"));
    assert!(e.message.contains("at least one"), "{e}");
    let e = err("steps = []\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(1), Some("steps")), "{e}");

    let e = err("[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps]]\nname = \"a\"\nprompt = \"y\"\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(5), Some("steps[1].name")), "{e}");
    assert!(e.message.contains("comes earlier"), "{e}");

    let e = err("[[steps]]\nname = \"Plan Step\"\nprompt = \"x\"\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(2), Some("steps[0].name")), "{e}");

    let e = err("[[steps]]\nname = \"a\"\nprompt = \"/plan {{prompt\"\n");
    assert_eq!((e.line, e.key.as_deref()), (Some(3), Some("steps[0].prompt")), "{e}");
    assert!(e.message.contains("not closed"), "{e}");

    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps.outputs]]\nname = \"o\"\nextract = [ { result = true, keyword = [\"A\"] } ]\n",
    );
    assert_eq!((e.line, e.key.as_deref()), (Some(6), Some("steps[0].outputs[0].extract[0]")), "{e}");
    assert!(e.message.contains("exactly one"), "{e}");
    let e = err("[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps.outputs]]\nname = \"o\"\nextract = [ {} ]\n");
    assert!(e.message.contains("needs one of"), "{e}");
    let e = err("[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps.outputs]]\nname = \"o\"\nextract = []\n");
    assert!(e.message.contains("at least one extractor"), "{e}");
    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps.outputs]]\nname = \"o\"\nextract = [ { newest_file = '/etc/*' } ]\n",
    );
    assert!(e.message.contains("relative"), "{e}");
    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps.outputs]]\nname = \"o\"\nextract = [ { newest_file = '../*.md' } ]\n",
    );
    assert!(e.message.contains(".."), "{e}");
    let e = err(
        "[[steps]]\nname = \"a\"\nprompt = \"x\"\n[[steps.outputs]]\nname = \"o\"\nextract = [ { result = true } ]\n[[steps.outputs]]\nname = \"o\"\nextract = [ { result = true } ]\n",
    );
    assert!(e.message.contains("already has an output"), "{e}");
}

#[test]
fn display_leaves_out_unknown_parts() {
    let e = WorkflowFileError {
        path: PathBuf::from("f.toml"),
        line: None,
        column: None,
        key: None,
        message: "oops".into(),
    };
    assert_eq!(e.to_string(), "f.toml: oops");
    let e = WorkflowFileError { line: Some(3), key: Some("steps".into()), ..e };
    assert_eq!(e.to_string(), "f.toml:3: steps: oops");
}

#[test]
fn load_dir_lists_broken_files_beside_good_ones() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(load_dir(tmp.path()).0.len(), 0, "no directory: no workflows");
    assert_eq!(load_dir(tmp.path()).1.len(), 0);
    let dir = tmp.path().join(".orch/workflows");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("zeta.toml"), "[[steps]]\nname = \"a\"\nprompt = \"x\"\n").unwrap();
    std::fs::write(dir.join("alpha.toml"), GOOD).unwrap();
    std::fs::write(dir.join("broken.toml"), "[[steps]]\nname = \"a\"\nprompt = \"x\"\nwhen = 'and'\n").unwrap();
    std::fs::write(dir.join("dup.toml"), "name = \"zeta\"\n[[steps]]\nname = \"a\"\nprompt = \"x\"\n").unwrap();
    std::fs::write(dir.join("notes.md"), "not a workflow").unwrap();
    let (specs, errors) = load_dir(tmp.path());
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, vec!["alpha", "zeta"]);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].path.ends_with("broken.toml"));
    assert_eq!((errors[0].line, errors[0].key.as_deref()), (Some(4), Some("steps[0].when")));
    assert!(errors[0].to_string().contains("broken.toml:4:8: steps[0].when: column 1:"), "{}", errors[0]);
    // dup.toml (sorted before zeta.toml) defined `zeta` first.
    assert_eq!(specs[1].source.as_deref(), Some(dir.join("dup.toml").as_path()));
    assert!(errors[1].path.ends_with("zeta.toml") && errors[1].message.contains("already defined"), "{errors:?}");

    std::fs::remove_file(dir.join("zeta.toml")).unwrap();
    std::fs::write(dir.join("zz.toml"), "name = \"zeta\"\n[[steps]]\nname = \"a\"\nprompt = \"x\"\n").unwrap();
    let (specs, errors) = load_dir(tmp.path());
    assert_eq!(specs.len(), 2);
    assert_eq!(errors.len(), 2);
    assert!(errors[1].path.ends_with("zz.toml") && errors[1].message.contains("already defined"), "{errors:?}");
}
