//! Streaming a reply as the deltas a real provider would send.

use crate::model::{BlockStart, ModelDelta, ModelRequest, StopReason};
use crate::wire::Usage;

/// Builds the deltas of one answer.
pub(super) struct Render {
    pub(super) deltas: Vec<ModelDelta>,
    pub(super) index: usize,
    pub(super) output_bytes: usize,
    pub(super) has_tool: bool,
}

impl Render {
    pub(super) fn new(blocks: usize) -> Self {
        Self { deltas: Vec::with_capacity(blocks * 6 + 2), index: 0, output_bytes: 0, has_tool: false }
    }

    pub(super) fn start(&mut self, block: BlockStart) -> usize {
        let index = self.index;
        self.index += 1;
        self.deltas.push(ModelDelta::BlockStart { index, block });
        index
    }

    pub(super) fn stop(&mut self, index: usize) {
        self.deltas.push(ModelDelta::BlockStop { index });
    }

    pub(super) fn text(&mut self, text: &str) {
        let index = self.start(BlockStart::Text);
        self.output_bytes += text.len();
        for piece in chunks(text, text_chunk_len(text.len())) {
            self.deltas.push(ModelDelta::Text { index, text: piece.to_owned() });
        }
        self.stop(index);
    }

    pub(super) fn thinking(&mut self, thinking: &str, signature: String) {
        let index = self.start(BlockStart::Thinking);
        self.output_bytes += thinking.len();
        for piece in chunks(thinking, text_chunk_len(thinking.len())) {
            self.deltas.push(ModelDelta::Thinking { index, thinking: piece.to_owned() });
        }
        self.deltas.push(ModelDelta::Signature { index, signature });
        self.stop(index);
    }

    pub(super) fn redacted(&mut self, data: String) {
        self.output_bytes += data.len();
        let index = self.start(BlockStart::RedactedThinking { data });
        self.stop(index);
    }

    pub(super) fn tool_use(&mut self, id: String, name: String, json: &str) {
        self.has_tool = true;
        self.output_bytes += name.len() + json.len();
        let index = self.start(BlockStart::ToolUse { id, name });
        // At least two pieces (when there are two bytes), like a provider streaming partial JSON.
        let len = json.len().div_ceil(2).min(text_chunk_len(json.len())).max(1);
        for piece in chunks(json, len) {
            self.deltas.push(ModelDelta::InputJson { index, partial_json: piece.to_owned() });
        }
        self.stop(index);
    }

    pub(super) fn finish(mut self, usage: Option<Usage>, request: &ModelRequest) -> Vec<ModelDelta> {
        let usage = usage.unwrap_or_else(|| Usage {
            input_tokens: (input_bytes(request) / 4).max(1) as u64,
            output_tokens: (self.output_bytes / 4).max(1) as u64,
            ..Usage::default()
        });
        self.deltas.push(ModelDelta::Usage(usage));
        let reason = if self.has_tool { StopReason::ToolUse } else { StopReason::EndTurn };
        self.deltas.push(ModelDelta::Stop { reason });
        self.deltas
    }
}

/// Chunk length for streamed text: at least 16 bytes, at most about 8 chunks per block.
pub(super) fn text_chunk_len(len: usize) -> usize {
    len.div_ceil(8).max(16)
}

/// `s` in pieces of about `len` bytes (never splitting a character).
pub(super) fn chunks(s: &str, len: usize) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = len.min(rest.len());
        while !rest.is_char_boundary(end) {
            end += 1;
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// Bytes of the system prompt and the serialized messages, counted without building the JSON.
pub(super) fn input_bytes(request: &ModelRequest) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(request.system.as_ref().map_or(0, String::len));
    // Writing to a counter cannot fail; should serialization fail anyway, the count so far stands.
    let _ = serde_json::to_writer(&mut count, &request.messages);
    count.0
}
