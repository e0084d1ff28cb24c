//! Context compaction: when a conversation would pass a fraction of its model's context window, its
//! older messages are replaced by a summary before the next model call.
//!
//! What is kept: a summary (a user message opening the conversation) and, verbatim, the most recent
//! messages from an assistant message on, so every kept tool call keeps its result and every kept
//! thinking block keeps its signature; compaction runs only between steps, when no tool call is
//! unresolved. What is replaced is recorded, verbatim, in the `Compacted` event, and the new
//! conversation replaces the old one in the same commit, so a crash leaves one or the other.
//!
//! The pure parts live here (estimates, where to cut, the summary request's text); the loop that calls
//! the summary model and commits is the native executor's.

use crate::wire::{ContentBlock, Message, Role};

/// How the native loop compacts conversations.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionSettings {
    /// Compact when the next request would pass this fraction of the model's context window (default
    /// 0.8; 0: never automatically). An agent's own `compact_at` wins.
    pub compact_at: f64,
    /// The share of the window the verbatim tail may take (default 0.3).
    pub keep_fraction: f64,
    /// The model that writes summaries (`None`: the agent's own).
    pub summary_model: Option<String>,
    /// Output token limit of a summary (default 4096).
    pub summary_max_tokens: u32,
}

impl Default for CompactionSettings {
    fn default() -> Self {
        Self {
            compact_at: crate::config::DEFAULT_COMPACT_AT,
            keep_fraction: 0.3,
            summary_model: None,
            summary_max_tokens: 4096,
        }
    }
}

/// Characters per token of the estimates (the usual rule of thumb for English text and code).
const CHARS_PER_TOKEN: u64 = 4;
/// Characters of one block shown in the transcript the summary model reads.
const TRANSCRIPT_BLOCK_CHARS: usize = 4000;

/// Estimated tokens of a text.
pub fn estimate_text(text: &str) -> u64 {
    (text.len() as u64).div_ceil(CHARS_PER_TOKEN)
}

/// Estimated tokens of a message (its text, tool inputs and results; a few for the framing).
pub fn estimate_message(m: &Message) -> u64 {
    let blocks: u64 = m
        .content
        .iter()
        .map(|b| match b {
            ContentBlock::Text { text } => estimate_text(text),
            ContentBlock::Thinking { thinking, signature } => {
                estimate_text(thinking) + signature.as_deref().map_or(0, estimate_text)
            }
            ContentBlock::RedactedThinking { data } => estimate_text(data),
            ContentBlock::ToolUse { name, input, .. } => estimate_text(name) + estimate_text(&input.to_string()) + 8,
            ContentBlock::ToolResult { content, .. } => estimate_text(content) + 8,
        })
        .sum();
    blocks + 4
}

/// Estimated tokens of messages.
pub fn estimate_messages(ms: &[Message]) -> u64 {
    ms.iter().map(estimate_message).sum()
}

/// Where to cut `messages`: the index of the first message kept verbatim, so that the kept tail is
/// the longest one that fits in `keep_budget` tokens, but at least the last assistant message and what
/// follows it. The kept tail always starts with an assistant message (the summary, a user message,
/// comes before it). `None` when there is nothing to replace: no assistant message after the first.
pub fn cut_point(messages: &[Message], keep_budget: u64) -> Option<usize> {
    let candidates: Vec<usize> = (1..messages.len()).filter(|&i| messages[i].role == Role::Assistant).collect();
    let last = *candidates.last()?;
    let mut tail = estimate_messages(&messages[last..]);
    let mut cut = last;
    for &i in candidates.iter().rev().skip(1) {
        tail += estimate_messages(&messages[i..cut]);
        if tail > keep_budget {
            break;
        }
        cut = i;
    }
    Some(cut)
}

/// The system prompt of a summary call.
pub const SUMMARY_SYSTEM: &str = "You summarize the earlier part of a conversation between a user and an AI \
coding agent, so the agent can continue its work from your summary alone. Be specific and complete; keep \
file paths, names, commands, decisions, open problems and the user's requests and constraints. Write in \
plain prose and short lists, with no preamble.";

/// The first line of every summary request (the scripted model's scripts can match on it).
pub const SUMMARY_REQUEST_HEAD: &str = "Summarize the conversation below for the agent that will continue it.";

/// The text the summary model reads: the replaced messages as a transcript, long blocks clipped, then
/// the instructions (from `/compact` and `PreCompact` hooks).
pub fn summary_request(replaced: &[Message], instructions: &[String]) -> String {
    let mut out = String::from(SUMMARY_REQUEST_HEAD);
    out.push_str("\n\n<transcript>\n");
    for m in replaced {
        let who = match m.role {
            Role::User => "USER",
            Role::Assistant => "AGENT",
        };
        for b in &m.content {
            let line = match b {
                ContentBlock::Text { text } => format!("{who}: {}", clip(text)),
                ContentBlock::ToolUse { name, input, .. } => {
                    format!("{who} called {name}: {}", clip(&input.to_string()))
                }
                ContentBlock::ToolResult { content, is_error, .. } => {
                    let what = if *is_error { "TOOL ERROR" } else { "TOOL RESULT" };
                    format!("{what}: {}", clip(content))
                }
                ContentBlock::Thinking { .. } | ContentBlock::RedactedThinking { .. } => continue,
            };
            out.push_str(&line);
            out.push('\n');
        }
    }
    out.push_str("</transcript>\n");
    let instructions: Vec<&str> = instructions.iter().map(|s| s.trim()).filter(|s| !s.is_empty()).collect();
    if !instructions.is_empty() {
        out.push_str("\nAdditional instructions for the summary:\n");
        for i in instructions {
            out.push_str("- ");
            out.push_str(i);
            out.push('\n');
        }
    }
    out
}

fn clip(s: &str) -> String {
    crate::text::clip_chars(s, TRANSCRIPT_BLOCK_CHARS, " […]")
}

/// The first line of the message that opens a compacted conversation.
pub const SUMMARY_HEAD: &str = "This conversation was compacted: its earlier part is summarized below.";

/// The user message that opens a compacted conversation.
pub fn summary_message(summary: &str) -> Message {
    Message::user_text(format!("{SUMMARY_HEAD}\n\n<summary>\n{}\n</summary>", summary.trim()))
}

/// Whether a prompt asks for a compaction (`/compact [instructions]`); returns the instructions.
pub fn compact_command(prompt: &str) -> Option<&str> {
    let rest = prompt.trim_start().strip_prefix("/compact")?;
    if rest.is_empty() || rest.starts_with(char::is_whitespace) { Some(rest.trim()) } else { None }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn assistant(text: &str) -> Message {
        Message { role: Role::Assistant, content: vec![ContentBlock::Text { text: text.into() }] }
    }

    #[test]
    fn the_cut_keeps_the_longest_tail_that_fits_and_starts_at_an_assistant_message() {
        let big = "x".repeat(400); // ~100 tokens
        let mut ms = Vec::new();
        for i in 0..6 {
            ms.push(Message::user_text(format!("prompt {i} {big}")));
            ms.push(assistant(&format!("answer {i} {big}")));
        }
        // Each message ~106 tokens: a budget of 450 keeps the last two pairs minus the user message
        // that opens them (assistant, user, assistant).
        let cut = cut_point(&ms, 450).unwrap();
        assert_eq!(ms[cut].role, Role::Assistant);
        assert!(estimate_messages(&ms[cut..]) <= 450);
        assert_eq!(cut, 9);
        // A budget too small for anything still keeps the last assistant message.
        assert_eq!(cut_point(&ms, 1), Some(11));
        // Nothing to replace before the first assistant message.
        assert_eq!(cut_point(&ms[..2], 1_000_000), Some(1));
        assert_eq!(cut_point(&ms[..1], 1_000_000), None);
    }

    #[test]
    fn compact_commands_are_recognized_with_their_instructions() {
        assert_eq!(compact_command("/compact"), Some(""));
        assert_eq!(compact_command("  /compact keep the API notes "), Some("keep the API notes"));
        assert_eq!(compact_command("/compaction"), None);
        assert_eq!(compact_command("please /compact"), None);
    }

    #[test]
    fn the_summary_request_shows_the_transcript_and_the_instructions() {
        let ms = vec![Message::user_text("write a parser"), assistant("done: src/parse.rs")];
        let text = summary_request(&ms, &["keep file names".into(), " ".into()]);
        assert!(text.starts_with(SUMMARY_REQUEST_HEAD));
        assert!(text.contains("USER: write a parser\nAGENT: done: src/parse.rs\n"));
        assert!(text.contains("- keep file names\n"));
        assert!(!text.contains("- \n"));
    }
}
